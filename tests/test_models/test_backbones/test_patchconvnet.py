"""Tests of mmsupervit.PatchConvNet against the official implementation's
golden outputs, the official key manifests and the backbone contract."""
import copy
import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from golden_weights import golden_arch

from mmsupervit.models.backbones.patchconvnet import (PatchConvNet,
                                                      convert_patchconvnet)
from mmsupervit.models.utils.checkpoint import (CheckpointError,
                                                load_state_dict_checked,
                                                unwrap_state_dict)
from mmsupervit.registry import MODELS

ARCHS = ['S60', 'S120', 'B60', 'B120', 'L60', 'L120']
EXPECTED = {  # embed_dims, depth, layer-scale init, multi_depth out_indices
    'S60': (384, 60, 1e-4, (14, 29, 44, 59)),
    'S120': (384, 120, 1e-6, (29, 59, 89, 119)),
    'B60': (768, 60, 1e-6, (14, 29, 44, 59)),
    'B120': (768, 120, 1e-6, (29, 59, 89, 119)),
    'L60': (1024, 60, 1e-6, (14, 29, 44, 59)),
    'L120': (1024, 120, 1e-6, (29, 59, 89, 119)),
}
TINY = golden_arch('patchconvnet_tiny')
SMALL = dict(embed_dims=16, depth=3)


def _tiny(**kwargs):
    """The golden config (official S60 with embed 64, depth 6)."""
    kwargs.setdefault('arch', TINY)
    return PatchConvNet(**kwargs)


def _official_state_dict(golden):
    ckpt = torch.load(golden('patchconvnet_tiny.ckpt.pth'),
                      map_location='cpu', weights_only=True)
    return unwrap_state_dict(ckpt)


def _ref(golden):
    return torch.load(golden('patchconvnet_tiny.ref.pth'),
                      map_location='cpu', weights_only=True)


def _to_map(tokens):
    B, N, C = tokens.shape  # the official model is square-only
    side = math.isqrt(N)
    return tokens.transpose(1, 2).reshape(B, C, side, side)


# --------------------------------------------------------------------------
# golden parity


def test_golden_parity_through_init_cfg(golden):
    ref = _ref(golden)
    model = _tiny(
        out_indices=range(6),
        out_norm=False,
        with_attn_pool=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint=golden('patchconvnet_tiny.ckpt.pth')))
    model.init_weights()
    model.eval()
    feats = ref['features']
    tol = dict(atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        column = model.forward_column(ref['input'])
        outs = model(ref['input'])
        assert len(column) == 7 and len(outs) == 6
        torch.testing.assert_close(column[0], _to_map(feats['patch_embed']),
                                   **tol)
        for i in range(6):
            expected = _to_map(feats[f'blocks.{i}'])
            torch.testing.assert_close(column[i + 1], expected, **tol)
            torch.testing.assert_close(outs[i], expected, **tol)
        cls, weights = model.attn_pool(column[-1])
        torch.testing.assert_close(cls, feats['blocks_token_only.0'], **tol)
        patches = column[-1].flatten(2).transpose(1, 2)
        normed = model.norm(torch.cat((cls, patches), dim=1))
        torch.testing.assert_close(normed, feats['norm'], **tol)
        pooled = model.pooled_features(ref['input'])
        torch.testing.assert_close(pooled, feats['norm'][:, 0], **tol)
        # the dropped head applied to our embedding gives the official logits
        head = _official_state_dict(golden)
        logits = F.linear(pooled, head['head.weight'], head['head.bias'])
        torch.testing.assert_close(logits, ref['logits'], **tol)
        # the attention map: softmax weights of the patches (cls left out)
        amap = model.attention_map(ref['input'])
        assert amap.shape == (2, 6, 6)
        assert (amap > 0).all()
        total = amap.sum(dim=(1, 2)) + weights[:, 0, 0]
        torch.testing.assert_close(total, torch.ones(2))


def test_golden_default_is_the_official_final_norm_of_the_last_block(golden):
    """The paper's path: one map, the patch rows of the official ``norm``
    output, with every parameter from the official checkpoint."""
    ref = _ref(golden)
    model = _tiny(init_cfg=dict(
        type='Pretrained', checkpoint=golden('patchconvnet_tiny.ckpt.pth')))
    missing, unexpected = model.init_from_pretrained(model.init_cfg)
    assert missing == [] and unexpected == []
    assert model.output_shape() == {'out0': (64, 16)}
    expected = _to_map(ref['features']['norm'][:, 1:])
    raw_last = _to_map(ref['features']['blocks.5'])
    raw_mid = _to_map(ref['features']['blocks.2'])
    with torch.no_grad():
        outs = model.eval()(ref['input'])
        # an intermediate tap stays as the official model has it (no norm)
        both = _tiny(out_indices=(2, -1))
        both.load_state_dict(model.state_dict())
        mid, last = both.eval()(ref['input'])
    assert len(outs) == 1
    torch.testing.assert_close(outs[0], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(last, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mid, raw_mid, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(expected, raw_last, atol=1e-2)


def test_golden_output_norm_is_layer_norm_over_channels(golden):
    ref = _ref(golden)
    model = _tiny(out_indices=(5, 1), multi_depth=True)
    sd = model.convert_checkpoint(_official_state_dict(golden))
    load_state_dict_checked(model, sd,
                            tolerated_missing=model.tolerated_missing_keys())
    with torch.no_grad():
        for norm in model.out_norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0, 0.1)
        outs = model.eval()(ref['input'])
    for k, idx in enumerate((5, 1)):
        raw = _to_map(ref['features'][f'blocks.{idx}']).permute(0, 2, 3, 1)
        norm = model.out_norms[k]
        expected = F.layer_norm(raw, (64, ), norm.weight, norm.bias,
                                1e-6).permute(0, 3, 1, 2)
        torch.testing.assert_close(outs[k], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('wrapper', ['model', 'state_dict', 'bare'])
def test_checkpoint_layouts_prefix_and_idempotence(golden, tmp_path,
                                                   wrapper):
    official = _official_state_dict(golden)
    converted = convert_patchconvnet(official, with_attn_pool=True)
    assert convert_patchconvnet(converted, with_attn_pool=True) == converted
    assert not any(k.startswith('head.') for k in converted)
    without_pool = convert_patchconvnet(official)
    assert not any(k.startswith('attn_pool.') for k in without_pool)
    assert set(without_pool) == {
        k for k in converted if not k.startswith('attn_pool.')}
    assert {'norm.weight', 'norm.bias'} <= set(without_pool)
    without_norm = convert_patchconvnet(official, with_norm=False)
    assert set(without_norm) == set(without_pool) - {'norm.weight',
                                                     'norm.bias'}
    payload = official if wrapper != 'state_dict' else {
        'backbone.' + k: v for k, v in converted.items()}
    if wrapper != 'bare':
        payload = {wrapper: payload, 'epoch': 3}
    path = str(tmp_path / 'ckpt.pth')
    torch.save(payload, path)
    init_cfg = dict(type='Pretrained', checkpoint=path)
    if wrapper == 'state_dict':
        init_cfg['prefix'] = 'backbone.'
    if wrapper == 'bare':  # a list: other initialisers run first
        init_cfg = [dict(type='Constant', val=0.5, layer='Conv2d'), init_cfg]
    model = _tiny(out_norm=False, with_attn_pool=True, init_cfg=init_cfg)
    model.init_weights()
    own = model.state_dict()
    assert set(own) == set(converted)
    for key, value in converted.items():
        assert torch.equal(own[key], value), key


def test_converter_tool_output_loads_strictly(golden, tmp_path):
    import importlib.util
    import os.path as osp
    repo_root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    spec = importlib.util.spec_from_file_location(
        'pcn_conv',
        osp.join(repo_root, 'tools', 'model_converters',
                 'patchconvnet2mmsupervit.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for flag, with_pool in (([], False), (['--with-attn-pool'], True)):
        dst = str(tmp_path / f'out_{with_pool}.pth')
        tool.main([golden('patchconvnet_tiny.ckpt.pth'), dst] + flag)
        saved = torch.load(dst, map_location='cpu', weights_only=True)
        assert set(saved) == {'state_dict', 'meta'}
        assert saved['meta']['with_attn_pool'] is with_pool
        model = _tiny(with_attn_pool=with_pool)  # the default backbone
        model.load_state_dict(saved['state_dict'], strict=True)


def test_wrong_arch_checkpoint_names_key_and_shapes(golden):
    model = PatchConvNet(arch=dict(embed_dims=32, depth=6), out_norm=False,
                         init_cfg=dict(
                             type='Pretrained',
                             checkpoint=golden('patchconvnet_tiny.ckpt.pth')))
    with pytest.raises(CheckpointError, match=r"patch_embed\.proj\.0\.weight"
                       r".*\(8, 3, 3, 3\).*\(4, 3, 3, 3\)"):
        model.init_weights()


@pytest.mark.parametrize('arch', ARCHS)
def test_official_manifest_converts_and_loads_strictly(golden, arch):
    with open(golden(f'patchconvnet_{arch}.keys.json')) as f:
        manifest = json.load(f)
    dtypes = {'float32': torch.float32, 'int64': torch.int64}
    official = {
        k: torch.zeros(v['shape'], dtype=dtypes[v['dtype']], device='meta')
        for k, v in manifest['keys'].items()
    }
    embed_dims, depth, _, out_indices = EXPECTED[arch]
    numel = {k: math.prod(v['shape']) for k, v in manifest['keys'].items()}
    head = numel['head.weight'] + numel['head.bias']
    pool = sum(v for k, v in numel.items()
               if k.startswith(('cls_token', 'blocks_token_only.')))
    final_norm = numel['norm.weight'] + numel['norm.bias']
    with torch.device('meta'):
        model = PatchConvNet(arch.lower(), out_norm=False,
                             with_attn_pool=True)
    own = model.state_dict()
    n_pool = sum(p.numel() for p in model.attn_pool.parameters())
    n_norm = sum(p.numel() for p in model.norm.parameters())
    for with_pool in (True, False):
        converted = convert_patchconvnet(official, with_attn_pool=with_pool)
        expected_keys = {k for k in own
                         if with_pool or not k.startswith('attn_pool.')}
        assert set(converted) == expected_keys
        for key, value in converted.items():
            assert own[key].shape == value.shape, key
    load_state_dict_checked(
        model, convert_patchconvnet(official, with_attn_pool=True),
        strict=True)
    # every official parameter is accounted for: ours + head
    assert sum(p.numel() for p in model.parameters()) + head == \
        manifest['num_parameters']
    assert n_pool == pool and n_norm == final_norm
    assert model.depth == depth and model.embed_dims == embed_dims
    # the default backbone is made of official parameters only
    with torch.device('meta'):
        default = PatchConvNet(arch.lower())
    assert default.out_indices == (depth - 1, )
    assert set(default.state_dict()) <= set(convert_patchconvnet(official))
    assert default.unused_parameter_names() == ()


# --------------------------------------------------------------------------
# output contract


@pytest.mark.parametrize('arch', ARCHS)
def test_arch_zoo_settings(arch):
    embed_dims, depth, ls_init, out_indices = EXPECTED[arch]
    with torch.device('meta'):
        model = PatchConvNet(arch)
        multi = PatchConvNet(arch, multi_depth=True)
    assert model.out_indices == (depth - 1, )
    assert model.output_shape() == {'out0': (embed_dims, 16)}
    assert model.out_norms is None and model.norm is not None
    assert multi.out_indices == out_indices
    assert multi.out_channels == (embed_dims, ) * 4
    assert multi.out_strides == (16, ) * 4
    assert len(multi.out_norms) == 4 and multi.norm is None
    assert len(model.blocks) == depth
    # layer-scale init (a real, reduced-depth build of the same width)
    small = PatchConvNet(dict(embed_dims=embed_dims, depth=1,
                              layer_scale_init_value=ls_init))
    assert torch.all(small.blocks[0].gamma == ls_init)
    assert PatchConvNet.resolve_arch(arch)['layer_scale_init_value'] == \
        ls_init


@pytest.mark.parametrize('size', [(33, 47), (97, 131), (16, 16), (64, 32)])
def test_any_input_size_pads_right_bottom(size):
    model = PatchConvNet(SMALL, out_indices=(0, 2)).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        outs = model(x)
        h, w = math.ceil(size[0] / 16), math.ceil(size[1] / 16)
        padded = F.pad(x, (0, 16 * w - size[1], 0, 16 * h - size[0]))
        outs_padded = model(padded)
    assert model.out_channels == (16, 16) and model.out_strides == (16, 16)
    for out, out_p in zip(outs, outs_padded):
        assert out.shape == (2, 16, h, w)
        assert torch.equal(out, out_p)


def test_non_square_maps_keep_rows_and_columns_apart():
    """Transposing the input and every 3x3 kernel transposes the output."""
    model = PatchConvNet(SMALL, out_indices=(2, )).eval()
    model_t = copy.deepcopy(model)
    for m in model_t.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            m.weight.data = m.weight.data.transpose(-1, -2).contiguous()
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        out = model(x)[0]
        out_t = model_t(x.transpose(-1, -2))[0]
    assert out.shape == (1, 16, 3, 5)
    torch.testing.assert_close(out_t, out.transpose(-1, -2), atol=1e-5,
                               rtol=1e-5)


def test_final_norm_only_where_the_official_model_has_it():
    x = torch.randn(1, 3, 32, 48)
    model = PatchConvNet(SMALL, out_indices=(0, 2)).eval()
    with torch.no_grad():
        raw = model.forward_column(x)
        first, last = model(x)
    assert torch.equal(first, raw[1])
    normed = F.layer_norm(raw[3].permute(0, 2, 3, 1), (16, ),
                          model.norm.weight, model.norm.bias, 1e-6)
    torch.testing.assert_close(last, normed.permute(0, 3, 1, 2))
    # no norm where it would not be applied, unless pooling needs it
    assert PatchConvNet(SMALL, out_indices=(0, )).norm is None
    assert PatchConvNet(SMALL, out_norm=False).norm is None
    pooled = PatchConvNet(SMALL, out_norm=False, with_attn_pool=True)
    assert pooled.norm is not None
    assert set(pooled.unused_parameter_names()) == {
        n for n, _ in pooled.named_parameters()
        if n.startswith(('norm.', 'attn_pool.'))}
    # freezing every block freezes the norm of the last one too
    frozen = PatchConvNet(SMALL, frozen_stages=3)
    assert not any(p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad
               for p in PatchConvNet(SMALL, frozen_stages=2).norm.parameters())


def test_drop_path_is_constant():
    model = PatchConvNet(SMALL, drop_path_rate=0.2)
    assert all(b.drop_path.drop_prob == 0.2 for b in model.blocks)


def test_squeeze_excite_is_the_official_one():
    """timm 0.3.2's SqueezeExcite(dim, se_ratio=0.25): names, width, maths."""
    se = PatchConvNet(SMALL).blocks[0].se
    assert [n for n, _ in se.named_parameters()] == [
        'conv_reduce.weight', 'conv_reduce.bias', 'conv_expand.weight',
        'conv_expand.bias']
    assert se.conv_reduce.out_channels == 4
    x = torch.randn(2, 16, 3, 5)
    gate = torch.sigmoid(se.conv_expand(F.relu(se.conv_reduce(
        x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(se(x), x * gate)


def test_bn_out_norm_and_norm_eval():
    model = PatchConvNet(SMALL, multi_depth=True, norm_cfg=dict(type='BN'),
                         norm_eval=True, out_indices=(1, ))
    assert isinstance(model.out_norms[0], nn.BatchNorm2d)
    model.train()
    assert not model.out_norms[0].training
    assert model(torch.randn(1, 3, 32, 48))[0].shape == (1, 16, 2, 3)


def test_layer_depth_and_no_weight_decay_names():
    model = PatchConvNet(dict(embed_dims=16, depth=4), with_attn_pool=True)
    n = 6
    assert model.get_layer_depth('backbone.patch_embed.proj.0.weight',
                                 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.blocks.0.gamma',
                                 'backbone.') == (1, n)
    assert model.get_layer_depth('backbone.blocks.3.se.conv_reduce.bias',
                                 'backbone.') == (4, n)
    for name in ('backbone.out_norms.0.weight', 'backbone.norm.weight',
                 'backbone.attn_pool.cls_token',
                 'decode_head.conv_seg.weight'):
        assert model.get_layer_depth(name, 'backbone.') == (n - 1, n)
    assert model.get_layer_depth('blocks.2.conv1.weight') == (3, n)
    names = [name for name, _ in model.named_parameters()]
    for name in names:
        layer, _ = model.get_layer_depth(name)
        if name.startswith('blocks.'):
            assert layer == int(name.split('.')[1]) + 1
    no_wd = [name for name in names
             if any(k in name for k in model.no_weight_decay_keywords)]
    assert 'attn_pool.cls_token' in no_wd
    assert 'attn_pool.gamma_1' in no_wd and 'blocks.3.gamma' in no_wd
    assert len(no_wd) == 4 + 3


def test_registered_in_the_mmsupervit_scope():
    """``type='mmsupervit.PatchConvNet'`` resolves from the root registry
    (what mmseg/mmdet configs use; tests/test_configs.py builds those)."""
    from mmengine.registry import MODELS as ROOT
    model = ROOT.build(dict(type='mmsupervit.PatchConvNet', arch=SMALL))
    assert isinstance(model, PatchConvNet)
    assert MODELS.get('PatchConvNet') is PatchConvNet


# --------------------------------------------------------------------------
# misuse


def test_misuse_errors():
    with pytest.raises(ValueError, match='s60, s120, b60, b120, l60, l120'):
        PatchConvNet('S90')
    with pytest.raises(ValueError, match='multiple of 8'):
        PatchConvNet(dict(embed_dims=20, depth=2))
    with pytest.raises(TypeError):
        PatchConvNet(SMALL, out_indice=(1, ))  # misspelled keys must fail
    for bad in ((3, ), (-4, ), (0, 0), (), (1.0, )):
        with pytest.raises(ValueError, match='out_indices'):
            PatchConvNet(SMALL, out_indices=bad)
    with pytest.raises(ValueError, match='frozen_stages'):
        PatchConvNet(SMALL, frozen_stages=4)
    with pytest.raises(ValueError, match='multi_depth=True'):
        PatchConvNet(SMALL, norm_cfg=dict(type='BN'))
    with pytest.raises(ValueError, match='multi_depth=True'):
        PatchConvNet(SMALL, multi_depth=True, out_norm=False,
                     norm_cfg=dict(type='BN'))
    model = PatchConvNet(SMALL, out_indices=(-1, 0))
    assert model.out_indices == (2, 0)
    with pytest.raises(ValueError, match='at least 16x16'):
        model(torch.randn(1, 3, 15, 64))
    with pytest.raises(RuntimeError, match='with_attn_pool=True'):
        model.attention_map(torch.randn(1, 3, 32, 32))
    with pytest.raises(RuntimeError, match='with_attn_pool=True'):
        model.pooled_features(torch.randn(1, 3, 32, 32))


def test_attention_map_non_square():
    model = PatchConvNet(SMALL, with_attn_pool=True).eval()
    with torch.no_grad():
        amap = model.attention_map(torch.randn(2, 3, 33, 80))
    assert amap.shape == (2, 3, 5)
    assert (amap > 0).all() and (amap.sum(dim=(1, 2)) < 1).all()
