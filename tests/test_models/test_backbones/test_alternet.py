import json
import math

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from golden_weights import golden_arch

from mmsupervit.models.backbones.alternet import (AlterNet, WindowAttention,
                                                  convert_alternet)
from mmsupervit.models.utils.checkpoint import (CheckpointError,
                                                load_state_dict_checked,
                                                unwrap_state_dict)
from mmsupervit.registry import MODELS

TINY = golden_arch('alternet_tiny')
TINY50 = dict(TINY, block='bottleneck')
ARCHS = {'18': 18, '34': 34, '50': 50, '101': 101, '152': 152,
         'tiny50': TINY50}


def _ceil_chain(n, times):
    for _ in range(times):
        n = (n + 1) // 2
    return n


def _expected_shapes(model, batch, h, w):
    return [(batch, c, _ceil_chain(h, int(math.log2(s))),
             _ceil_chain(w, int(math.log2(s))))
            for c, s in zip(model.out_channels, model.out_strides)]


# ------------------------------------------------------------ golden parity
def test_golden_parity_through_init_cfg(golden):
    ckpt = golden('alternet_tiny.ckpt.pth')
    ref = torch.load(golden('alternet_tiny.ref.pth'), map_location='cpu',
                     weights_only=True)
    model = AlterNet(arch=TINY,
                     init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        stages = model.forward_stages(ref['input'])
        outs = model(ref['input'])
    layers = [k for k in ref['features'] if k.startswith('layer')]
    assert 'layer4' in layers  # the reference keeps the last stages only
    for key in layers:
        torch.testing.assert_close(
            stages[int(key[len('layer'):]) - 1], ref['features'][key],
            atol=1e-4, rtol=1e-4, msg=lambda m, key=key: f'{key}: {m}')
    # The classifier BN was loaded into norm3: its output is the official
    # map that gets average-pooled.
    torch.testing.assert_close(
        outs[3], ref['features']['classifier.0.relu'], atol=1e-4, rtol=1e-4)


def test_convert_is_idempotent_and_drops_head(golden):
    ckpt = torch.load(golden('alternet_tiny.ckpt.pth'), weights_only=True)
    sd = unwrap_state_dict(ckpt)
    once = convert_alternet(sd)
    assert convert_alternet(once) == once
    assert not any(k.startswith(('classifier', 'layer0')) for k in once)
    assert 'stem.conv.weight' in once and 'norm3.running_var' in once
    assert 'layer2.1.attn.to_out.bias' in once
    assert len(once) == len(sd) - 2  # dense weight and bias


@pytest.mark.filterwarnings('ignore:.*to a meta parameter')
@pytest.mark.parametrize('variant', list(ARCHS))
def test_official_manifests_load_strictly(golden, variant):
    with open(golden(f'alternet_{variant}.keys.json')) as f:
        manifest = json.load(f)
    sd = {
        k: torch.zeros(v['shape'],
                       dtype=getattr(torch, v['dtype']), device='meta')
        for k, v in manifest['keys'].items()
    }
    with torch.device('meta'):
        model = AlterNet(arch=ARCHS[variant])
    converted = convert_alternet(sd)
    missing, unexpected = load_state_dict_checked(
        model, converted, tolerated_missing=model.tolerated_missing_keys())
    assert unexpected == []
    # Only the output norms of stages 0-2 are new (norm3 = classifier BN).
    assert sorted({k.split('.')[0] for k in missing}) == [
        'norm0', 'norm1', 'norm2']
    own = model.state_dict()
    for key, value in converted.items():
        assert own[key].shape == value.shape, key
    n_head = sum(
        math.prod(v['shape']) for k, v in manifest['keys'].items()
        if k.startswith('classifier.0.dense'))
    n_new = sum(p.numel() for n, p in model.named_parameters()
                if n.startswith(('norm0', 'norm1', 'norm2')))
    n_own = sum(p.numel() for p in model.parameters())
    assert n_own - n_new == manifest['num_parameters'] - n_head


def test_wrong_arch_fails_naming_key_and_shapes(golden, tmp_path):
    model = AlterNet(
        arch=18,
        init_cfg=dict(
            type='Pretrained', checkpoint=golden('alternet_tiny.ckpt.pth')))
    with pytest.raises(CheckpointError,
                       match=r"'layer2\.1\.attn\.to_q\.weight' has shape "
                       r'\(192, 128, 1, 1\) .* but \(384, 128, 1, 1\)'):
        model.init_weights()


def test_converter_tool_and_prefix(golden, tmp_path):
    import importlib.util
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))))
    path = osp.join(root, 'tools', 'model_converters',
                    'alternet2mmsupervit.py')
    spec = importlib.util.spec_from_file_location('a2m', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    dst = str(tmp_path / 'out.pth')
    tool.main([golden('alternet_tiny.ckpt.pth'), dst])
    saved = torch.load(dst, weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    ref = convert_alternet(
        unwrap_state_dict(
            torch.load(golden('alternet_tiny.ckpt.pth'), weights_only=True)))
    assert saved['state_dict'].keys() == ref.keys()
    # A whole-detector checkpoint of ours loads with prefix='backbone.'.
    wrapped = str(tmp_path / 'det.pth')
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in ref.items()}}, wrapped)
    model = AlterNet(
        arch=TINY,
        init_cfg=dict(type='Pretrained', checkpoint=wrapped,
                      prefix='backbone.'))
    model.init_weights()
    torch.testing.assert_close(model.layer3[1].attn.pos_embedding,
                               ref['layer3.1.attn.pos_embedding'])


# -------------------------------------------------------- padding / masking
def _brute_force_window_attention(attn: WindowAttention, x: torch.Tensor):
    """Per-window attention over the real tokens only, written with loops
    over windows and an explicit (key - query) bias, no padding at all."""
    b, _, h, w = x.shape
    p, heads, d = attn.window_size, attn.num_heads, attn.head_dim
    q = attn.to_q(x)
    k, v = attn.to_kv(x).chunk(2, dim=1)
    table = attn.pos_embedding
    out = torch.zeros(b, heads * d, h, w)
    for r0 in range(0, h, p):
        for c0 in range(0, w, p):
            rows = range(r0, min(r0 + p, h))
            cols = range(c0, min(c0 + p, w))
            coords = [(r, c) for r in rows for c in cols]
            rr = torch.tensor([r for r, _ in coords])
            cc = torch.tensor([c for _, c in coords])

            def tok(t):
                return t[:, :, rr, cc].reshape(b, heads, d, -1).transpose(2, 3)

            qt, kt, vt = tok(q), tok(k), tok(v)
            bias = torch.stack([
                torch.stack([
                    table[kr - qr + p - 1, kc - qc + p - 1]
                    for kr, kc in coords
                ]) for qr, qc in coords
            ])
            logits = qt @ kt.transpose(-1, -2) * d**-0.5 + bias
            o = logits.softmax(-1) @ vt  # b, heads, n, d
            out[:, :, rr, cc] = o.transpose(2, 3).reshape(b, heads * d, -1)
    return attn.to_out(out)


@pytest.mark.parametrize('hw', [(14, 14), (9, 11), (5, 16)])
def test_window_attention_matches_brute_force(hw):
    attn = WindowAttention(8, 12, num_heads=2, head_dim=4)
    with torch.no_grad():
        attn.pos_embedding.normal_(0, 1)
        x = torch.randn(2, 8, *hw)
        torch.testing.assert_close(
            attn(x), _brute_force_window_attention(attn, x),
            atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('hw', [(97, 131), (256, 256), (120, 200)])
def test_any_input_size(hw):
    model = AlterNet(arch=TINY).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    assert [tuple(o.shape) for o in outs] == _expected_shapes(model, 1, *hw)
    assert all(torch.isfinite(o).all() for o in outs)
    assert all(o.is_contiguous() for o in outs)


@pytest.mark.parametrize('hw', [(512, 512), (800, 1333)])
def test_detection_and_segmentation_sizes_meta(hw):
    with torch.device('meta'):
        model = AlterNet(arch=50).eval()
        outs = model(torch.empty(1, 3, *hw))
    assert [tuple(o.shape) for o in outs] == _expected_shapes(model, 1, *hw)


@pytest.mark.parametrize('arch,channels', [(18, (64, 128, 256, 512)),
                                           (50, (256, 512, 1024, 2048))])
def test_output_contract_cpu(arch, channels):
    model = MODELS.build(
        dict(type='AlterNet', arch=str(arch), out_indices=(1, 3))).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert model.out_channels == (channels[1], channels[3])
    assert model.out_strides == (8, 32)
    assert [tuple(o.shape) for o in outs] == [(1, channels[1], 8, 8),
                                              (1, channels[3], 2, 2)]
    assert all((o >= 0).all() for o in outs)  # norm + ReLU applied
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')


def test_msa_positions_follow_official_rule():
    def msa(model, s):
        return [j for j, b in enumerate(getattr(model, f'layer{s}'))
                if hasattr(b, 'attn')]

    with torch.device('meta'):
        m152 = AlterNet(arch=152)
        m18 = AlterNet(arch='alternet-18')
    assert [msa(m152, s) for s in (1, 2, 3, 4)] == [[], [7], [31, 33, 35],
                                                    [1, 3]]
    assert [msa(m18, s) for s in (1, 2, 3, 4)] == [[], [1], [1], [1]]
    assert m152.layer4[3].attn.num_heads == 24
    assert m152.layer4[3].attn.to_q.out_channels == 24 * 64


# ----------------------------------------------------------- training knobs
def test_drop_path_rule():
    model = AlterNet(arch=TINY, drop_path_rate=0.2)
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for s in range(1, 5)
             for b in getattr(model, f'layer{s}')]
    assert rates == pytest.approx([0.2 * k / 6 for k in range(7)])


def test_norm_cfg_and_scratch_init():
    model = AlterNet(arch=TINY, norm_cfg=dict(type='GN', num_groups=16))
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    assert isinstance(model.norm3, nn.GroupNorm)
    model.init_weights()
    assert torch.isfinite(model(torch.randn(1, 3, 40, 40))[3]).all()
    w = model.layer4[0].conv1.weight
    assert w.std().item() == pytest.approx(
        math.sqrt(2 / (w.shape[0] * 9)), rel=0.1)
    table = model.layer2[1].attn.pos_embedding
    assert 0.012 < table.std().item() < 0.028
    sync = AlterNet(arch=TINY, norm_cfg=dict(type='SyncBN'))
    assert type(sync.layer1[0].bn).__name__ == 'SyncBatchNorm'


def test_get_layer_depth():
    model = AlterNet(arch=18)
    num = 2 * 4 + 2
    assert model.get_layer_depth('backbone.stem.conv.weight',
                                 'backbone.') == (0, num)
    assert model.get_layer_depth('backbone.layer1.0.bn.weight',
                                 'backbone.') == (1, num)
    assert model.get_layer_depth('backbone.layer3.1.attn.pos_embedding',
                                 'backbone.') == (6, num)
    assert model.get_layer_depth('layer4.1.conv.weight') == (8, num)
    assert model.get_layer_depth('backbone.norm2.weight',
                                 'backbone.') == (num - 1, num)
    assert model.get_layer_depth('decode_head.conv.weight',
                                 'backbone.') == (num - 1, num)
    assert AlterNet.no_weight_decay_keywords == ('pos_embedding', )
    ids = [model.get_layer_depth(n)[0] for n, _ in model.named_parameters()]
    assert sorted(set(ids)) == list(range(num))


def test_misuse():
    with pytest.raises(ValueError, match='aliases: alternet-101'):
        AlterNet(arch='resnet50')
    with pytest.raises(ValueError, match="block'] must be one of"):
        AlterNet(arch=dict(TINY, block='basic2'))
    with pytest.raises(ValueError, match='num_msa'):
        AlterNet(arch=dict(TINY, num_msa=(0, 2, 1, 1)))
    with pytest.raises(ValueError, match='out_indices'):
        AlterNet(arch=TINY, out_indices=(0, 4))
    with pytest.raises(ValueError, match='out_indices'):
        AlterNet(arch=TINY, out_indices=())
    with pytest.raises(ValueError, match='frozen_stages'):
        AlterNet(arch=TINY, frozen_stages=5)
    with pytest.raises(TypeError):
        AlterNet(arch=TINY, drop_path=0.1)
