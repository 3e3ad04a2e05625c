"""SuperViT budget training for dense prediction (mmseg and mmdet).

SuperViT's point is one model for many compute budgets. The official DeiT
training step (lmbxmu/SuperViT, ``deit/engine.py``) does, for every batch:

* ``get_training_sub_network`` (engine.py L22-31): four sub-networks,
  ``(224, keep 1)``, ``(224, r)``, ``(s, keep 1)``, ``(s, r')`` with
  ``r, r'`` drawn from ``{0.5, 0.7}`` and ``s`` from ``{128, 160, 192}``
  (``random.choice``, independently for ``r`` and ``r'``);
* even sub-networks (keep 1) get the task loss, odd ones (pruned) get
  ``KLDivLoss(reduction='batchmean')(log_softmax(student),
  softmax(teacher.detach()))`` where the teacher is the *preceding* keep-1
  sub-network of the same size (L55, L70-78): ``KL(teacher || student)``,
  summed over classes, averaged over the batch, temperature 1, every term
  weighted 1;
* each term is computed under ``torch.cuda.amp.autocast`` (L68) and
  back-propagated on its own (``NativeScaler_No_Step``, ``utils.py``
  L303-316, called at engine.py L91); the accumulated gradients make one
  optimizer step (engine.py L94-95).

The LV-ViT script (``main_lvvit.py`` L664-673, L716, L758-790) samples the
same four sub-networks but refreshes the distillation target only at the
first one (L763-770), so there ``(s, r')`` is distilled towards ``(224, 1)``;
we follow the DeiT engine (same-size teacher) for both trunks.

Here the same four sub-networks run on every batch, with the input scale
``s`` in ``{128, 160, 192} / 224`` mapped to the backbone's ``input_scale``
(SuperViT selects the position table trained at ``224 * input_scale``) and
the keep rate to its ``keep_rate``:

=================  ==========  =======================================
term (log prefix)  budget      loss
=================  ==========  =======================================
``full``           (1, 1)      task losses x ``task_loss_weight``
``full_pruned``    (1, r)      KD towards ``full``'s detached output
``small``          (s, 1)      task losses x ``task_loss_weight``
``small_pruned``   (s, r')     KD towards ``small``'s detached output
=================  ==========  =======================================

Log names are by role (``full.decode.loss_ce``, ``small_pruned.loss_kd``)
rather than by the sampled values: mmengine's log processor averages and
prints every key it has ever seen, so names that change with the sample
(``s0.71_k0.5.loss_kd``) would print stale values of past samples.

**Distillation targets.**

* Segmentation (UperNet): per-pixel ``KL(teacher || student)`` of the decode
  head's class distributions, both logits resized to the label resolution as
  mmseg's ``loss_by_feat`` does, softened by ``temperature`` ``T`` and
  multiplied by ``T**2`` (Hinton et al.; keeps gradients comparable across
  ``T``), summed over classes and averaged over the labelled pixels (pixels
  equal to the head's ``ignore_index`` are left out). With ``T = 1`` this is
  the official ``batchmean`` KL with a pixel in the place of an image.
* Detection (Mask R-CNN): mean squared error between the pruned and the
  keep-1 sub-network's *neck* (FPN) outputs, averaged over levels. Mask
  R-CNN's outputs are sets of proposals and boxes that differ between
  sub-networks, so an output-level KL as in classification would first need
  proposal matching; the neck maps, by contrast, are aligned location by
  location at every budget (SuperViT returns maps at the nominal stride
  whatever its input scale and keep rate), and the RPN, box and mask heads
  are all functions of them, so matching them carries the keep-1
  sub-network's behaviour to every head. This is feature imitation as used
  for detector distillation (e.g. Li et al., CVPR 2017, "Mimicking Very
  Efficient Network for Object Detection"). ``temperature`` does not apply.

**Why a mixin overriding ``loss()``, not ``train_step()`` or a wrapper.**
mmengine's ``BaseModel.train_step`` and ``MMDistributedDataParallel.
train_step`` both run ``data_preprocessor`` + ``forward(mode='loss')``
inside ``optim_wrapper.optim_context`` (AMP autocast, ``no_sync`` during
gradient accumulation) and then one ``optim_wrapper.update_params`` (loss
scaling for accumulation and AMP, backward, step when due). Under DDP the
module's own ``train_step`` is never called, only its ``forward``; so the
place that works with plain, accumulating, AMP and DDP training alike is
``loss()``: it runs the four sub-networks and returns all their terms, and
the inherited ``train_step`` does the rest in one backward and one step.
The gradient equals the official per-term backward sum (gradients add); the
cost is that the four graphs are alive at once (use ``with_cp=True`` for
memory). A mixin with two thin subclasses keeps the state-dict keys of
mmseg's ``EncoderDecoder`` and mmdet's ``MaskRCNN``, so a budget-trained
checkpoint loads into the plain single-budget config (e.g. for
``tools/test.py`` or ``tools/analysis_tools/budget_sweep.py``); a wrapper
module would prefix every key.

The backbone's budget is set through its public ``keep_rate`` and
``input_scale`` before each sub-network and restored afterwards (also on
error), so evaluation uses the config's budget. Which position tables are
used varies between iterations, so DDP needs ``find_unused_parameters=True``
(set by the SuperViT configs).
"""
import math
import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from mmsupervit.registry import MODELS

LossDict = Dict[str, Union[Tensor, List[Tensor]]]

#: The official small input sizes (engine.py L22) as scales of 224.
OFFICIAL_INPUT_SCALES: Tuple[float, ...] = (128 / 224, 160 / 224, 192 / 224)
#: The official keep rates of pruned sub-networks (engine.py L22).
OFFICIAL_KEEP_RATES: Tuple[float, ...] = (0.5, 0.7)


@dataclass(frozen=True)
class BudgetConfig:
    """What a budget-training step samples and how it weighs the terms.

    Args:
        keep_rates (Sequence[float]): Keep rates the two pruned sub-networks
            draw from (independently), each in (0, 1). Defaults to the
            official (0.5, 0.7).
        input_scales (Sequence[float]): Input scales the small pair draws
            from, each in (0, 1). Defaults to the official (128, 160, 192)
            / 224.
        task_loss_weight (float): Weight of the keep-1 sub-networks' task
            losses. Defaults to 1.0 (official).
        kd_loss_weight (float): Weight of the pruned sub-networks'
            distillation losses. Defaults to 1.0 (official).
        temperature (float): Softmax temperature of the segmentation KL.
            Defaults to 1.0 (official).
    """
    keep_rates: Tuple[float, ...] = OFFICIAL_KEEP_RATES
    input_scales: Tuple[float, ...] = OFFICIAL_INPUT_SCALES
    task_loss_weight: float = 1.0
    kd_loss_weight: float = 1.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        for name, bound in (('keep_rates', 'keep_rate'),
                            ('input_scales', 'input_scale')):
            values = getattr(self, name)
            if isinstance(values, (int, float)) or not len(values):
                raise ValueError(f'budget_cfg.{name} must be a non-empty '
                                 f'sequence, got {values!r}')
            values = tuple(float(v) for v in values)
            bad = [v for v in values if not 0 < v < 1]
            if bad:
                # 1 is the keep-1 / full-scale sub-network, always run
                raise ValueError(f'budget_cfg.{name} must lie in (0, 1) '
                                 f'(each {bound} of a smaller sub-network), '
                                 f'got {bad}')
            object.__setattr__(self, name, values)
        for name in ('task_loss_weight', 'kd_loss_weight'):
            if getattr(self, name) < 0:
                raise ValueError(f'budget_cfg.{name} must be >= 0, got '
                                 f'{getattr(self, name)}')
        if not self.temperature > 0:
            raise ValueError('budget_cfg.temperature must be > 0, got '
                             f'{self.temperature}')


class BudgetTrainMixin:
    """Budget training on top of an mmseg segmentor or mmdet detector.

    Put it before the library class (``class X(BudgetTrainMixin,
    EncoderDecoder)``) and implement :meth:`_budget_forward` and
    :meth:`_kd_loss`. In training mode :meth:`loss` returns the terms of
    the four sub-networks described in :mod:`mmsupervit.models.budget`; in
    eval mode it is the library's loss at the backbone's configured budget.
    """

    backbone: torch.nn.Module

    def _init_budget(self, budget_cfg: Optional[dict]) -> None:
        for attr in ('keep_rate', 'input_scale'):
            if not hasattr(self.backbone, attr):
                raise TypeError(
                    f'budget training needs a backbone with a settable '
                    f'`{attr}` (mmsupervit.SuperViT); got '
                    f'{type(self.backbone).__name__}')
        for attr in ('train_keep_rates', 'train_input_scales'):
            if getattr(self.backbone, attr, None) is not None:
                raise ValueError(
                    f'backbone.{attr} samples a budget inside every forward '
                    'and would override the sub-networks of budget '
                    'training; leave it None (budget_cfg sets the sets)')
        self.budget_cfg = BudgetConfig(**(budget_cfg or {}))

    def sample_sub_networks(self) -> List[Tuple[str, float, float, bool]]:
        """The four sub-networks of one step, as the official sampler.

        Returns:
            list[tuple]: ``(name, input_scale, keep_rate, is_teacher)`` in run
            order; each pruned entry is distilled from the keep-1 entry
            before it.
        """
        cfg = self.budget_cfg
        small = random.choice(cfg.input_scales)
        return [('full', 1.0, 1.0, True),
                ('full_pruned', 1.0, random.choice(cfg.keep_rates), False),
                ('small', small, 1.0, True),
                ('small_pruned', small, random.choice(cfg.keep_rates), False)]

    @contextmanager
    def _backbone_budget(self, input_scale: float,
                         keep_rate: float) -> Iterator[None]:
        """Run the backbone at a budget, restoring its own afterwards."""
        saved = (self.backbone.input_scale, self.backbone.keep_rate)
        self.backbone.input_scale = input_scale
        self.backbone.keep_rate = keep_rate
        try:
            yield
        finally:
            self.backbone.input_scale, self.backbone.keep_rate = saved

    def _plain_loss(self, inputs: Tensor, data_samples: list) -> LossDict:
        """The library's own loss (the class after the mixin in the MRO)."""
        return super().loss(inputs, data_samples)

    def loss(self, inputs: Tensor, data_samples: list) -> LossDict:
        """Losses of one budget-training step (training mode).

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images.
            data_samples (list): The batch's data samples.

        Returns:
            dict: Every sub-network's terms under its role prefix; keys
            containing ``loss`` are summed by ``parse_losses``.
        """
        if not self.training:
            return self._plain_loss(inputs, data_samples)
        cfg = self.budget_cfg
        losses: LossDict = {}
        target = None
        for name, scale, keep, is_teacher in self.sample_sub_networks():
            with self._backbone_budget(scale, keep):
                terms, out = self._budget_forward(inputs, data_samples,
                                                  with_task_loss=is_teacher)
            if is_teacher:
                # the target carries no gradient (official: .detach())
                target = _detach(out)
                for key, value in terms.items():
                    if 'loss' in key:
                        value = _scale(value, cfg.task_loss_weight)
                    losses[f'{name}.{key}'] = value
            else:
                kd = self._kd_loss(out, target, data_samples)
                losses[f'{name}.loss_kd'] = kd * cfg.kd_loss_weight
        return losses

    def _budget_forward(self, inputs: Tensor, data_samples: list,
                        with_task_loss: bool) -> Tuple[LossDict, object]:
        """One sub-network's forward at the backbone's current budget.

        Returns:
            tuple: The task losses (empty without ``with_task_loss``) and
            the output that distillation compares.
        """
        raise NotImplementedError

    def _kd_loss(self, student: object, teacher: object,
                 data_samples: list) -> Tensor:
        """Distillation loss of a pruned output towards the detached
        keep-1 output of the same input scale."""
        raise NotImplementedError


def _detach(out: Union[Tensor, Sequence[Tensor]]):
    if isinstance(out, Tensor):
        return out.detach()
    return type(out)(o.detach() for o in out)


def _scale(value: Union[Tensor, List[Tensor]], weight: float):
    if isinstance(value, Tensor):
        return value * weight
    return [v * weight for v in value]


def segmentation_kd_loss(student: Tensor, teacher: Tensor, labels: Tensor,
                         ignore_index: int, temperature: float = 1.0,
                         align_corners: bool = False) -> Tensor:
    """Per-pixel ``KL(teacher || student)`` at the label resolution.

    Args:
        student (Tensor): (B, K, h, w) logits of the pruned sub-network.
        teacher (Tensor): (B, K, h', w') logits of the keep-1 sub-network
            (detached by the caller).
        labels (Tensor): (B, H, W) or (B, 1, H, W) ground truth; the loss
            covers the pixels whose label is not ``ignore_index``.
        ignore_index (int): Label of unlabelled pixels.
        temperature (float): Softmax temperature T; the KL is multiplied by
            T**2. Defaults to 1.0.
        align_corners (bool): Of the bilinear resize (the decode head's).
            Defaults to False.

    Returns:
        Tensor: Scalar: KL summed over classes, averaged over labelled
        pixels (0 when none is labelled).
    """
    if labels.dim() == 4:
        labels = labels.squeeze(1)
    size = labels.shape[-2:]

    def log_probs(logits: Tensor) -> Tensor:
        logits = F.interpolate(logits.float(), size, mode='bilinear',
                               align_corners=align_corners)
        return F.log_softmax(logits / temperature, dim=1)

    kl = F.kl_div(log_probs(student), log_probs(teacher), reduction='none',
                  log_target=True).sum(dim=1)
    valid = (labels != ignore_index).to(kl.dtype)
    return (kl * valid).sum() / valid.sum().clamp(min=1) * temperature**2


def feature_kd_loss(student: Sequence[Tensor],
                    teacher: Sequence[Tensor]) -> Tensor:
    """Mean squared error between feature pyramids, averaged over levels.

    Args:
        student (Sequence[Tensor]): Maps of the pruned sub-network.
        teacher (Sequence[Tensor]): Maps of the keep-1 sub-network, same
            shapes (detached by the caller).

    Returns:
        Tensor: Scalar loss.
    """
    if len(student) != len(teacher):
        raise ValueError(f'{len(student)} student maps vs {len(teacher)} '
                         'teacher maps')
    losses = []
    for s, t in zip(student, teacher):
        if s.shape != t.shape:
            raise ValueError(f'student map {tuple(s.shape)} vs teacher map '
                             f'{tuple(t.shape)}')
        losses.append(F.mse_loss(s.float(), t.float()))
    return sum(losses) / len(losses)


# -- mmseg ------------------------------------------------------------------
# Built on this project's EncoderDecoder / MaskRCNN (mmseg's and mmdet's, plus
# in_channels='auto'), so a budget config only changes the model type.
try:
    from .auto_channels import EncoderDecoder
except ImportError:  # mmseg is the optional 'seg' extra
    EncoderDecoder = None

if EncoderDecoder is not None:

    @MODELS.register_module()
    class BudgetEncoderDecoder(BudgetTrainMixin, EncoderDecoder):
        """mmseg ``EncoderDecoder`` with SuperViT budget training.

        Config: ``model=dict(type='mmsupervit.BudgetEncoderDecoder',
        budget_cfg=dict(...), ...)`` with the arguments of
        ``EncoderDecoder``. Distils the decode head's per-pixel class
        distribution (see :func:`segmentation_kd_loss`).

        Args:
            budget_cfg (dict, optional): :class:`BudgetConfig` fields.
                Defaults to None (the official settings).
            **kwargs: ``EncoderDecoder``'s arguments (it rejects unknown
                ones).
        """

        def __init__(self, budget_cfg: Optional[dict] = None,
                     **kwargs) -> None:
            super().__init__(**kwargs)
            self._init_budget(budget_cfg)

        def _budget_forward(self, inputs: Tensor, data_samples: list,
                            with_task_loss: bool) -> Tuple[LossDict, Tensor]:
            feats = self.extract_feat(inputs)
            logits = self.decode_head(feats)
            if not with_task_loss:
                return {}, logits
            # EncoderDecoder.loss, split so that the logits come back too
            losses = {
                f'decode.{k}': v
                for k, v in self.decode_head.loss_by_feat(
                    logits, data_samples).items()
            }
            if self.with_auxiliary_head:
                losses.update(
                    self._auxiliary_head_forward_train(feats, data_samples))
            return losses, logits

        def _kd_loss(self, student: Tensor, teacher: Tensor,
                     data_samples: list) -> Tensor:
            labels = torch.stack(
                [s.gt_sem_seg.data for s in data_samples]).to(student.device)
            return segmentation_kd_loss(
                student, teacher, labels, self.decode_head.ignore_index,
                self.budget_cfg.temperature, self.decode_head.align_corners)

# -- mmdet ------------------------------------------------------------------
try:
    from .auto_channels import MaskRCNN
except ImportError:  # mmdet is the optional 'det' extra
    MaskRCNN = None

if MaskRCNN is not None:

    @MODELS.register_module()
    class BudgetMaskRCNN(BudgetTrainMixin, MaskRCNN):
        """mmdet ``MaskRCNN`` with SuperViT budget training.

        Config: ``model=dict(type='mmsupervit.BudgetMaskRCNN',
        budget_cfg=dict(...), ...)`` with the arguments of ``MaskRCNN``.
        Distils the neck (FPN) maps (see :func:`feature_kd_loss` and the
        module docstring for why).

        Args:
            budget_cfg (dict, optional): :class:`BudgetConfig` fields;
                ``temperature`` must stay 1 (no softmax is involved).
                Defaults to None (the official settings).
            **kwargs: ``MaskRCNN``'s arguments (it rejects unknown ones).
        """

        def __init__(self, budget_cfg: Optional[dict] = None,
                     **kwargs) -> None:
            super().__init__(**kwargs)
            self._init_budget(budget_cfg)
            if not math.isclose(self.budget_cfg.temperature, 1.0):
                raise ValueError(
                    'budget_cfg.temperature applies to the segmentation KL; '
                    'BudgetMaskRCNN distils neck features with an MSE, '
                    f'got temperature={self.budget_cfg.temperature}')

        def _budget_forward(self, inputs: Tensor, data_samples: list,
                            with_task_loss: bool
                            ) -> Tuple[LossDict, Tuple[Tensor, ...]]:
            if not with_task_loss:
                return {}, tuple(self.extract_feat(inputs))
            # mmdet's own loss computes the neck maps inside; catch them on
            # their way out of the neck instead of re-implementing it
            module = self.neck if self.with_neck else self.backbone
            feats: list = []
            handle = module.register_forward_hook(
                lambda _m, _args, out: feats.append(out))
            try:
                losses = self._plain_loss(inputs, data_samples)
            finally:
                handle.remove()
            if len(feats) != 1:
                raise RuntimeError(f'expected one neck forward in the '
                                   f'detector loss, saw {len(feats)}')
            return losses, tuple(feats[0])

        def _kd_loss(self, student: Tuple[Tensor, ...],
                     teacher: Tuple[Tensor, ...],
                     data_samples: list) -> Tensor:
            return feature_kd_loss(student, teacher)
