import pytest
import torch

from mmsupervit.models.necks import ColumnPyramidNeck
from mmsupervit.registry import MODELS


def _maps(c=32, h=8, w=12, n=4):
    return [torch.randn(2, c, h, w) for _ in range(n)]


def test_shapes_channels_strides():
    neck = ColumnPyramidNeck(32)
    outs = neck(_maps())
    assert [tuple(o.shape) for o in outs] == [(2, 32, 32, 48), (2, 32, 16, 24),
                                              (2, 32, 8, 12), (2, 32, 4, 6)]
    assert neck.out_channels == (32, ) * 4
    assert neck.out_strides == (4, 8, 16, 32)


def test_identity_level_is_exact_and_projection_widths():
    neck = ColumnPyramidNeck(32, out_channels=(16, 24, 32, 48))
    maps = _maps()
    outs = neck(maps)
    assert [o.shape[1] for o in outs] == [16, 24, 32, 48]
    assert neck.out_channels == (16, 24, 32, 48)
    plain = ColumnPyramidNeck(32)
    assert torch.equal(plain(maps)[2], maps[2])
    assert torch.equal(plain(maps)[3], torch.nn.functional.max_pool2d(
        maps[3], 2))


def test_single_map_broadcast_and_norm_cfg():
    neck = MODELS.build(
        dict(type='ColumnPyramidNeck', in_channels=16,
             norm_cfg=dict(type='GN', num_groups=4)))
    assert isinstance(neck.resamplers[0][1], torch.nn.GroupNorm)
    outs = neck([torch.randn(1, 16, 5, 7)])
    assert [tuple(o.shape[2:]) for o in outs] == [(20, 28), (10, 14), (5, 7),
                                                  (2, 3)]


def test_gradients_flow_to_all_levels():
    neck = ColumnPyramidNeck(8, out_channels=8)
    maps = [m.requires_grad_() for m in _maps(c=8)]
    sum(o.sum() for o in neck(maps)).backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in maps)


def test_misuse():
    with pytest.raises(ValueError, match='scales must be taken from'):
        ColumnPyramidNeck(8, scales=(3, 1))
    with pytest.raises(ValueError, match='out_channels has 2 entries'):
        ColumnPyramidNeck(8, out_channels=(8, 8))
    neck = ColumnPyramidNeck(8)
    with pytest.raises(ValueError, match='got 3 maps for 4 scales'):
        neck(_maps(c=8, n=3))
    with pytest.raises(ValueError, match=r'expects \(B, 8, H, W\)'):
        neck(_maps(c=4))
    with pytest.raises(TypeError):
        ColumnPyramidNeck(8, typo_arg=1)
