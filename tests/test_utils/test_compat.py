"""The stack's compatibility fixes (mmsupervit/utils/compat.py)."""
import argparse
import os.path as osp
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

import mmsupervit  # noqa: F401  (applies the fixes)
from mmsupervit.utils import compat


class _NotAllowListed:
    """A class no allow-list knows: the safe loader must keep refusing it."""

    def __init__(self, value=1):
        self.value = value


def _mmengine_like_checkpoint(path):
    """What mmengine 0.10.7 writes into a checkpoint besides tensors."""
    buf = HistoryBuffer()
    buf.update(0.5)
    buf.update(np.float64(0.25))
    torch.save(
        dict(
            state_dict=dict(w=torch.ones(2)),
            message_hub=dict(
                log_scalars={'train/loss': buf},
                runtime_info=dict(iter=2, arr=np.arange(3, dtype=np.int64),
                                  f32=np.float32(1.5))),
            meta=dict(seed=np.int64(3))), path)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(0.375)
    assert ckpt['message_hub']['runtime_info']['arr'].tolist() == [0, 1, 2]


def test_official_args_namespace_loads(tmp_path):
    path = str(tmp_path / 'official.pth')
    torch.save(dict(model={'w': torch.zeros(1)},
                    args=argparse.Namespace(lr=5e-4, model='super_deit_s')),
               path)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert ckpt['args'].model == 'super_deit_s'


def test_safe_loader_still_refuses_everything_else(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(x=_NotAllowListed()), path)
    with pytest.raises(pickle.UnpicklingError, match='_NotAllowListed'):
        torch.load(path, map_location='cpu', weights_only=True)


def test_apply_is_idempotent():
    compat.apply()
    compat.apply()
    allowed = torch.serialization.get_safe_globals()
    assert allowed.count(HistoryBuffer) == 1


def test_upstream_bug_still_present_without_the_fix(tmp_path):
    """Documents why the fix exists (mmengine#1655).

    In a fresh interpreter that never imports mmsupervit, loading an mmengine
    checkpoint with torch's default loader fails. When this test starts to
    fail, upstream has fixed the bug and the allow-list can go.
    """
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    code = textwrap.dedent(f"""
        import pickle, sys, torch
        try:
            torch.load({path!r}, map_location='cpu')
        except pickle.UnpicklingError as e:
            assert 'HistoryBuffer' in str(e) or 'numpy' in str(e), e
            sys.exit(3)
        sys.exit(0)
    """)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=osp.dirname(path))
    assert proc.returncode == 3, proc.stderr


# ---------------------------------------------------------------------------
# 3. mmcv.adjust_hue with a negative shift under numpy 2
# ---------------------------------------------------------------------------
def _colour_image(seed=0, size=24):
    """Saturated, bright pixels: their hue survives the HSV round trip."""
    import cv2
    rng = np.random.default_rng(seed)
    hsv = np.stack([rng.integers(0, 256, (size, size)),
                    rng.integers(200, 256, (size, size)),
                    rng.integers(200, 256, (size, size))], -1).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)


def _hue(img):
    import cv2
    return cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)[..., 0].astype(int)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_equals_mmcv_for_non_negative_shifts(backend):
    import mmcv.image.photometric as photometric
    img = _colour_image()
    for factor in (0.0, 0.1, 0.25, 0.5):
        ours = compat.adjust_hue(img, factor, backend=backend)
        theirs = compat._MMCV_ADJUST_HUE(img, factor, backend=backend)
        np.testing.assert_array_equal(ours, theirs)
    assert photometric.adjust_hue is compat.adjust_hue


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('factor', [-0.1, -0.37, -0.5])
def test_adjust_hue_negative_shift_turns_the_other_way(backend, factor):
    import mmcv
    img = _colour_image()
    out = mmcv.adjust_hue(img, factor, backend=backend)
    assert out.shape == img.shape and out.dtype == img.dtype
    turned = (_hue(out) - _hue(img)) % 256  # levels of the 256-level circle
    expected = int(factor * 255) % 256
    # circular distance to the expected shift, after two HSV round trips
    err = np.minimum(abs(turned - expected), 256 - abs(turned - expected))
    assert np.median(err) <= 1, (expected, np.median(err))


def test_mmpretrain_colour_jitter_with_hue_runs():
    pytest.importorskip('mmpretrain')
    from mmpretrain.datasets.transforms import ColorJitter
    jitter = ColorJitter(hue=0.5)
    img = _colour_image(size=16)
    for seed in range(20):  # a negative shift comes up in most runs
        np.random.seed(seed)
        out = jitter(dict(img=img.copy()))['img']
        assert out.shape == img.shape


def test_upstream_adjust_hue_still_overflows():
    """Documents why fix 3 exists: mmcv's own function (kept as
    ``compat._MMCV_ADJUST_HUE``) still raises under numpy 2. When this
    fails, mmcv is fixed and the replacement can go."""
    if int(np.__version__.split('.')[0]) < 2:
        pytest.skip('numpy 1 wraps the shift silently')
    with pytest.raises(OverflowError, match='out of bounds for uint8'):
        compat._MMCV_ADJUST_HUE(_colour_image(), -0.1, backend='cv2')
