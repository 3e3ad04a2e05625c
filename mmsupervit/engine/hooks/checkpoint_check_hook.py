"""Refuse a whole-model checkpoint (``load_from``, ``--resume``) that does not
fit the model.

mmengine's ``Runner.load_checkpoint`` loads non-strictly and only logs what
did not fit, so a detector checkpoint given to a segmentor, or a checkpoint
with another backbone, starts training (or is evaluated) with randomly
initialised layers. :class:`CheckpointCheckHook` runs on the checkpoint
before it is loaded (mmengine's ``after_load_checkpoint`` hook point, which
``load_checkpoint`` and ``resume`` both call first) and raises a
:class:`~mmsupervit.models.utils.checkpoint.CheckpointError` that says what
the checkpoint is.
"""
import logging
import re
from typing import Optional

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper

from mmsupervit.models.backbones.base import (DenseBackbone,
                                              identify_checkpoint, model_kind)
from mmsupervit.models.utils.checkpoint import (KeyReport, StateDict,
                                                check_key_report,
                                                compare_state_dict)
from mmsupervit.registry import HOOKS

_PREFIX = 'backbone.'


def _under(state_dict: StateDict, prefix: str) -> StateDict:
    return {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }


def _describe(state_dict: StateDict, own: StateDict,
              backbone: Optional[nn.Module]) -> Optional[str]:
    """What the checkpoint is, next to what the model is."""
    inner = _under(state_dict, _PREFIX)
    if not inner:
        found = identify_checkpoint(state_dict)
        if found is None:
            return None
        return (f'{found}, a backbone checkpoint, not a whole model: give '
                "it as model.backbone.init_cfg=dict(type='Pretrained', "
                'checkpoint=...) instead')
    found = identify_checkpoint(inner) or 'not recognised'
    own_backbone = type(backbone).__name__ if backbone is not None else '-'
    return (f'{model_kind(list(state_dict))} whose backbone is {found}, '
            f'while the model is {model_kind(list(own))} with a '
            f'{own_backbone} backbone')


def check_model_checkpoint(model: nn.Module,
                           checkpoint: dict,
                           source: str = 'checkpoint',
                           strict: bool = True,
                           min_loaded: float = 1.0,
                           logger: str = 'current') -> KeyReport:
    """Check a whole-model checkpoint against a model, without loading it.

    Two checks, then warnings for whatever is left:

    * the backbone (keys under ``backbone.``) must fit as a ``Pretrained``
      backbone checkpoint must (same shapes, every required weight, no extra
      keys; the backbone's tolerated keys excepted), so a checkpoint with
      another backbone family or arch fails and is named;
    * at least ``min_loaded`` of all the model's weights (in elements, shape
      mismatches not counted) must be filled, so a checkpoint of another
      task (a detector for a segmentor) fails.

    Keys are compared after mmengine's default key revision (a leading
    ``module.`` is removed), on ``checkpoint['state_dict']`` when present.

    Args:
        model (nn.Module): The model (not wrapped).
        checkpoint (dict): As read by mmengine.
        source (str): Name of the checkpoint in messages. Defaults to
            ``'checkpoint'``.
        strict (bool): With False nothing fails; what does not fit is
            logged as a warning. Defaults to True.
        min_loaded (float): See above, in (0, 1]. Defaults to 1.0.
        logger (str): mmengine logger name. Defaults to ``'current'``.

    Returns:
        KeyReport: How the whole checkpoint fits the model.

    Raises:
        CheckpointError: If a check fails (with ``strict``).
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    state_dict = {re.sub(r'^module\.', '', k): v
                  for k, v in state_dict.items()}
    own = model.state_dict()
    backbone = getattr(model, 'backbone', None)
    tol_missing, tol_unexpected = (), ()
    if isinstance(backbone, DenseBackbone):
        tol_missing = backbone.tolerated_missing_keys()
        tol_unexpected = backbone.tolerated_unexpected_keys()
    hint = ('strict=False in the CheckpointCheckHook of custom_hooks loads '
            'it anyway')
    own_backbone = _under(own, _PREFIX)
    if strict and own_backbone:
        check_key_report(
            compare_state_dict(own_backbone, _under(state_dict, _PREFIX),
                               tol_missing, tol_unexpected),
            f'the backbone of {type(model).__name__}', source,
            identify=lambda: _describe(state_dict, own, backbone), hint=hint)
    report = compare_state_dict(
        own, state_dict, [_PREFIX + p for p in tol_missing],
        [_PREFIX + p for p in tol_unexpected])
    if strict and report.loaded_fraction < min_loaded:
        # The backbone fits, so the rest (neck, heads) does not.
        check_key_report(
            report, type(model).__name__, source, min_loaded=min_loaded,
            identify=lambda: _describe(state_dict, own, backbone),
            hint=hint)
    if report.missing or report.unexpected or report.mismatched:
        print_log(f'{source} does not fit {type(model).__name__} entirely '
                  f'(loaded anyway): {report.summary()}', logger=logger,
                  level=logging.WARNING)
    return report


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Check ``load_from`` / ``--resume`` checkpoints before mmengine loads
    them (see :func:`check_model_checkpoint`).

    ``tools/train.py`` and ``tools/test.py`` add it (through
    :func:`mmsupervit.utils.runner_utils.add_checkpoint_check`); a config
    can set its own, e.g. ``custom_hooks=[dict(type=
    'mmsupervit.CheckpointCheckHook', strict=False)]`` to load anything
    mmengine can.

    Args:
        strict (bool): Fail on a checkpoint that does not fit. Defaults to
            True.
        min_loaded (float): Fraction of the model's weights the checkpoint
            must fill. Defaults to 1.0.
    """

    # Before any other hook uses the checkpoint (EMAHook loads from it).
    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = True, min_loaded: float = 1.0) -> None:
        if not 0 < min_loaded <= 1:
            raise ValueError(
                f'min_loaded must be in (0, 1], got {min_loaded!r}')
        self.strict = strict
        self.min_loaded = min_loaded

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        # As mmengine's load_state_dict: through DDP and TTA wrappers.
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        # The Runner keeps load_from (also a --resume PATH) only privately;
        # with --resume and no path it finds the latest checkpoint itself.
        load_from = getattr(runner, '_load_from', None)
        source = (f'checkpoint {load_from!r}'
                  if load_from else 'the checkpoint to resume from')
        check_model_checkpoint(model, checkpoint, source, self.strict,
                               self.min_loaded)
