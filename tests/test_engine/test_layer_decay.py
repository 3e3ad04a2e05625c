"""The layer-wise lr decay constructor, on a toy model and on every backbone."""
import pytest
import torch
import torch.nn as nn

import mmsupervit  # noqa: F401
from mmsupervit.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS


class _ToyBackbone(nn.Module):
    no_weight_decay_keywords = ('pos_embed', )

    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))
        self.norm = nn.LayerNorm(8)

    def get_layer_depth(self, name, prefix=''):
        num_layers = len(self.blocks) + 2
        if not name.startswith(prefix):
            return num_layers - 1, num_layers
        name = name[len(prefix):]
        if name.startswith('pos_embed'):
            return 0, num_layers
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1, num_layers
        return num_layers - 1, num_layers


class _Model(nn.Module):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(8, 2)


def _build(model, rate=0.5, lr=1.0, wd=0.05, **extra):
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type='LayerDecayOptimWrapperConstructor',
             optim_wrapper_cfg=dict(
                 type='OptimWrapper',
                 optimizer=dict(type='AdamW', lr=lr, weight_decay=wd)),
             paramwise_cfg=dict(layer_decay_rate=rate, **extra)))
    return constructor(model).optimizer


def _by_name(optimizer):
    out = {}
    for group in optimizer.param_groups:
        for name in group['param_names']:
            out[name] = (group['lr'], group['weight_decay'])
    return out


def test_toy_rule_exact():
    model = _Model(_ToyBackbone())
    groups = _by_name(_build(model))
    # num_layers = 5: scale = 0.5 ** (5 - layer_id - 1)
    assert groups['backbone.pos_embed'] == (0.5**4, 0.0)
    for i in range(3):
        assert groups[f'backbone.blocks.{i}.weight'] == (0.5**(3 - i), 0.05)
        assert groups[f'backbone.blocks.{i}.bias'] == (0.5**(3 - i), 0.0)
    assert groups['backbone.norm.weight'] == (1.0, 0.0)
    assert groups['head.weight'] == (1.0, 0.05)
    assert groups['head.bias'] == (1.0, 0.0)
    n_params = sum(1 for _ in model.parameters())
    assert len(groups) == n_params


def test_extra_keywords_frozen_params_and_misuse():
    model = _Model(_ToyBackbone())
    model.backbone.blocks[0].weight.requires_grad_(False)
    groups = _by_name(_build(model, rate=1.0, no_decay_keywords=('head', )))
    assert 'backbone.blocks.0.weight' not in groups
    assert groups['head.weight'] == (1.0, 0.0)
    assert groups['backbone.blocks.1.weight'] == (1.0, 0.05)
    with pytest.raises(KeyError, match='unknown paramwise_cfg keys'):
        _build(model, layer_decay=0.9)
    with pytest.raises(ValueError, match=r'layer_decay_rate must be in'):
        _build(model, rate=1.5)
    with pytest.raises(TypeError, match='get_layer_depth'):
        _build(_Model(nn.Linear(8, 8)))


# Small variants of every backbone: (config, expected depth of the rule).
BACKBONES = [
    pytest.param(dict(type='SuperViT', arch=dict(embed_dims=32, depth=4,
                                                 num_heads=2)), id='supervit'),
    pytest.param(dict(type='AlterNet', arch=18), id='alternet'),
    pytest.param(dict(type='PatchConvNet', arch=dict(embed_dims=32, depth=4)),
                 id='patchconvnet'),
]


@pytest.mark.parametrize('cfg', BACKBONES)
def test_every_backbone_follows_its_depth_rule(cfg):
    if cfg['type'] not in MODELS.module_dict:
        pytest.fail(f'backbone {cfg["type"]} is not registered')
    backbone = MODELS.build(cfg)
    model = _Model(backbone)
    rate, lr, wd = 0.75, 1e-3, 0.05
    optimizer = _build(model, rate=rate, lr=lr, wd=wd)
    groups = _by_name(optimizer)
    keywords = tuple(getattr(backbone, 'no_weight_decay_keywords', ()))
    assert keywords, 'a backbone must declare no_weight_decay_keywords'
    seen_layers = set()
    for name, param in model.named_parameters():
        layer_id, num_layers = backbone.get_layer_depth(name, 'backbone.')
        seen_layers.add(layer_id)
        assert 0 <= layer_id < num_layers
        exp_lr = lr * rate**(num_layers - layer_id - 1)
        exp_wd = 0.0 if (param.ndim <= 1 or any(k in name for k in keywords)) \
            else wd
        assert groups[name] == (pytest.approx(exp_lr), exp_wd), name
    # the stem is layer 0, the head is on top, and blocks are in between
    assert 0 in seen_layers and num_layers - 1 in seen_layers
    assert len(seen_layers) > 3
    # the head keeps the base lr; the stem has the smallest lr
    assert groups['head.weight'][0] == pytest.approx(lr)
    assert min(g['lr'] for g in optimizer.param_groups) == pytest.approx(
        lr * rate**(num_layers - 1))
