"""The backbone contract, checked on every registered DenseBackbone.

Backbones are found in the mmsupervit MODELS registry, so a new one is covered
by the shape, arch and layer-depth checks of every named arch as soon as it is
registered. The numeric checks (gradients, freezing, checkpointing, init_cfg)
run on the small configs below; a registered backbone without an entry there
fails ``test_every_backbone_has_small_configs``.
"""
import inspect
import math

import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from golden_weights import golden_arch

import mmsupervit  # noqa: F401  (registers the backbones)
from mmsupervit.models.backbones import base as base_module
from mmsupervit.models.backbones.base import DenseBackbone, ShapeSpec
from mmsupervit.models.utils.checkpoint import unwrap_state_dict
from mmsupervit.registry import MODELS

BACKBONES = sorted(
    (cls for cls in MODELS.module_dict.values()
     if inspect.isclass(cls) and issubclass(cls, DenseBackbone)
     and not inspect.isabstract(cls)),
    key=lambda cls: cls.__name__)

# Small configs for the numeric checks; each backbone has at least one with a
# batch norm (norm_eval, frozen statistics).
SMALL = {
    'SuperViT': [
        dict(arch=dict(embed_dims=32, depth=4, num_heads=2)),
        dict(arch=dict(base='lvvit-s', embed_dims=32, depth=4, num_heads=2,
                       stem_channels=16)),
    ],
    'AlterNet': [
        dict(arch=dict(block='basic', num_blocks=(1, 1, 2, 2),
                       num_msa=(0, 0, 1, 1), heads=(1, 1, 2, 2),
                       head_dim=16)),
    ],
    'PatchConvNet': [
        # the default (last block, official final norm) and the multi-depth
        # extension with new batch-norm output norms
        dict(arch=dict(embed_dims=16, depth=3), with_attn_pool=True),
        dict(arch=dict(embed_dims=16, depth=4), multi_depth=True,
             norm_cfg=dict(type='BN')),
    ],
}
# A golden checkpoint in the official layout and the config it fits.
GOLDEN = {
    'SuperViT': ('supervit_lvvit_tiny.ckpt.pth',
                 dict(arch=golden_arch('supervit_lvvit_tiny'))),
    'AlterNet': ('alternet_tiny.ckpt.pth',
                 dict(arch=golden_arch('alternet_tiny'))),
    'PatchConvNet': ('patchconvnet_tiny.ckpt.pth',
                     dict(arch=golden_arch('patchconvnet_tiny'),
                          with_attn_pool=True)),
}

ZOO = [
    pytest.param(cls, name, id=f'{cls.__name__}-{name}') for cls in BACKBONES
    for name in cls.arch_names()
]
CASES = [
    pytest.param(cls, cfg, id=f'{cls.__name__}-{i}') for cls in BACKBONES
    for i, cfg in enumerate(SMALL.get(cls.__name__, []))
]
BY_CLASS = [pytest.param(cls, id=cls.__name__) for cls in BACKBONES]


# tiny models: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


def _build(cls, cfg, **extra):
    return cls(**dict(cfg, **extra))


def _weighted_sum(outs):
    # A random weighting: the plain sum of a normalised map has no gradient.
    return sum((o * torch.randn_like(o)).sum() for o in outs)


def _check_outputs(model, outs, hw):
    spec = model.output_shape()
    assert isinstance(outs, tuple) and len(outs) == len(spec)
    assert list(spec) == [f'out{k}' for k in range(len(outs))]
    for out, s in zip(outs, spec.values()):
        assert isinstance(s, ShapeSpec)
        assert tuple(out.shape[1:]) == (s.channels, math.ceil(
            hw[0] / s.stride), math.ceil(hw[1] / s.stride))
    assert model.out_channels == tuple(s.channels for s in spec.values())
    assert model.out_strides == tuple(s.stride for s in spec.values())


def _bn_stats(modules):
    return [(m.running_mean.clone(), m.running_var.clone()) for mod in modules
            for m in mod.modules() if isinstance(m, _BatchNorm)]


def test_every_backbone_has_small_configs():
    assert BACKBONES, 'no DenseBackbone registered'
    names = {cls.__name__ for cls in BACKBONES}
    assert names >= {'SuperViT', 'AlterNet', 'PatchConvNet'}
    for name in names:
        assert SMALL.get(name) and name in GOLDEN, (
            f'{name}: add small configs and a golden checkpoint to SMALL / '
            'GOLDEN in this file')
        cls = MODELS.get(name)
        assert any(
            isinstance(m, _BatchNorm) for cfg in SMALL[name]
            for m in _build(cls, cfg).modules()), name


# ---------------------------------------------------------------------------
# arch
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('cls', BY_CLASS)
def test_arch_zoo_is_consistent(cls):
    names = cls.arch_names()
    assert names
    keys = set(cls.arch_required_keys) | set(cls.arch_defaults)
    for name, value in cls.arch_zoo.items():
        assert name == name.lower(), name
        if isinstance(value, str):  # an alias of a named arch
            assert value in names
            assert cls.resolve_arch(name.upper()) == cls.resolve_arch(value)
        else:
            assert set(value) == keys, name
            assert cls.resolve_arch(name.upper()) == value
    base = names[0]
    assert cls.resolve_arch(dict(base=base)) == cls.resolve_arch(base)
    required = {k: cls.resolve_arch(base)[k] for k in cls.arch_required_keys}
    settings = cls.resolve_arch(required)
    assert set(settings) == keys
    assert {k: settings[k] for k in required} == required


@pytest.mark.parametrize('cls', BY_CLASS)
def test_arch_errors_list_what_is_valid(cls):
    names = cls.arch_names()
    with pytest.raises(ValueError) as err:
        cls(arch='no-such-arch')
    assert all(n in str(err.value) for n in names), err.value
    with pytest.raises(ValueError, match=r"unknown keys \['bogus'\]") as err:
        cls(arch=dict(base=names[0], bogus=1))
    assert all(k in str(err.value) for k in cls.arch_required_keys)
    if cls.arch_required_keys:
        given = dict(cls.resolve_arch(names[0]))
        dropped = cls.arch_required_keys[-1]
        del given[dropped]
        with pytest.raises(ValueError,
                           match=fr"missing keys \['{dropped}'\]"):
            cls(arch=given)
    with pytest.raises(TypeError, match='arch must be'):
        cls(arch=[names[0]])


# ---------------------------------------------------------------------------
# every named arch, on the meta device
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('cls,name', ZOO)
def test_named_arch_on_meta(cls, name):
    hw = (97, 131)
    with torch.device('meta'):
        model = cls(arch=name).eval()
        outs = model(torch.empty(2, 3, *hw))
    _check_outputs(model, outs, hw)
    assert all(o.device.type == 'meta' for o in outs)
    # stages: every member belongs to the model
    own = set(map(id, model.modules())) | set(map(id, model.parameters()))
    for stage in range(model.num_stages + 1):
        members = model.stage_members(stage)
        assert members and all(id(m) in own for m in members), stage
    # layer depth: 0 at the stem, monotone in forward (registration) order,
    # the top for anything outside the backbone
    num = model.num_layers
    ids = []
    for pname, _ in model.named_parameters():
        layer, n = model.get_layer_depth('backbone.' + pname, 'backbone.')
        assert n == num and 0 <= layer < num
        assert model.get_layer_depth(pname) == (layer, num)
        ids.append(layer)
    assert ids[0] == 0 and ids == sorted(ids), ids
    assert set(range(1, num - 1)) <= set(ids)  # every block has a layer
    assert model.get_layer_depth('decode_head.conv_seg.weight',
                                 'backbone.') == (num - 1, num)


# ---------------------------------------------------------------------------
# small configs, real numbers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('cls,cfg', CASES)
def test_any_input_size(cls, cfg):
    model = _build(cls, cfg).eval()
    m = cls.min_input_size
    with torch.no_grad():
        for hw in [(m, m), (m + 1, 2 * m + 3), (3 * m + 5, m + 7), (37, 23)]:
            outs = model(torch.randn(1, 3, *hw))
            _check_outputs(model, outs, hw)
            assert all(torch.isfinite(o).all() for o in outs)
        if m > 1:
            with pytest.raises(ValueError, match=str(m)):
                model(torch.randn(1, 3, m - 1, m))


@pytest.mark.parametrize('out_indices', [None, (0, )], ids=['all', 'first'])
@pytest.mark.parametrize('cls,cfg', CASES)
def test_backward_reaches_every_used_parameter(cls, cfg, out_indices):
    extra = {} if out_indices is None else dict(out_indices=out_indices)
    model = _build(cls, cfg, **extra).train()
    hw = (48, 80)
    outs = model(torch.randn(2, 3, *hw))
    _check_outputs(model, outs, hw)
    _weighted_sum(outs).backward()
    unused = set(model.unused_parameter_names())
    without_grad = {
        n for n, p in model.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    }
    assert without_grad == unused
    if out_indices is not None:
        assert unused, 'later blocks are unused with out_indices=(0,)'


@pytest.mark.parametrize('cls,cfg', CASES)
def test_frozen_stages(cls, cfg):
    model = _build(cls, cfg, frozen_stages=1)
    frozen = [m for s in (0, 1) for m in model.stage_members(s)]
    frozen_params = {
        id(p) for m in frozen
        for p in ([m] if isinstance(m, nn.Parameter) else m.parameters())
    }
    frozen_modules = [m for m in frozen if isinstance(m, nn.Module)]
    # frozen at construction, and still after train()
    for p in model.parameters():
        assert p.requires_grad == (id(p) not in frozen_params)
    model.train()
    assert all(not mm.training for m in frozen_modules for mm in m.modules())
    assert model.training
    stats = _bn_stats(frozen_modules)
    _weighted_sum(model(torch.randn(2, 3, 48, 64))).backward()
    unused = set(model.unused_parameter_names())
    for name, p in model.named_parameters():
        if id(p) in frozen_params:
            assert p.grad is None, name
        elif name not in unused:
            # gradients flow through the frozen stem to the later stages
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    for (mean, var), (mean1, var1) in zip(stats, _bn_stats(frozen_modules)):
        assert torch.equal(mean, mean1) and torch.equal(var, var1)


@pytest.mark.parametrize('cls,cfg', CASES)
def test_norm_eval(cls, cfg):
    model = _build(cls, cfg, norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert all(not m.training for m in bns)
    others = [m for m in model.modules() if not isinstance(m, _BatchNorm)]
    assert all(m.training for m in others)
    stats = _bn_stats(bns)
    model(torch.randn(2, 3, 48, 64))
    for (mean, var), (mean1, var1) in zip(stats, _bn_stats(bns)):
        assert torch.equal(mean, mean1) and torch.equal(var, var1)
    # without norm_eval the statistics move (so the check above can fail)
    if bns:
        model = _build(cls, cfg).train()
        bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        stats = _bn_stats(bns)
        model(torch.randn(2, 3, 48, 64))
        assert any(not torch.equal(a[0], b[0])
                   for a, b in zip(stats, _bn_stats(bns)))


@pytest.mark.parametrize('cls,cfg', CASES)
def test_with_cp_same_outputs_and_gradients(cls, cfg, monkeypatch):
    calls = []
    real_checkpoint = base_module.checkpoint

    def counting_checkpoint(*args, **kwargs):
        calls.append(kwargs.get('use_reentrant'))
        return real_checkpoint(*args, **kwargs)

    monkeypatch.setattr(base_module, 'checkpoint', counting_checkpoint)
    plain = _build(cls, cfg, drop_path_rate=0.1).train()
    ckp = _build(cls, cfg, drop_path_rate=0.1, with_cp=True)
    ckp.load_state_dict(plain.state_dict())
    ckp.train()
    x = torch.randn(2, 3, 48, 64)
    results = []
    for model in (plain, ckp):
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(1)  # same drop-path draws in both models
        outs = model(xi)
        torch.manual_seed(2)
        _weighted_sum(outs).backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        results.append((outs, xi.grad, grads))
    # one checkpointed call per block (stem and top are not blocks)
    assert calls == [False] * (ckp.num_layers - 2)
    (outs_a, gx_a, g_a), (outs_b, gx_b, g_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(gx_a, gx_b)
    for name, grad in g_a.items():
        torch.testing.assert_close(grad, g_b[name], msg=name)
    with torch.no_grad():  # nothing to save memory for
        ckp(x)
    assert len(calls) == ckp.num_layers - 2


# ---------------------------------------------------------------------------
# init_cfg
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('cls', BY_CLASS)
def test_pretrained_dict_and_list_load_the_same_weights(
        cls, golden, tmp_path, monkeypatch):
    ckpt_name, cfg = GOLDEN[cls.__name__]
    ckpt = golden(ckpt_name)
    official = unwrap_state_dict(
        torch.load(ckpt, map_location='cpu', weights_only=True))
    expected = _build(cls, cfg).convert_checkpoint(official)
    calls = []
    real_convert = cls.convert_checkpoint

    def spy(self, state_dict):
        calls.append(type(self).__name__)
        return real_convert(self, state_dict)

    monkeypatch.setattr(cls, 'convert_checkpoint', spy)
    prefixed = str(tmp_path / 'detector.pth')
    torch.save({'state_dict': {f'backbone.{k}': v
                               for k, v in official.items()}}, prefixed)
    pretrained = dict(type='Pretrained', checkpoint=ckpt)
    init_cfgs = {
        'dict': pretrained,
        'list': [pretrained],
        'list with others': [
            dict(type='Constant', val=0.5, layer=['Conv2d', 'Linear']),
            pretrained,
            dict(type='TruncNormal', std=0.5, layer='LayerNorm'),
        ],
        'prefix': dict(type='Pretrained', checkpoint=prefixed,
                       prefix='backbone.'),
    }
    for label, init_cfg in init_cfgs.items():
        calls.clear()
        model = _build(cls, cfg, init_cfg=init_cfg)
        model.init_weights()
        assert calls == [cls.__name__], label
        own = model.state_dict()
        for key, value in expected.items():
            assert torch.equal(own[key], value), f'{label}: {key}'


@pytest.mark.parametrize('cls,cfg', CASES)
def test_other_init_cfg_runs_after_the_default_init(cls, cfg):
    # The default init touches convolutions (AlterNet) or linear layers
    # (SuperViT, PatchConvNet); mmengine's initialiser must come after it.
    model = _build(
        cls, cfg,
        init_cfg=dict(type='Constant', val=0.5, layer=['Conv2d', 'Linear']))
    model.init_weights()
    layers = [m for m in model.modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers
    assert all(torch.all(m.weight == 0.5) for m in layers)


@pytest.mark.parametrize('cls', BY_CLASS)
def test_bad_init_cfg_fails_at_build_time(cls):
    cfg = SMALL[cls.__name__][0]
    pretrained = dict(type='Pretrained', checkpoint='x.pth')
    with pytest.raises(ValueError, match='2 Pretrained entries'):
        _build(cls, cfg, init_cfg=[pretrained, pretrained])
    with pytest.raises(ValueError, match=r"unknown keys \['prefx'\]"):
        _build(cls, cfg, init_cfg=dict(pretrained, prefx='backbone.'))
    with pytest.raises(ValueError, match="needs 'checkpoint'"):
        _build(cls, cfg, init_cfg=dict(type='Pretrained'))
    with pytest.raises(TypeError, match='init_cfg must be'):
        _build(cls, cfg, init_cfg='x.pth')
    with pytest.raises(ValueError, match='frozen_stages'):
        _build(cls, cfg, frozen_stages=-2)
