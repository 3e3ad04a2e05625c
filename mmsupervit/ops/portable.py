"""mmcv's detection kernels, with torchvision's where mmcv has none.

**The situation this works around.** OpenMMLab publishes mmcv wheels only
for torch <= 2.4, so on torch 2.14 mmcv 2.1.0 is compiled from source, and
a build made without a GPU or without a CUDA toolkit (no ``FORCE_CUDA=1``,
no ``nvcc``) has CPU kernels only: ``mmcv.ops.get_compiling_cuda_version()``
says ``'not available'``. Used on a GPU, such a build raises
``nms_impl: implementation for device cuda not found`` in the RPN and
``roi_align_forward_impl: implementation for device cuda not found`` in the
RoI heads. torchvision's wheels carry CUDA kernels for the same operations,
so each call goes, by its tensor's device, to mmcv's kernel where mmcv has
one for that device and to torchvision's otherwise.

**Which ops.** Recording every call into ``mmcv._ext`` during one training
step (loss + backward) and one test step of every config family
(``configs/demo/*.py``; UperNet and Mask R-CNN configs of SuperViT, AlterNet
and PatchConvNet in ``configs/*/``) finds exactly these; a test repeats
the recording on the demo configs and fails when another op appears:

=====================  ====================================================
extension function     reached from (mmcv 2.1.0 / mmdet 3.3.0)
=====================  ====================================================
``nms``                ``mmcv.ops.nms``/``batched_nms`` (RPN proposals,
                       ``multiclass_nms`` of the test step)
``roi_align_forward``  ``mmcv.ops.RoIAlign``/``roi_align`` (mmdet's
                       ``SingleRoIExtractor``; mask targets through
                       ``BitmapMasks.crop_and_resize``)
``roi_align_backward`` the same, in training
=====================  ====================================================

UperNet (mmseg) calls no compiled mmcv op.

**Where the routing sits.** Every Python entry point of these ops calls its
kernel through the module global ``ext_module`` of ``mmcv.ops.nms`` or
``mmcv.ops.roi_align``, looked up at call time. :func:`install` replaces these
two globals by a router. So all of mmcv's Python logic stays in force
(``batched_nms``'s class offsets, ``split_thr`` and ``max_num``,
``score_threshold``, the ``dets`` with their score column in mmcv's order)
and so do the names mmdet bound at import time (``from mmcv.ops import
batched_nms, RoIAlign``), also when mmdet was imported before this module:
only the kernel changes. mmcv's and mmdet's files are not edited.

**A second upstream problem, fixed on the same layer.** mmcv's kernels read
their inputs through raw pointers as if they were contiguous, and
``RoIAlignFunction`` does not make them so (mmcv#2203, open): a
channels-last feature map gives RoIAlign output sampled from the wrong
places, without an error. PatchConvNet's maps are channels-last (timm's
``LayerNorm2d`` returns a permuted view; convolutions keep that layout), and
so are the FPN levels built on them. On mmcv's path the router passes
contiguous inputs (a no-op for contiguous ones); torchvision's kernels
handle any layout.

**Choosing a path.** ``MMSUPERVIT_OPS`` (read at every call):

- ``auto`` (default): mmcv's kernel if mmcv has one for the tensor's device
  (probed once per op and device with a tiny input, then cached), else
  torchvision's;
- ``mmcv``: always mmcv's kernel (mmcv's own error where it has none);
- ``torchvision``: always torchvision's kernel.

The first call of each op on each device logs the path it takes. On CPU,
where both exist, the two kernels give identical results
(``tests/test_ops_portable.py``), except that NMS may break exact score ties
in another order and keep another, equally valid set of boxes.

torchvision has no max-pooling RoIAlign: ``pool_mode='max'`` on the
torchvision path raises ``NotImplementedError`` (mmdet's heads use ``avg``).
torchvision's RoIAlign is linear in its input, so its input gradient does
not depend on the input values; the backward kernel below obtains it with
autograd through ``torchvision.ops.roi_align`` (public API) at a zero input.
"""
import functools
import importlib
import os
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torchvision
from mmengine.logging import print_log
from torch import Tensor

#: Environment variable that forces a path.
OPS_ENV = 'MMSUPERVIT_OPS'
#: Its valid values; the first is the default.
OPS_MODES = ('auto', 'mmcv', 'torchvision')

#: Labels of :func:`op_availability`.
MMCV_KERNEL = 'mmcv kernel'
TORCHVISION_FALLBACK = 'torchvision fallback'
UNAVAILABLE = 'unavailable'

# Phrases of mmcv's errors for a device it has no kernel for: its device
# registry ("<op>_impl: implementation for device cuda not found") and the
# CUDA runtime when the wheel was built for other GPU architectures.
_NO_KERNEL_PHRASES = ('implementation for device',
                      'no kernel image is available')


def ops_mode() -> str:
    """The path ``MMSUPERVIT_OPS`` asks for, read now.

    Returns:
        str: One of :data:`OPS_MODES`. Defaults to ``'auto'`` when unset.

    Raises:
        ValueError: For any other value.
    """
    mode = os.environ.get(OPS_ENV, 'auto').strip().lower() or 'auto'
    if mode not in OPS_MODES:
        raise ValueError(
            f'{OPS_ENV}={os.environ[OPS_ENV]!r} is not valid; use one of '
            f'{", ".join(OPS_MODES)}')
    return mode


# --------------------------------------------------------------------------
# torchvision kernels with the signatures of mmcv's extension functions
# --------------------------------------------------------------------------
def _tv_nms(bboxes: Tensor, scores: Tensor, iou_threshold: float,
            offset: int) -> Tensor:
    """``mmcv._ext.nms``: indices kept, sorted by decreasing score."""
    if offset:
        # mmcv measures widths as x2 - x1 + offset; shifting the far corner
        # gives torchvision (x2 - x1) the same areas and intersections.
        bboxes = torch.cat([bboxes[:, :2], bboxes[:, 2:] + offset], dim=1)
    return torchvision.ops.nms(bboxes, scores, float(iou_threshold))


def _check_avg(pool_mode: int, device: torch.device) -> None:
    if pool_mode != 1:  # mmcv encodes 'max' as 0 and 'avg' as 1
        raise NotImplementedError(
            f"RoIAlign with pool_mode='max' on {device}: mmcv has no kernel "
            "here and torchvision's RoIAlign only averages; use "
            "pool_mode='avg' or a device with an mmcv kernel")


def _tv_roi_align_forward(input: Tensor, rois: Tensor, output: Tensor,
                          argmax_y: Tensor, argmax_x: Tensor,
                          aligned_height: int, aligned_width: int,
                          spatial_scale: float, sampling_ratio: int,
                          pool_mode: int, aligned: bool) -> None:
    """``mmcv._ext.roi_align_forward``: fills ``output`` in place."""
    _check_avg(pool_mode, input.device)
    output.copy_(
        torchvision.ops.roi_align(input, rois,
                                  (aligned_height, aligned_width),
                                  spatial_scale, sampling_ratio, aligned))


def _tv_roi_align_backward(grad_output: Tensor, rois: Tensor,
                           argmax_y: Tensor, argmax_x: Tensor,
                           grad_input: Tensor, aligned_height: int,
                           aligned_width: int, spatial_scale: float,
                           sampling_ratio: int, pool_mode: int,
                           aligned: bool) -> None:
    """``mmcv._ext.roi_align_backward``: adds to ``grad_input`` in place."""
    _check_avg(pool_mode, grad_output.device)
    # RoIAlign is linear in its input: the gradient at zero is the gradient.
    with torch.enable_grad():
        probe = torch.zeros_like(grad_input, requires_grad=True)
        out = torchvision.ops.roi_align(probe, rois,
                                        (aligned_height, aligned_width),
                                        spatial_scale, sampling_ratio,
                                        aligned)
        grad, = torch.autograd.grad(out, probe, grad_output)
    grad_input.add_(grad)


#: Routed extension function -> (mmcv module holding ``ext_module``,
#: torchvision kernel with the same signature).
ROUTED_OPS: Dict[str, Tuple[str, Callable[..., Any]]] = {
    'nms': ('mmcv.ops.nms', _tv_nms),
    'roi_align_forward': ('mmcv.ops.roi_align', _tv_roi_align_forward),
    'roi_align_backward': ('mmcv.ops.roi_align', _tv_roi_align_backward),
}


def _probe_args(op: str, device: torch.device) -> Tuple[tuple, dict]:
    """The smallest valid call of ``op`` on ``device``."""
    new = functools.partial(torch.zeros, device=device)
    if op == 'nms':
        return (new(1, 4), new(1)), dict(iou_threshold=0.5, offset=0)
    roi_kw = dict(aligned_height=1, aligned_width=1, spatial_scale=1.0,
                  sampling_ratio=0, pool_mode=1, aligned=True)
    if op == 'roi_align_forward':
        return (new(1, 1, 2, 2), new(1, 5), new(1, 1, 1, 1), new(0),
                new(0)), roi_kw
    if op == 'roi_align_backward':
        return (new(1, 1, 1, 1), new(1, 5), new(0), new(0),
                new(1, 1, 2, 2)), roi_kw
    raise KeyError(f'{op!r} is not a routed op; routed: {list(ROUTED_OPS)}')


def _mmcv_ext():
    return importlib.import_module('mmcv._ext')


@functools.lru_cache(maxsize=None)
def mmcv_has_kernel(op: str, device: torch.device) -> bool:
    """Whether mmcv's extension has a kernel of ``op`` for ``device``.

    Probed once per op and device with the smallest valid input, then cached
    (``mmcv_has_kernel.cache_clear()`` forgets).

    Args:
        op (str): A key of :data:`ROUTED_OPS`.
        device (torch.device): The device, with its index for CUDA.

    Returns:
        bool: False when mmcv reports no implementation for the device.
    """
    args, kwargs = _probe_args(op, device)
    try:
        getattr(_mmcv_ext(), op)(*args, **kwargs)
    except RuntimeError as err:
        if any(p in str(err) for p in _NO_KERNEL_PHRASES):
            return False
        raise
    return True


@functools.lru_cache(maxsize=None)
def torchvision_supports(op: str, device: torch.device) -> bool:
    """Whether the torchvision kernel of ``op`` runs on ``device``.

    Probed like :func:`mmcv_has_kernel`. torchvision's ``nms`` fails on
    ``meta`` tensors, for instance: its output size depends on the data.
    """
    args, kwargs = _probe_args(op, device)
    try:
        ROUTED_OPS[op][1](*args, **kwargs)
    except (RuntimeError, NotImplementedError):
        return False
    return True


_LOGGED = set()


def select_path(op: str, device: torch.device) -> str:
    """The path (``'mmcv'`` or ``'torchvision'``) a call of ``op`` takes.

    Args:
        op (str): A key of :data:`ROUTED_OPS`.
        device (torch.device): The device of the call's tensors.

    Returns:
        str: ``'mmcv'`` or ``'torchvision'``; logged once per op, device and
        path.
    """
    mode = ops_mode()
    if mode == 'auto':
        path = 'mmcv' if mmcv_has_kernel(op, device) else 'torchvision'
    else:
        path = mode
    if (op, device, path) not in _LOGGED:
        _LOGGED.add((op, device, path))
        why = {
            'mmcv': 'mmcv has a kernel for this device',
            'torchvision': 'mmcv has no kernel for this device'
        }[path] if mode == 'auto' else f'forced by {OPS_ENV}={mode}'
        print_log(f'mmsupervit.ops: {op} on {device} runs the {path} kernel '
                  f'({why})', logger='current')
    return path


def op_availability(op: str, device: torch.device,
                    mode: Optional[str] = None) -> str:
    """How ``op`` would run on ``device``, for reports.

    Args:
        op (str): A key of :data:`ROUTED_OPS`.
        device (torch.device): The device.
        mode (str, optional): One of :data:`OPS_MODES`. Defaults to the
            current ``MMSUPERVIT_OPS``.

    Returns:
        str: :data:`MMCV_KERNEL`, :data:`TORCHVISION_FALLBACK` or
        :data:`UNAVAILABLE` (the forced path, or both, cannot run there).
    """
    mode = ops_mode() if mode is None else mode
    if mode in ('auto', 'mmcv') and mmcv_has_kernel(op, device):
        return MMCV_KERNEL
    if mode in ('auto', 'torchvision') and torchvision_supports(op, device):
        return TORCHVISION_FALLBACK
    return UNAVAILABLE


class _RoutedExtension:
    """Stands in for ``mmcv._ext`` in one mmcv module: the routed functions
    dispatch by device, every other attribute is the extension's own."""

    def __init__(self, ext: Any) -> None:
        self._ext = ext

    def __getattr__(self, name: str) -> Any:
        if name in ROUTED_OPS:
            return functools.partial(_dispatch, name, self._ext)
        return getattr(self._ext, name)


def _dispatch(op: str, ext: Any, first: Tensor, second: Tensor, *args,
              **kwargs) -> Any:
    if select_path(op, first.device) == 'mmcv':
        # The first two arguments of every routed op are its read-only
        # inputs. mmcv's kernels read them through raw pointers as if they
        # were contiguous: a channels-last feature map gives RoIAlign output
        # from the wrong places, silently (mmcv#2203, open).
        return getattr(ext, op)(first.contiguous(), second.contiguous(),
                                *args, **kwargs)
    return ROUTED_OPS[op][1](first, second, *args, **kwargs)


def install() -> None:
    """Route the kernels of :data:`ROUTED_OPS`; idempotent."""
    for module_name in sorted({m for m, _ in ROUTED_OPS.values()}):
        # ``mmcv.ops.nms`` as an attribute is the function that
        # ``mmcv/ops/__init__.py`` re-exports, not the module.
        module = importlib.import_module(module_name)
        if not isinstance(module.ext_module, _RoutedExtension):
            module.ext_module = _RoutedExtension(module.ext_module)


def is_installed() -> bool:
    """Whether every module of :data:`ROUTED_OPS` routes its kernels."""
    return all(
        isinstance(importlib.import_module(m).ext_module, _RoutedExtension)
        for m, _ in ROUTED_OPS.values())
