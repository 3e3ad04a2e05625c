"""Compatibility fixes for the OpenMMLab 2.0 stack on torch >= 2.6 / numpy 2.

Every fix for an upstream problem lives here, names the upstream issue and
has a test in ``tests/test_utils/test_compat.py``. They are applied once, on
``import mmsupervit``, and are idempotent.

1. **Resume fails with UnpicklingError** (mmengine#1655, fixed on mmengine
   main by PR #1670, not released in 0.10.7). ``torch.load`` defaults to
   ``weights_only=True`` since torch 2.6 and mmengine never passes the
   argument, but its checkpoints pickle ``HistoryBuffer`` objects (whose
   statistics methods are pickled through ``getattr``) and numpy arrays and
   scalars in ``message_hub``. Instead of switching the safe loader off for
   every file (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``), exactly these globals
   are allow-listed.
2. **Official SuperViT checkpoints pickle their ``argparse.Namespace``** of
   training arguments (``args``). A Namespace is a plain attribute container,
   so it is allow-listed too; nothing else from those files is.
3. **Negative hue shifts raise OverflowError** under numpy 2 in mmcv 2.1.0's
   ``mmcv.adjust_hue`` (used by mmpretrain's ``ColorJitter``): it adds
   ``np.uint8(hue_factor * 255)`` to the hue channel and relies on the
   conversion wrapping a negative number, which numpy 2 refuses
   (``OverflowError: Python integer -25 out of bounds for uint8``). Not fixed
   in open-mmlab/mmcv; the same bug and fix: pytorch/vision#8536 (fixed by
   vision#8463) and VBTI-development/onedl-mmcv#41. :func:`adjust_hue` wraps
   the shift explicitly and replaces ``mmcv.adjust_hue`` (and its aliases);
   a non-negative shift gives exactly mmcv's result.
"""
import argparse
from typing import List, Optional

import numpy as np
import torch


def _numpy_globals() -> List[object]:
    """numpy objects that mmengine's message hub pickles."""
    # numpy 2 moved the implementation module to ``numpy._core``; pickles
    # written by numpy 1.x name ``numpy.core.multiarray`` instead.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore
    objs: List[object] = [
        multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype
    ]
    # numpy >= 1.25 pickles the dtype *class* of each array's dtype.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float64DType', 'Float32DType', 'Float16DType',
                     'Int64DType', 'Int32DType', 'UInt8DType', 'BoolDType'):
            if hasattr(dtypes, name):
                objs.append(getattr(dtypes, name))
    return objs


def mmengine_checkpoint_safe_globals() -> List[object]:
    """The exact globals an mmengine 0.10.x checkpoint needs (mmengine#1655).

    Returns:
        list: Objects to pass to ``torch.serialization.add_safe_globals``.
    """
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, getattr] + _numpy_globals()


def official_checkpoint_safe_globals() -> List[object]:
    """Globals that official (non-mmengine) checkpoints need: the SuperViT
    training scripts store ``args`` as an ``argparse.Namespace``."""
    return [argparse.Namespace]


def adjust_hue(img: np.ndarray,
               hue_factor: float,
               backend: Optional[str] = None) -> np.ndarray:
    """``mmcv.adjust_hue`` with the hue shift wrapped modulo 256 (fix 3).

    Same arguments, checks and result as mmcv's function for
    ``hue_factor >= 0``; a negative factor shifts the hue the other way, as
    mmcv did under numpy 1 (``int(hue_factor * 255)`` levels of the 256-level
    ``HSV_FULL`` hue circle).
    """
    import cv2
    import mmcv
    from PIL import Image
    if backend is None:
        backend = mmcv.image.io.imread_backend
    if backend not in ('cv2', 'pillow'):
        raise ValueError(f'backend: {backend} is not supported. Supported '
                         "backends are 'cv2', 'pillow'")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and img.ndim in (2, 3)):
        raise TypeError('img should be ndarray with dim=[2 or 3].')
    shift = int(hue_factor * 255) % 256  # truncation as mmcv's np.uint8()
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]), 'RGB')
        h, s, v = pil.convert('HSV').split()
        h = ((np.asarray(h, np.uint16) + shift) % 256).astype(np.uint8)
        pil = Image.merge('HSV', (Image.fromarray(h, 'L'), s, v))
        return np.array(pil.convert('RGB'), dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    hsv[..., 0] = ((hsv[..., 0].astype(np.uint16) + shift) % 256).astype(
        np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL).astype(dtype)


#: mmcv's own ``adjust_hue``, kept for the test that the bug is still there
_MMCV_ADJUST_HUE = None


def _patch_mmcv_adjust_hue() -> None:
    """Point every public name of ``mmcv.adjust_hue`` at :func:`adjust_hue`
    (callers such as mmpretrain look it up as ``mmcv.adjust_hue`` at call
    time)."""
    global _MMCV_ADJUST_HUE
    import mmcv
    import mmcv.image
    import mmcv.image.photometric as photometric
    if photometric.adjust_hue is not adjust_hue:
        _MMCV_ADJUST_HUE = photometric.adjust_hue
    for module in (mmcv, mmcv.image, photometric):
        module.adjust_hue = adjust_hue


_APPLIED = False


def apply() -> None:
    """Apply every fix. Called on ``import mmsupervit``; idempotent."""
    global _APPLIED
    if _APPLIED:
        return
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:  # torch < 2.4 loads unrestricted anyway
        add_safe_globals(mmengine_checkpoint_safe_globals() +
                         official_checkpoint_safe_globals())
    _patch_mmcv_adjust_hue()
    _APPLIED = True


apply()
