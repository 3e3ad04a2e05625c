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
"""
import argparse
from typing import List

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
    _APPLIED = True


apply()
