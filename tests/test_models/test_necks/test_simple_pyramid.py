"""Tests of SimplePyramidNeck: ViTDet's pyramid from one stride-16 map."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmsupervit.models.backbones import PatchConvNet
from mmsupervit.models.necks import SimplePyramidNeck


def _ln(x, norm):
    """Layer norm over the channels of an NCHW map, written out."""
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    x = (x - mean) / torch.sqrt(var + norm.eps)
    return x * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)


def _randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)


@pytest.mark.parametrize('hw', [(5, 7), (8, 12), (1, 1), (3, 2)])
def test_shapes_and_strides_from_one_map(hw):
    neck = SimplePyramidNeck(32, out_channels=24, num_outs=5)
    outs = neck([torch.randn(2, 32, *hw)])
    assert neck.out_strides == (4, 8, 16, 32, 64)
    assert list(neck.output_shape()) == [f'out{k}' for k in range(5)]
    assert len(outs) == 5
    for out, spec in zip(outs, neck.output_shape().values()):
        assert spec.channels == 24
        # the level covers the whole stride-16 map, odd sides rounded up
        expected = tuple(math.ceil(s * 16 / spec.stride) for s in hw)
        assert tuple(out.shape) == (2, 24) + expected


def test_levels_compute_the_vitdet_recipe():
    """Each level, recomputed with functional ops: 4x = deconv -> LN ->
    GELU -> deconv; 2x = deconv; 1x = identity; 0.5x = 2x2 max-pool (odd
    side padded); then 1x1 conv -> LN, 3x3 conv -> LN, no conv bias."""
    neck = SimplePyramidNeck(16, out_channels=8)
    _randomise(neck)
    x = torch.randn(2, 16, 3, 5)
    with torch.no_grad():
        outs = neck([x])
        up4 = neck.resamplers[0]
        y4 = F.conv_transpose2d(x, up4[0].weight, up4[0].bias, stride=2)
        y4 = F.gelu(_ln(y4, up4[1]))
        y4 = F.conv_transpose2d(y4, up4[3].weight, up4[3].bias, stride=2)
        up2 = neck.resamplers[1]
        y2 = F.conv_transpose2d(x, up2.weight, up2.bias, stride=2)
        y05 = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=-math.inf), 2)
        for k, y in enumerate((y4, y2, x, y05)):
            lat, out = neck.lateral_convs[k], neck.output_convs[k]
            assert lat[0].bias is None and out[0].bias is None
            y = _ln(F.conv2d(y, lat[0].weight), lat[1])
            y = _ln(F.conv2d(y, out[0].weight, padding=1), out[1])
            torch.testing.assert_close(outs[k], y, atol=1e-5, rtol=1e-5)
    # channels as in ViTDet: C/4 after the 4x branch, C/2 after the 2x one
    assert [lat[0].in_channels for lat in neck.lateral_convs] == [4, 8, 16, 16]


def test_extra_levels_are_strided_subsampling():
    neck = SimplePyramidNeck(8, out_channels=8, num_outs=6)
    outs = neck([torch.randn(1, 8, 7, 9)])
    assert neck.out_strides == (4, 8, 16, 32, 64, 128)
    assert torch.equal(outs[4], outs[3][:, :, ::2, ::2])
    assert torch.equal(outs[5], outs[4][:, :, ::2, ::2])


def test_gradients_reach_input_and_every_parameter():
    neck = SimplePyramidNeck(16, out_channels=8, num_outs=5).train()
    x = torch.randn(2, 16, 5, 3, requires_grad=True)
    outs = neck([x])
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_from_the_default_patchconvnet():
    """in_channels from the backbone's output_shape(); strides 4..32 of the
    image (the backbone pads to a multiple of 16)."""
    backbone = PatchConvNet(dict(embed_dims=32, depth=2)).eval()
    (spec, ) = backbone.output_shape().values()
    neck = SimplePyramidNeck(spec.channels, out_channels=16,
                             in_stride=spec.stride).eval()
    H, W = 97, 70
    with torch.no_grad():
        outs = neck(backbone(torch.randn(1, 3, H, W)))
    assert [tuple(o.shape[2:]) for o in outs] == [
        (28, 20), (14, 10), (7, 5), (4, 3)]
    assert neck.out_strides == (4, 8, 16, 32)


def test_norm_cfg_and_no_norm():
    gn = SimplePyramidNeck(16, 8, norm_cfg=dict(type='GN', num_groups=2))
    assert isinstance(gn.resamplers[0][1], nn.GroupNorm)
    assert all(isinstance(m[1], nn.GroupNorm) for m in gn.lateral_convs)
    bn = SimplePyramidNeck(16, 8, norm_cfg=dict(type='BN'))
    assert all(isinstance(m[1], nn.BatchNorm2d) for m in bn.output_convs)
    plain = SimplePyramidNeck(16, 8, norm_cfg=None)
    assert len(plain.resamplers[0]) == 3  # deconv, GELU, deconv
    assert all(len(m) == 1 and m[0].bias is not None
               for m in plain.lateral_convs)
    assert [tuple(o.shape) for o in plain([torch.randn(1, 16, 2, 2)])] == [
        (1, 8, 8, 8), (1, 8, 4, 4), (1, 8, 2, 2), (1, 8, 1, 1)]


def test_scale_subset():
    neck = SimplePyramidNeck(16, 8, scale_factors=(2, 1), num_outs=3)
    outs = neck([torch.randn(1, 16, 4, 6)])
    assert neck.out_strides == (8, 16, 32)
    assert [tuple(o.shape[2:]) for o in outs] == [(8, 12), (4, 6), (2, 3)]


def test_default_init_is_vitdet_conv_fill():
    neck = SimplePyramidNeck(64, out_channels=64)
    deconv = neck.resamplers[1].weight.detach().clone()
    neck.init_weights()
    for convs in (neck.lateral_convs, neck.output_convs):
        for seq in convs:
            w = seq[0].weight
            bound = math.sqrt(3 / w[0].numel())  # Kaiming uniform, a=1
            assert w.abs().max() <= bound
            assert w.abs().max() > 0.95 * bound
    # transposed convolutions keep PyTorch's init
    assert torch.equal(neck.resamplers[1].weight, deconv)


def test_meta_device():
    with torch.device('meta'):
        neck = SimplePyramidNeck(32, 16, num_outs=5)
        outs = neck([torch.empty(2, 32, 5, 7)])
    assert all(o.device.type == 'meta' for o in outs)
    assert tuple(outs[0].shape) == (2, 16, 20, 28)


def test_registered_in_the_mmsupervit_scope():
    from mmengine.registry import MODELS as ROOT
    neck = ROOT.build(dict(type='mmsupervit.SimplePyramidNeck',
                           in_channels=16, out_channels=8))
    assert isinstance(neck, SimplePyramidNeck)


def test_misuse():
    with pytest.raises(ValueError, match='decreasing order'):
        SimplePyramidNeck(16, scale_factors=(1, 2))
    with pytest.raises(ValueError, match='decreasing order'):
        SimplePyramidNeck(16, scale_factors=(3, 1))
    with pytest.raises(ValueError, match='num_outs'):
        SimplePyramidNeck(16, num_outs=3)
    with pytest.raises(ValueError, match='in_channels'):
        SimplePyramidNeck(2)
    with pytest.raises(ValueError, match='in_channels'):
        SimplePyramidNeck([16] * 4)
    with pytest.raises(TypeError):
        SimplePyramidNeck(16, scales=(4, 2, 1, 0.5))  # misspelled key
    neck = SimplePyramidNeck(16, 8)
    with pytest.raises(ValueError, match='from one map, got 4'):
        neck([torch.randn(1, 16, 4, 4)] * 4)
    with pytest.raises(ValueError, match=r'expects a \(B, 16, H, W\)'):
        neck([torch.randn(1, 8, 4, 4)])
