"""Test-only plugin of test_dist_equals_single.py, imported by the runs it
starts (``custom_imports``; the test puts this folder on ``PYTHONPATH``).

* :class:`RankLossRecorderHook`: mmengine logs the losses of rank 0 only
  (``BaseModel.parse_losses`` does not all-reduce them), and the distributed
  run's losses are per process; the hook writes every rank's losses of
  every iteration to ``<work_dir>/losses_rank<r>.json``, with the classes
  of the batch norms the run trained.
* :class:`FixedSeedRandomSampler`: mmdet's ``RandomSampler`` draws RPN
  anchors and RoIs from the global torch generator, one image after the
  other, so image 2 of a 2-image batch gets other random numbers than the
  same image alone in a second process. This sampler draws every
  permutation from a generator seeded afresh, so an image's samples
  depend on the image (and model) only.
"""
import json
import os.path as osp

import torch
from mmdet.models.task_modules.samplers import RandomSampler
from mmdet.registry import TASK_UTILS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm


@HOOKS.register_module()
class RankLossRecorderHook(Hook):
    """Record the log variables (losses, accuracies) of each iteration."""

    def __init__(self) -> None:
        self.records = []
        self.norms = []

    def before_train(self, runner) -> None:
        self.norms = sorted({type(m).__name__ for m in runner.model.modules()
                             if isinstance(m, _BatchNorm)})

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.records.append({k: float(v) for k, v in outputs.items()})

    def after_train(self, runner) -> None:
        path = osp.join(runner.work_dir, f'losses_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(dict(norms=self.norms, losses=self.records), f)


@TASK_UTILS.register_module()
class FixedSeedRandomSampler(RandomSampler):
    """``RandomSampler`` whose draws depend on the gallery size only."""

    def random_choice(self, gallery, num):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return super().random_choice(gallery, num)
