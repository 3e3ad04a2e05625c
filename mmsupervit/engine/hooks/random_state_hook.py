"""Checkpoints that carry the random generators' states, for exact resumes.

mmengine 0.10.7 resumes the model, optimizer, schedulers and message hub, and
re-seeds; an iteration-based loop then replays the batches already trained
(it draws and drops them) so the data order and augmentations continue where
they were. What is lost is the state of the generators the training step
draws from after that point (dropout, drop path, random sub-networks, ...): a
resumed run continues with other random numbers than the run it replaces.
This hook stores Python's, numpy's and torch's (CPU and current CUDA device)
generator states of every rank in each checkpoint and puts them back at the
point where the uninterrupted run was when it saved them: right before the
first batch after the checkpoint is loaded.

Bit-equality, as measured and as far as it goes:

* CPU: a run SIGKILLed and resumed equals the uninterrupted run bit for bit
  (weights, optimizer and scheduler states, logged losses) in deterministic
  mode (``randomness=dict(seed=..., deterministic=True)``), validation
  included (``tests/test_tools/test_resume_equal.py``). Without this hook the
  UperNet demo's weights differ (dropout in the heads); without putting the
  states back after validation they differ by up to ~1e-3 after 6 steps.
  Two CPU processes (``dist_train.sh``, gloo): a run resumed from iteration
  4 equalled the uninterrupted one at iteration 8 bit for bit (checked once
  by hand; not in the test suite, too slow for it).
* CUDA (not measured here, no GPU): ``deterministic=True`` makes mmengine
  call ``torch.use_deterministic_algorithms(True)``, under which torch raises
  a RuntimeError for ops these models train with: the backward of
  ``AdaptiveAvgPool2d`` (UPerHead's pyramid pooling) and of bilinear
  ``F.interpolate``, and ``NLLLoss`` (cross-entropy) on CUDA (see the
  ``torch.use_deterministic_algorithms`` documentation). Without it those
  ops sum with atomic adds in a varying order, so a resumed run differs from
  an uninterrupted one by as much as two uninterrupted runs differ from each
  other, and no more: the data and the random numbers are the same.
"""
import logging
import random
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from mmsupervit.registry import HOOKS

KEY = 'random_states'


def get_random_states() -> Dict[str, object]:
    """This process's generator states, in types the safe loader reads."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states: Dict[str, object] = {
        'python': random.getstate(),
        # a list, not an ndarray: torch's weights_only loader reads plain
        # containers without any numpy allow-listing
        'numpy': (name, keys.tolist(), pos, has_gauss, cached),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state()
    return states


def set_random_states(states: Dict[str, object]) -> None:
    """Restore what :func:`get_random_states` returned."""
    random.setstate(states['python'])
    name, keys, pos, has_gauss, cached = states['numpy']
    np.random.set_state(
        (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states['torch'])
    if states.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(states['cuda'])


class _RestoreBeforeBatch:
    """Wraps a loop's data iterator: after ``skip`` batches, restores the
    random states, hands the loop its own iterator back and goes on."""

    def __init__(self, loop, skip: int, states: Dict[str, object]) -> None:
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._skip = skip
        self._states = states

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip == 0:
            set_random_states(self._states)
            self._loop.dataloader_iterator = self._iterator
        else:
            self._skip -= 1
        return next(self._iterator)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random generators' states with each checkpoint and restore
    them on resume, so that a resumed run equals an uninterrupted one.

    Every rank's states are stored: mmengine writes the checkpoint on rank 0
    only, so the states are gathered from all ranks just before a
    :class:`~mmengine.hooks.CheckpointHook` saves (same rule as that hook:
    every ``interval`` iterations or epochs from ``save_begin``, and the last
    one with ``save_last``). A checkpoint saved at any other moment (e.g. the
    best one, after validation) holds the states only in single-process runs.

    Validation draws from the same generators (a data loader draws a seed
    for its workers, for instance). So that an uninterrupted run and one
    resumed after a validation draw the same numbers, the states are put
    back after every validation: validating does not change the random
    numbers training sees.

    Where the states are restored:

    * iteration-based loops (:class:`mmengine.runner.IterBasedTrainLoop`):
      after the loop has replayed the data up to the checkpoint, before the
      next batch is drawn;
    * other loops (epoch-based): before the next epoch starts, which is
      exact for checkpoints saved at the end of an epoch (mmengine restarts
      an epoch from its beginning anyway).

    Only a resume restores states; ``load_from`` without ``resume`` starts a
    new run with its own seed.
    """
    # before CheckpointHook (VERY_LOW) in after_train_iter/after_train_epoch
    priority = 'LOW'

    def __init__(self) -> None:
        self._gathered: Optional[Tuple[int, int, List[dict]]] = None
        self._pending: Optional[Dict[str, object]] = None
        self._before_val: Optional[Dict[str, object]] = None

    @staticmethod
    def _checkpoint_due(runner, by_epoch: bool) -> bool:
        """Whether a CheckpointHook saves at the end of this iteration (or
        epoch): the condition of its ``after_train_iter``
        (``after_train_epoch``) in mmengine 0.10.7."""
        for hook in runner.hooks:
            if (not isinstance(hook, CheckpointHook)
                    or hook.by_epoch != by_epoch):
                continue
            if by_epoch:
                due = (hook.every_n_epochs(runner, hook.interval,
                                           hook.save_begin)
                       or hook.save_last and hook.is_last_train_epoch(runner))
            else:
                due = (hook.every_n_train_iters(runner, hook.interval,
                                                hook.save_begin)
                       or hook.save_last and hook.is_last_train_iter(runner))
            if due:
                return True
        return False

    def _gather(self, runner) -> None:
        # a collective: every rank evaluates the same condition, so all of
        # them take part
        self._gathered = (runner.epoch, runner.iter,
                          all_gather_object(get_random_states()))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._checkpoint_due(runner, by_epoch=False):
            self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        if self._checkpoint_due(runner, by_epoch=True):
            self._gather(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # runs on rank 0 only
        _, world_size = get_dist_info()
        if self._gathered is not None and self._gathered[:2] == (
                runner.epoch, runner.iter):
            checkpoint[KEY] = self._gathered[2]
        elif world_size == 1:
            # during validation, the training states are the ones saved
            # before it (and put back after it)
            checkpoint[KEY] = [self._before_val or get_random_states()]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get(KEY)
        rank, world_size = get_dist_info()
        if states is None:
            print_log(
                'the checkpoint holds no random states (written without '
                'RandomStateHook, or outside its checkpoint schedule in a '
                'distributed run): a resumed run draws other random numbers '
                'than an uninterrupted one would', logger='current',
                level=logging.WARNING)
        elif len(states) != world_size:
            print_log(
                f'the checkpoint holds random states of {len(states)} '
                f'processes, this run has {world_size}: they are not '
                'restored', logger='current', level=logging.WARNING)
        else:
            self._pending = states[rank]

    def before_train_epoch(self, runner) -> None:
        states, self._pending = self._pending, None
        if states is None or (runner.iter == 0 and runner.epoch == 0):
            return  # nothing loaded, or load_from without resume
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and runner.iter > 0:
            loop.dataloader_iterator = _RestoreBeforeBatch(
                loop, runner.iter, states)
        else:
            set_random_states(states)

    def before_val(self, runner) -> None:
        self._before_val = get_random_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_random_states(self._before_val)
            self._before_val = None
