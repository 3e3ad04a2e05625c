"""Tests of the SuperViT backbone (parity with the official code, dense
contract, token restoration, checkpoints, misuse)."""
import argparse
import importlib.util
import json
import logging
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import (VisionTransformer,
                                            checkpoint_filter_fn)

from golden_weights import golden_arch

import mmsupervit  # noqa: F401
from mmsupervit.models.backbones.supervit import (PRUNE_BLOCKS, SuperViT,
                                                  convert_supervit)
from mmsupervit.models.utils import checkpoint as ckpt_module
from mmsupervit.models.utils.checkpoint import (CheckpointError,
                                                load_pretrained,
                                                unwrap_state_dict)
from mmsupervit.registry import MODELS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

TINY = {  # the golden configs
    'deit': golden_arch('supervit_deit_tiny'),
    'lvvit': golden_arch('supervit_lvvit_tiny'),
}
SMALL = {
    'deit': dict(embed_dims=32, depth=12, num_heads=2),
    'lvvit': dict(
        base='lvvit-s', embed_dims=32, depth=12, num_heads=2,
        stem_channels=16),
}
RUNS = ['224_1.0', '224_0.7', '160_0.5', '128_1.0']
TOL = dict(atol=1e-4, rtol=1e-4)

_CACHE = {}


# tiny models: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


@pytest.fixture
def logs(monkeypatch):
    """(level, message) of everything the checkpoint loader logs."""
    records = []
    monkeypatch.setattr(
        ckpt_module, 'print_log',
        lambda msg, logger=None, level=logging.INFO: records.append(
            (level, msg)))
    return records


def golden_model(name, golden_path):
    """Tiny model with the golden weights, and the reference runs."""
    if name not in _CACHE:
        ckpt_file = golden_path(f'supervit_{name}_tiny.ckpt.pth')
        ref = torch.load(
            golden_path(f'supervit_{name}_tiny.ref.pth'),
            map_location='cpu',
            weights_only=True)
        model = SuperViT(arch=TINY[name])
        missing, unexpected = load_pretrained(
            model, ckpt_file, convert=convert_supervit)
        _CACHE[name] = (model.eval(), ref, missing, unexpected, ckpt_file)
    return _CACHE[name]


# ----------------------------------------------------------------------------
# parity with the official implementation
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['deit', 'lvvit'])
def test_golden_checkpoint_loads_fully(name, golden):
    model, _, missing, unexpected, ckpt_file = golden_model(name, golden)
    assert missing == [] and unexpected == []
    raw = unwrap_state_dict(
        torch.load(ckpt_file, map_location='cpu', weights_only=True))
    dropped = sorted(set(raw) - set(convert_supervit(raw)))
    expected = ['head.bias', 'head.weight']
    if name == 'lvvit':
        expected = ['aux_head.bias', 'aux_head.weight'] + expected
    assert dropped == expected
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in convert_supervit(
        raw).items())


@pytest.mark.parametrize('name', ['deit', 'lvvit'])
@pytest.mark.parametrize('run_key', RUNS)
def test_golden_parity(name, run_key, golden):
    model, ref, *_ = golden_model(name, golden)
    run = ref[run_key]
    feats = run['features']
    with torch.no_grad():
        out = model.forward_tokens(
            ref['input'],
            pos_embed_size=run['img_size'],
            keep_rate=run['keep_ratio'],
            resize_input=True)
    stem = out['patch_embed']
    if name == 'deit':  # the official DeiT hook saw tokens, LV-ViT a map
        stem = stem.flatten(2).transpose(1, 2)
    torch.testing.assert_close(stem, feats['patch_embed'], **TOL)
    torch.testing.assert_close(out['tokens_in'], feats['tokens_in'], **TOL)
    assert [t.shape[1] for t in out['blocks']] == run['tokens_per_block']
    stored = [i for i in range(len(out['blocks'])) if f'blocks.{i}' in feats]
    assert stored[-1] == len(out['blocks']) - 1
    for i in stored:
        torch.testing.assert_close(
            out['blocks'][i], feats[f'blocks.{i}'], **TOL,
            msg=lambda m, i=i: f'blocks.{i}: {m}')
    torch.testing.assert_close(out['norm'], feats['norm'], **TOL)
    assert sorted(out['keep_index']) == sorted(run['keep_index'])
    for i in run['keep_index']:
        assert torch.equal(out['keep_index'][i], run['keep_index'][i])
        assert torch.equal(out['orig_index'][i], run['orig_index'][i])
    if run['keep_ratio'] < 1:
        assert sorted(out['keep_index']) == list(PRUNE_BLOCKS)


@pytest.mark.parametrize('name', ['deit', 'lvvit'])
@pytest.mark.parametrize('out_indices,keys', [
    ((2, 5, 11), ['blocks.2', 'blocks.5', 'norm']),
    ((11, 5), ['norm', 'blocks.5']),  # the last block, not the last listed
    ((2, 8), ['blocks.2', 'blocks.8']),  # no last block: no final norm
])
def test_dense_forward_equals_token_path(name, out_indices, keys, golden):
    """At keep 1.0 the dense maps are the official tokens, re-shaped; the
    final LayerNorm is applied to the last block's output only, as the
    official ``norm`` after the last block."""
    model, ref, *_ = golden_model(name, golden)
    run = ref['224_1.0']
    # the official forward resized the stored input to 224 this way
    x = F.interpolate(ref['input'], (224, 224), mode='bilinear',
                      align_corners=True)
    model.out_indices = out_indices
    try:
        with torch.no_grad():
            maps = model(x)
    finally:
        model.out_indices = (2, 5, 8, 11)
    feats = run['features']
    assert len(maps) == len(keys)
    for m, key in zip(maps, keys):
        assert m.shape == (2, 32, 14, 14)
        tokens = m.flatten(2).transpose(1, 2)
        torch.testing.assert_close(tokens, feats[key][:, 1:], **TOL)


@pytest.mark.parametrize('variant,arch', [('super_deit_s', 'deit-s'),
                                          ('super_lvvit_s', 'lvvit-s')])
def test_full_size_manifest_loads_strictly(variant, arch, golden):
    with open(golden(f'{variant}.keys.json')) as f:
        manifest = json.load(f)
    dtypes = dict(float32=torch.float32, int64=torch.int64)
    official = {
        k: torch.zeros(v['shape'], dtype=dtypes[v['dtype']])
        for k, v in manifest['keys'].items()
    }
    converted = convert_supervit(official)
    assert convert_supervit(converted).keys() == converted.keys()
    with torch.device('meta'):  # shapes and names only: no memory, fast
        model = SuperViT(arch=arch)
    result = model.load_state_dict(converted, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    n_heads = sum(v.numel() for k, v in official.items()
                  if k.startswith(('head.', 'aux_head.')))
    n_model = sum(p.numel() for p in model.parameters())
    assert n_model + n_heads == manifest['num_parameters']


# ----------------------------------------------------------------------------
# output contract
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['deit', 'lvvit'])
@pytest.mark.parametrize('hw,keep_rate,input_scale',
                         [((33, 33), 1.0, 1.0), ((97, 131), 1.0, 1.0),
                          ((97, 131), 0.5, 1.0), ((224, 320), 0.7, 0.75),
                          ((16, 17), 1.0, 0.5), ((33, 33), 0.5, 160 / 224)])
def test_output_contract(name, hw, keep_rate, input_scale):
    model = SuperViT(
        arch=SMALL[name], keep_rate=keep_rate, input_scale=input_scale).eval()
    assert model.out_indices == (2, 5, 8, 11)
    assert model.out_channels == (32, ) * 4
    assert model.out_strides == (16, ) * 4
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    assert isinstance(outs, tuple) and len(outs) == 4
    expected = (1, 32, -(-hw[0] // 16), -(-hw[1] // 16))
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == expected
        assert out.shape[1] == c and s == 16
        assert torch.isfinite(out).all()


def test_output_contract_512_tiny():
    model = SuperViT(arch=TINY['deit'], keep_rate=0.7).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 512, 512))
    assert [o.shape for o in outs] == [(1, 32, 32, 32)] * 4


@pytest.mark.parametrize('arch,depth,indices',
                         [('deit-s', 12, (2, 5, 8, 11)),
                          ('lvvit-s', 16, (3, 7, 11, 15))])
def test_real_arch_contract(arch, depth, indices):
    # The meta device runs the real-size graph (shapes, pruning, padding,
    # input scale) without the cost of initialising 22M parameters.
    with torch.device('meta'):
        model = MODELS.build(
            dict(type='mmsupervit.SuperViT', arch=arch,
                 keep_rate=0.7)).eval()
        assert len(model.blocks) == depth
        assert model.out_indices == indices
        assert model.out_channels == (384, ) * 4
        assert model.out_strides == (16, ) * 4
        x = torch.empty(1, 3, 40, 72)
        outs = model(x)
        assert [o.shape for o in outs] == [(1, 384, 3, 5)] * 4
        model.input_scale = 0.75
        outs = model(torch.empty(1, 3, 97, 131))
        assert [o.shape for o in outs] == [(1, 384, 7, 9)] * 4


def test_arch_settings():
    deit = SuperViT(arch=dict(embed_dims=32, depth=4, num_heads=2))
    lv = SuperViT(arch=dict(base='lvvit-s', embed_dims=32, depth=4,
                            num_heads=2))
    assert deit.blocks[0].attn.qkv.bias is not None
    assert lv.blocks[0].attn.qkv.bias is None
    assert deit.norm.eps == 1e-6 and lv.norm.eps == 1e-5
    assert deit.blocks[0].skip_lam == 1 and lv.blocks[0].skip_lam == 2
    assert lv.blocks[0].mlp.fc1.out_features == 96
    assert lv.patch_embed.conv1.out_channels == 64
    assert [p.shape[1] for p in deit.pos_embed_list] == [65, 101, 145, 197]


# ----------------------------------------------------------------------------
# pruned-token restoration
# ----------------------------------------------------------------------------
def _value_at_pruning(model, block_input, block_idx):
    blk = model.blocks[block_idx]
    attn_out, _ = blk.attn(blk.norm1(block_input))
    return block_input + attn_out / blk.skip_lam


@pytest.mark.parametrize('name', ['deit', 'lvvit'])
def test_pruned_tokens_are_restored(name, golden):
    model, ref, *_ = golden_model(name, golden)
    x = ref['input'][:1]
    model.keep_rate = 0.5
    try:
        with torch.no_grad():
            tok = model.forward_tokens(x, keep_rate=0.5)
            maps = model(x)
    finally:
        model.keep_rate = 1.0
    B, C = 1, 32
    # expected dense sequence at each output block, built independently
    # from the official-order tokens and the pruning indices
    n_tokens = tok['tokens_in'].shape[1]
    canvas = torch.full((B, n_tokens, C), float('nan'))
    prev_orig = torch.arange(n_tokens).unsqueeze(0)
    expected = {}
    for i in range(12):
        if i in tok['keep_index']:
            block_in = tok['blocks'][i - 1]
            at_prune = _value_at_pruning(model, block_in, i)
            canvas[0, prev_orig[0]] = at_prune[0]
            prev_orig = tok['orig_index'][i]
        if i in model.out_indices:
            dense = canvas.clone()
            dense[0, prev_orig[0]] = tok['blocks'][i][0]
            expected[i] = dense
    assert not torch.isnan(expected[11]).any()
    for m, i in zip(maps, model.out_indices):
        tokens = m.flatten(2).transpose(1, 2)
        exp = expected[i][:, 1:]
        if i == 11:  # the last block: final norm
            exp = model.norm(expected[i])[:, 1:]
        torch.testing.assert_close(tokens, exp, atol=1e-5, rtol=1e-5)
    # a pruned token really differs from the unpruned network's value
    with torch.no_grad():
        full = model(x)[-1]
    pruned = set(range(1, n_tokens)) - set(tok['orig_index'][3][0].tolist())
    p = min(pruned) - 1
    w = x.shape[-1] // 16
    assert not torch.allclose(maps[-1][0, :, p // w, p % w],
                              full[0, :, p // w, p % w])


def test_gradients_reach_kept_and_pruned_tokens():
    model = SuperViT(arch=SMALL['deit'], keep_rate=0.5)
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    with torch.no_grad():
        tok = model.forward_tokens(x.detach(), keep_rate=0.5)
    kept = set((tok['orig_index'][9][0, 1:] - 1).tolist())
    pruned_at_3 = set(range(16)) - set(
        (tok['orig_index'][3][0, 1:] - 1).tolist())
    out = model(x)[-1].flatten(2)  # (1, C, 16)
    for positions, reaches_last in [(kept, True), (pruned_at_3, False)]:
        model.zero_grad()
        x.grad = None
        # a random weighting: the plain sum of a LayerNorm output has no
        # gradient
        weight = torch.randn(out.shape[1], len(positions))
        (out[0, :, sorted(positions)] * weight).sum().backward(
            retain_graph=True)
        assert x.grad.abs().sum() > 0
        assert model.blocks[3].attn.qkv.weight.grad.abs().sum() > 0
        last = model.blocks[11].mlp.fc1.weight.grad
        assert (last is not None and last.abs().sum() > 0) == reaches_last


def test_keep_rate_one_is_unpruned_and_sampling_in_training():
    model = SuperViT(arch=SMALL['deit'], train_keep_rates=(0.5, ))
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        full = model.eval()(x)
        tok = model.forward_tokens(x, keep_rate=1.0)
        assert tok['keep_index'] == {}
        assert [t.shape[1] for t in tok['blocks']] == [21] * 12
        model.keep_rate = 0.5
        pruned = model(x)
        model.keep_rate = 1.0
        sampled = model.train()(x)
    for a, b in zip(sampled, pruned):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(pruned[-1], full[-1])


# ----------------------------------------------------------------------------
# input scale
# ----------------------------------------------------------------------------
def test_pos_embed_cache_follows_the_weights():
    """Inference reuses the resampled position table, but never a stale one:
    an in-place update (optimizer step, ``load_state_dict``) or a dtype
    change gives the table of the new weights, and with autograd the table
    is resampled in the graph so it receives gradients."""
    torch.manual_seed(0)
    model = SuperViT(arch=SMALL['deit']).eval()
    x = torch.randn(1, 3, 96, 80)  # a 6x5 grid: the 224 table is resampled

    def uncached():
        model._pos_embed_cache.clear()
        return model(x)

    with torch.no_grad():
        first = model(x)
        assert len(model._pos_embed_cache) == 1
        torch.testing.assert_close(model(x), first, atol=0, rtol=0)
        model.pos_embed_list[3].add_(0.5)  # as an optimizer step would
        stepped = model(x)
        assert not torch.equal(stepped[0], first[0])
        torch.testing.assert_close(stepped, uncached(), atol=0, rtol=0)
        model.load_state_dict(SuperViT(arch=SMALL['deit']).state_dict())
        loaded = model(x)
        torch.testing.assert_close(loaded, uncached(), atol=0, rtol=0)
        model.double()
        as_double = model(x.double())
        assert as_double[0].dtype == torch.float64
        model._pos_embed_cache.clear()
        torch.testing.assert_close(
            as_double, model(x.double()), atol=0, rtol=0)
    model.float().train()
    for _ in range(2):  # a cached table would carry a freed graph
        model.zero_grad()
        model(x)[-1].sum().backward()
        assert model.pos_embed_list[3].grad.abs().sum() > 0


def test_input_scale_table_choice():
    model = SuperViT(arch=SMALL['deit'], pos_embed_size=192).eval()
    assert model.pos_embed_size_for_scale(1.0) == 224
    assert model.pos_embed_size_for_scale(160 / 224) == 160
    assert model.pos_embed_size_for_scale(128 / 224) == 128
    assert model.pos_embed_size_for_scale(0.5) == 192
    # at 160/224 the trunk is the token path at 160 with the 160 table, on
    # the input resized as the official model does
    x = torch.randn(1, 3, 224, 224)
    model.input_scale = 160 / 224
    with torch.no_grad():
        maps = model(x)
        tok = model.forward_tokens(x, pos_embed_size=160, resize_input=True)
    trunk = tok['blocks'][2][:, 1:].transpose(1, 2).reshape(1, 32, 10, 10)
    assert maps[0].shape == (1, 32, 14, 14)
    torch.testing.assert_close(
        maps[0], model._to_nominal_grid(trunk, (160, 160), (224, 224)))


@pytest.mark.parametrize('name', ['deit', 'lvvit'])
@pytest.mark.parametrize('run_key', ['160_0.5', '128_1.0'])
def test_dense_input_scale_runs_the_official_trunk(name, run_key, golden):
    """On the golden 64x64 input, ``input_scale = size / 64`` with the
    ``size`` table runs exactly the official ``model(x, size, keep)``,
    which resizes with bilinear ``align_corners=True``."""
    model, ref, *_ = golden_model(name, golden)
    run = ref[run_key]
    size, feats = run['img_size'], run['features']
    seen = {}
    hooks = [model.patch_embed.register_forward_hook(
        lambda mod, args, out: seen.__setitem__('patch_embed', out))]
    for i in range(12):
        hooks.append(model.blocks[i].register_forward_hook(
            lambda mod, args, out, i=i: seen.__setitem__(i, out[0])))
    model.pos_embed_size = size
    model.input_scale = size / 64
    model.keep_rate = run['keep_ratio']
    try:
        with torch.no_grad():
            maps = model(ref['input'])
    finally:
        model.pos_embed_size, model.input_scale, model.keep_rate = 224, 1., 1.
        for hook in hooks:
            hook.remove()
    stem = seen['patch_embed']
    assert stem.shape[-2:] == (size // 16, size // 16)
    if name == 'deit':
        stem = stem.flatten(2).transpose(1, 2)
    torch.testing.assert_close(stem, feats['patch_embed'], **TOL)
    for i in (2, 3, 5, 6, 8, 9, 11):  # official order, kept tokens only
        torch.testing.assert_close(seen[i], feats[f'blocks.{i}'], **TOL)
    assert [o.shape for o in maps] == [(2, 32, 4, 4)] * 4
    if run['keep_ratio'] == 1:  # the maps are the official tokens, resampled
        side = size // 16
        for m, key in zip(maps,
                          ['blocks.2', 'blocks.5', 'blocks.8', 'norm']):
            grid = feats[key][:, 1:].transpose(1, 2).reshape(
                2, 32, side, side)
            torch.testing.assert_close(
                m, model._to_nominal_grid(grid, (size, size), (64, 64)),
                **TOL)


@pytest.mark.parametrize('hw,scaled_hw', [((96, 96), (48, 48)),
                                          ((224, 224), (160, 160)),
                                          ((64, 64), (128, 128)),
                                          ((97, 131), (73, 98))])
def test_nominal_grid_follows_the_input_resize(hw, scaled_hw):
    """Output cell i of the original input (centre at pixel coordinate
    16 i + 8) reads the trunk map where the resized input shows that point.

    The ``align_corners=True`` resize maps original pixel index p to scaled
    index p (hs - 1) / (H - 1). A trunk map whose cells hold the original
    coordinate their centre shows is linear, so its bilinear resampling at
    every interior output cell must give exactly 16 i + 8.
    """
    model = SuperViT(arch=SMALL['deit'])
    (H, W), (hs, ws) = hw, scaled_hw
    # the resize really is this affine map of pixel indices
    ramp = (torch.arange(H, dtype=torch.float64) + 0.5).view(1, 1, H, 1)
    resized = F.interpolate(ramp, (hs, 1), mode='bilinear',
                            align_corners=True).flatten()
    seen = (torch.arange(hs) * (H - 1) / (hs - 1) + 0.5).double()
    torch.testing.assert_close(resized, seen)

    def seen_at_cells(n_scaled, n_orig):
        centres = torch.arange(-(-n_scaled // 16)) * 16 + 8.  # scaled
        return (centres - 0.5) * (n_orig - 1) / (n_scaled - 1) + 0.5

    gy, gx = seen_at_cells(hs, H), seen_at_cells(ws, W)
    trunk = torch.stack([gy[:, None].expand(-1, len(gx)),
                         gx[None, :].expand(len(gy), -1)])[None]
    out = model._to_nominal_grid(trunk, (hs, ws), (H, W))
    assert out.shape == (1, 2, -(-H // 16), -(-W // 16))
    ys = torch.arange(out.shape[2]) * 16 + 8.
    xs = torch.arange(out.shape[3]) * 16 + 8.
    inner = (slice(1, -1), slice(1, -1))  # the edges are clamped
    torch.testing.assert_close(
        out[0, 0][inner], ys[:, None].expand(-1, len(xs))[inner])
    torch.testing.assert_close(
        out[0, 1][inner], xs[None, :].expand(len(ys), -1)[inner])


# ----------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------
def test_init_cfg_with_namespace_and_ema(tmp_path, golden):
    _, _, _, _, ckpt_file = golden_model('lvvit', golden)
    sd = torch.load(ckpt_file, map_location='cpu',
                    weights_only=True)['state_dict_ema']
    noisy = {k: torch.zeros_like(v) for k, v in sd.items()}
    path = str(tmp_path / 'official_lvvit.pth')
    torch.save(
        dict(
            epoch=3,
            state_dict=noisy,
            state_dict_ema=sd,
            args=argparse.Namespace(lr=1e-3, model='super_lvvit_tiny')),
        path)
    model = SuperViT(
        arch=TINY['lvvit'],
        init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    torch.testing.assert_close(model.blocks[5].attn.qkv.weight,
                               sd['blocks.5.attn.qkv.weight'].float())
    # the DeiT layout with args, through the registry and a prefix
    _, _, _, _, deit_file = golden_model('deit', golden)
    deit_sd = torch.load(deit_file, map_location='cpu',
                         weights_only=True)['model']
    path = str(tmp_path / 'detector.pth')
    torch.save(
        dict(
            state_dict={f'backbone.{k}': v
                        for k, v in deit_sd.items()},
            args=argparse.Namespace(epochs=300)), path)
    model = MODELS.build(
        dict(
            type='mmsupervit.SuperViT',
            arch=TINY['deit'],
            init_cfg=dict(
                type='Pretrained', checkpoint=path, prefix='backbone')))
    model.init_weights()
    torch.testing.assert_close(model.pos_embed_list[1],
                               deit_sd['pos_embed_list.1'].float())


def _randomised(state_dict):
    """Every tensor redrawn, so that none equals an initial value (LayerNorm
    weights 1, biases 0, ...)."""
    gen = torch.Generator().manual_seed(1)
    return {
        k: torch.rand(v.shape, generator=gen) - 0.5 if v.is_floating_point()
        else v
        for k, v in state_dict.items()
    }


def _check_plain_vit_loaded(model, plain, expected_tables):
    """Every weight of ``model`` is the plain checkpoint's or an expected
    table, and changed from its initialisation."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.init_weights()
    after = model.state_dict()
    expected = {k: v for k, v in plain.items()
                if k != 'pos_embed' and not k.startswith(('head.',
                                                          'aux_head.'))}
    expected.update(expected_tables)
    assert set(after) == set(expected)
    for key, value in after.items():
        assert torch.equal(value, expected[key]), key
        if key.endswith('num_batches_tracked'):
            continue
        assert not torch.equal(value, before[key]), f'{key} not loaded'


def test_plain_deit_checkpoint_fills_every_table(tmp_path, logs):
    """A timm/DeiT ImageNet checkpoint (one 224 px ``pos_embed``) fills all
    four position tables: 224 is the checkpoint's, the others are what timm
    gives a ViT built for that size loading the same checkpoint."""
    vit = VisionTransformer(
        img_size=224, patch_size=16, embed_dim=32, depth=2, num_heads=2,
        num_classes=10)
    plain = _randomised(vit.state_dict())  # timm's own key names
    path = str(tmp_path / 'deit_small_like.pth')
    torch.save(dict(model=plain, epoch=299), path)  # deit main.py layout
    tables = {}
    for i, size in enumerate((128, 160, 192, 224)):
        at_size = VisionTransformer(
            img_size=size, patch_size=16, embed_dim=32, depth=2,
            num_heads=2, num_classes=10)
        tables[f'pos_embed_list.{i}'] = checkpoint_filter_fn(
            dict(plain), at_size)['pos_embed']
    assert torch.equal(tables['pos_embed_list.3'], plain['pos_embed'])
    assert [t.shape[1] for t in tables.values()] == [65, 101, 145, 197]
    cfg = dict(type='Pretrained', checkpoint=path)
    model = SuperViT(arch=dict(embed_dims=32, depth=2, num_heads=2),
                     init_cfg=cfg)
    _check_plain_vit_loaded(model, plain, tables)
    assert model.init_from_pretrained(cfg) == ([], [])  # strict, complete
    assert not [m for level, m in logs if level >= logging.WARNING]
    assert SuperViT.identify_arch(plain) == dict(
        embed_dims=32, depth=2, mlp_ratio=4.0, qkv_bias=True, stem='patch')
    # the converter tool writes the same tables
    dst = str(tmp_path / 'converted.pth')
    _converter_tool().main([path, dst])
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert all(torch.equal(saved['state_dict'][k], v)
               for k, v in tables.items())
    assert 'pos_embed' not in saved['state_dict']


def test_plain_lvvit_checkpoint_fills_every_table(tmp_path, golden):
    """An LV-ViT checkpoint (TokenLabeling ``lvvit.py``: the SuperViT LV-ViT
    keys with one ``pos_embed`` instead of the four tables)."""
    official = unwrap_state_dict(torch.load(
        golden('supervit_lvvit_tiny.ckpt.pth'), map_location='cpu',
        weights_only=True))
    plain = {k: v for k, v in official.items()
             if not k.startswith('pos_embed_list.')}
    plain['pos_embed'] = torch.zeros(1, 197, 32)
    plain = _randomised(plain)
    path = str(tmp_path / 'lvvit_like.pth')
    torch.save(dict(state_dict_ema=plain), path)
    tables = {
        f'pos_embed_list.{i}': resample_abs_pos_embed(
            plain['pos_embed'], [size // 16] * 2, num_prefix_tokens=1)
        for i, size in enumerate((128, 160, 192, 224))
    }
    model = SuperViT(arch=TINY['lvvit'],
                     init_cfg=dict(type='Pretrained', checkpoint=path))
    _check_plain_vit_loaded(model, plain, tables)
    assert torch.equal(model.pos_embed_list[3], plain['pos_embed'])


def test_plain_vit_conversion_is_idempotent_and_checked():
    plain = {'cls_token': torch.randn(1, 1, 8),
             'pos_embed': torch.randn(1, 1 + 24 * 24, 8),  # a 384 px one
             'head.weight': torch.randn(2, 8)}
    converted = convert_supervit(plain)
    assert sorted(converted) == ['cls_token'] + [
        f'pos_embed_list.{i}' for i in range(4)]
    again = convert_supervit(converted)
    assert again.keys() == converted.keys()
    assert all(torch.equal(again[k], v) for k, v in converted.items())
    # the class token's entry is kept; the grid is resampled
    assert all(torch.equal(t[:, :1], plain['pos_embed'][:, :1])
               for t in again.values() if t.shape[1] > 1)
    with pytest.raises(CheckpointError, match=r"both 'pos_embed' and "
                       r"\['pos_embed_list\.0'\]"):
        convert_supervit(dict(plain, **{'pos_embed_list.0': converted[
            'pos_embed_list.0']}))
    distilled = dict(plain, pos_embed=torch.randn(1, 2 + 196, 8))
    with pytest.raises(CheckpointError, match=r"'pos_embed' has shape "
                       r'\(1, 198, 8\); expected \(1, 1 \+ n \* n, C\)'):
        convert_supervit(distilled)
    assert SuperViT.identify_arch(distilled) is None


def _converter_tool():
    spec = importlib.util.spec_from_file_location(
        'supervit2mmsupervit',
        osp.join(REPO_ROOT, 'tools', 'model_converters',
                 'supervit2mmsupervit.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_converter_tool(tmp_path, golden):
    ckpt_file = golden('supervit_deit_tiny.ckpt.pth')
    tool = _converter_tool()
    dst = str(tmp_path / 'out' / 'deit.pth')
    tool.main([ckpt_file, dst])
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    assert not any(k.startswith('head.') for k in saved['state_dict'])
    model = SuperViT(
        arch=TINY['deit'], init_cfg=dict(type='Pretrained', checkpoint=dst))
    model.init_weights()
    reference, *_ = golden_model('deit', golden)
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_wrong_checkpoint_fails(tmp_path, golden):
    model = SuperViT(
        arch=TINY['deit'],
        init_cfg=dict(
            type='Pretrained',
            checkpoint=golden('supervit_lvvit_tiny.ckpt.pth')))
    with pytest.raises(
            CheckpointError,
            match=r"'patch_embed\.proj\.weight' has shape \(32, 64, 8, 8\) "
            r'in the checkpoint but \(32, 3, 16, 16\) in the model'):
        model.init_weights()


# ----------------------------------------------------------------------------
# misuse
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('rate', [0, -0.1, 1.5])
def test_bad_keep_rate(rate):
    with pytest.raises(ValueError, match=r'keep_rate must be in \(0, 1\]'):
        SuperViT(arch=SMALL['deit'], keep_rate=rate)
    model = SuperViT(arch=SMALL['deit'])
    with pytest.raises(ValueError, match='keep_rate must be in'):
        model.keep_rate = rate
    with pytest.raises(ValueError, match='keep_rate must be in'):
        SuperViT(arch=SMALL['deit'], train_keep_rates=(1.0, rate))


def test_other_misuse():
    model = SuperViT(arch=SMALL['deit'])
    with pytest.raises(ValueError, match='at least 16x16, got 15x64'):
        model(torch.randn(1, 3, 15, 64))
    with pytest.raises(ValueError, match="stem must be 'patch' or 'conv'"):
        SuperViT(arch=dict(base='deit-s', stem='conv7'))
    with pytest.raises(TypeError, match='keep_ratio'):
        SuperViT(arch=SMALL['deit'], keep_ratio=0.7)
    with pytest.raises(ValueError, match='pos_embed_size must be one of'):
        SuperViT(arch=SMALL['deit'], pos_embed_size=256)
    with pytest.raises(ValueError, match='input_scale must be in'):
        SuperViT(arch=SMALL['deit'], input_scale=0)
    with pytest.raises(ValueError, match='out_indices'):
        SuperViT(arch=SMALL['deit'], out_indices=(12, ))


# ----------------------------------------------------------------------------
# training options
# ----------------------------------------------------------------------------
def test_frozen_stages_and_norm_eval():
    model = SuperViT(
        arch=dict(base='lvvit-s', embed_dims=32, depth=4, num_heads=2),
        frozen_stages=2,
        norm_eval=True)
    model.train()
    assert not model.cls_token.requires_grad
    assert not any(p.requires_grad for p in model.pos_embed_list)
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    for i, blk in enumerate(model.blocks):
        assert all(p.requires_grad != (i < 2) for p in blk.parameters())
        assert blk.training == (i >= 2)
    assert not model.patch_embed.bn1.training
    assert model.norm.weight.requires_grad
    model = SuperViT(arch=SMALL['lvvit'], norm_eval=False).train()
    assert model.patch_embed.bn1.training
    model = SuperViT(arch=SMALL['lvvit'], frozen_stages=0).train()
    assert not model.patch_embed.training and model.blocks[0].training


def test_drop_path_rule():
    model = SuperViT(arch=SMALL['deit'], drop_path_rate=0.2)
    assert isinstance(model.blocks[0].drop_path, torch.nn.Identity)
    assert model.blocks[-1].drop_path.drop_prob == pytest.approx(0.2)
    assert model.blocks[6].drop_path.drop_prob == pytest.approx(0.2 * 6 / 11)


def test_unused_parameters_follow_the_settings():
    model = SuperViT(arch=SMALL['deit'], out_indices=(3, 7),
                     final_norm=False)
    unused = set(model.unused_parameter_names())
    tables = {f'pos_embed_list.{i}' for i in range(3)}  # 224 is used
    blocks = {n for n, _ in model.named_parameters()
              if n.startswith(tuple(f'blocks.{i}.' for i in range(8, 12)))}
    assert unused == tables | blocks | {'norm.weight', 'norm.bias'}
    # the final norm follows the last block only
    model = SuperViT(arch=SMALL['deit'], out_indices=(3, 7))
    assert {'norm.weight', 'norm.bias'} <= set(model.unused_parameter_names())
    model = SuperViT(arch=SMALL['deit'], out_indices=(11, 3))
    assert not {'norm.weight', 'norm.bias'} & set(
        model.unused_parameter_names())
    model.input_scale = 160 / 224
    assert 'pos_embed_list.1' not in model.unused_parameter_names()
    assert 'pos_embed_list.3' in model.unused_parameter_names()


def test_layer_depth_and_no_weight_decay():
    model = SuperViT(arch=SMALL['lvvit'])
    n = 14
    cases = {
        'backbone.cls_token': 0,
        'backbone.pos_embed_list.2': 0,
        'backbone.patch_embed.bn1.weight': 0,
        'backbone.blocks.0.attn.qkv.weight': 1,
        'backbone.blocks.11.mlp.fc2.bias': 12,
        'backbone.norm.weight': 13,
        'decode_head.conv_seg.weight': 13,
    }
    for name, layer in cases.items():
        assert model.get_layer_depth(name, 'backbone.') == (layer, n), name
    assert model.get_layer_depth('blocks.3.norm1.weight') == (4, n)
    assert SuperViT.no_weight_decay_keywords == ('cls_token', 'pos_embed')
    names = [k for k, _ in model.named_parameters()]
    assert any('pos_embed' in k for k in names)
