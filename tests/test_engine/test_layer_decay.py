"""The layer-wise lr decay constructor, with expectations written by hand.

The rule under test (BEiT's, as documented by
``LayerDecayOptimWrapperConstructor``): with ``L = num_layers`` (the stem,
one layer per block, the top), a parameter at layer ``i`` gets
``lr = base_lr * rate ** (L - 1 - i)``; the stem is layer 0, block ``k``
(0-based, in forward order over the whole network) is layer ``k + 1``, and
everything else (final norms, necks, heads) is the top, ``L - 1``, with the
base lr. Parameters with at most one dimension, and those whose name contains
one of the backbone's ``no_weight_decay_keywords``, get no weight decay.

None of the expectations below is computed with the code under test: the
tables list every parameter of small models with its layer id, lr multiplier
and weight-decay multiplier, worked out from that rule by hand.
"""
from typing import List, Tuple

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
    """A backbone plus two modules outside it. ``backbone_proj`` shares the
    backbone's name as a prefix but not ``backbone.``: it is on top."""

    def __init__(self, backbone, channels=8):
        super().__init__()
        self.backbone = backbone
        self.backbone_proj = nn.Linear(channels, channels)
        self.head = nn.Linear(channels, 2)


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
            assert name not in out, f'{name} is in two groups'
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
    assert groups['backbone_proj.weight'] == (1.0, 0.05)
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


# ---------------------------------------------------------------------------
# Hand-derived tables for small members of every family.
# Rows: (parameter name, layer id, lr multiplier, weight-decay multiplier).
# layer_decay_rate = 0.9, so the lr multipliers are powers of 0.9:
#   0.9**0 = 1.0, 0.9**1 = 0.9, 0.9**2 = 0.81, 0.9**3 = 0.729,
#   0.9**4 = 0.6561, 0.9**5 = 0.59049, 0.9**6 = 0.531441,
#   0.9**7 = 0.4782969.
# ---------------------------------------------------------------------------
Row = Tuple[str, int, float, int]
RATE, LR, WD = 0.9, 2e-3, 0.05


def _outside(top: int) -> List[Row]:
    """The modules outside the backbone: on the top layer (``num_layers -
    1``) with the base lr; the biases are 1-D (no weight decay)."""
    return [
        ('backbone_proj.weight', top, 1.0, 1),
        ('backbone_proj.bias', top, 1.0, 0),
        ('head.weight', top, 1.0, 1),
        ('head.bias', top, 1.0, 0),
    ]


def _supervit_block(i: int, layer: int, mult: float) -> List[Row]:
    b = f'backbone.blocks.{i}.'
    return [
        (b + 'norm1.weight', layer, mult, 0),
        (b + 'norm1.bias', layer, mult, 0),
        (b + 'attn.qkv.weight', layer, mult, 1),
        (b + 'attn.qkv.bias', layer, mult, 0),
        (b + 'attn.proj.weight', layer, mult, 1),
        (b + 'attn.proj.bias', layer, mult, 0),
        (b + 'norm2.weight', layer, mult, 0),
        (b + 'norm2.bias', layer, mult, 0),
        (b + 'mlp.fc1.weight', layer, mult, 1),
        (b + 'mlp.fc1.bias', layer, mult, 0),
        (b + 'mlp.fc2.weight', layer, mult, 1),
        (b + 'mlp.fc2.bias', layer, mult, 0),
    ]


# SuperViT, depth 2: num_layers = 2 + 2 = 4. Embeddings (class token, patch
# embedding, the position tables of every trained size) are layer 0 (0.9**3);
# blocks.0 layer 1 (0.9**2), blocks.1 layer 2 (0.9); the final norm is on top.
# cls_token (3-D) and pos_embed_list.* (3-D) lose weight decay by keyword.
SUPERVIT_D2: List[Row] = [
    ('backbone.cls_token', 0, 0.729, 0),
    ('backbone.patch_embed.proj.weight', 0, 0.729, 1),
    ('backbone.patch_embed.proj.bias', 0, 0.729, 0),
    ('backbone.pos_embed_list.0', 0, 0.729, 0),
    ('backbone.pos_embed_list.1', 0, 0.729, 0),
    ('backbone.pos_embed_list.2', 0, 0.729, 0),
    ('backbone.pos_embed_list.3', 0, 0.729, 0),
    *_supervit_block(0, 1, 0.81),
    *_supervit_block(1, 2, 0.9),
    ('backbone.norm.weight', 3, 1.0, 0),
    ('backbone.norm.bias', 3, 1.0, 0),
    *_outside(3),
]


def _patchconvnet_block(i: int, layer: int, mult: float) -> List[Row]:
    b = f'backbone.blocks.{i}.'
    return [
        (b + 'gamma', layer, mult, 0),  # layer scale: 1-D and a keyword
        (b + 'norm.weight', layer, mult, 0),
        (b + 'norm.bias', layer, mult, 0),
        (b + 'conv1.weight', layer, mult, 1),
        (b + 'conv1.bias', layer, mult, 0),
        (b + 'dwconv.weight', layer, mult, 1),
        (b + 'dwconv.bias', layer, mult, 0),
        (b + 'se.conv_reduce.weight', layer, mult, 1),
        (b + 'se.conv_reduce.bias', layer, mult, 0),
        (b + 'se.conv_expand.weight', layer, mult, 1),
        (b + 'se.conv_expand.bias', layer, mult, 0),
        (b + 'conv2.weight', layer, mult, 1),
        (b + 'conv2.bias', layer, mult, 0),
    ]


# PatchConvNet, depth 2, with the attention-pooling block: num_layers = 4.
# The convolutional stem (bias-free convs) is layer 0 (0.9**3); column blocks
# 1 and 2; the official final norm (on the last block's output) and the
# pooling block are on top. The pooling
# block's class token (3-D) loses weight decay by keyword.
PATCHCONVNET_D2: List[Row] = [
    ('backbone.patch_embed.proj.0.weight', 0, 0.729, 1),
    ('backbone.patch_embed.proj.2.weight', 0, 0.729, 1),
    ('backbone.patch_embed.proj.4.weight', 0, 0.729, 1),
    ('backbone.patch_embed.proj.6.weight', 0, 0.729, 1),
    *_patchconvnet_block(0, 1, 0.81),
    *_patchconvnet_block(1, 2, 0.9),
    ('backbone.norm.weight', 3, 1.0, 0),
    ('backbone.norm.bias', 3, 1.0, 0),
    ('backbone.attn_pool.cls_token', 3, 1.0, 0),
    ('backbone.attn_pool.gamma_1', 3, 1.0, 0),
    ('backbone.attn_pool.gamma_2', 3, 1.0, 0),
    ('backbone.attn_pool.norm1.weight', 3, 1.0, 0),
    ('backbone.attn_pool.norm1.bias', 3, 1.0, 0),
    ('backbone.attn_pool.attn.q.weight', 3, 1.0, 1),
    ('backbone.attn_pool.attn.q.bias', 3, 1.0, 0),
    ('backbone.attn_pool.attn.k.weight', 3, 1.0, 1),
    ('backbone.attn_pool.attn.k.bias', 3, 1.0, 0),
    ('backbone.attn_pool.attn.v.weight', 3, 1.0, 1),
    ('backbone.attn_pool.attn.v.bias', 3, 1.0, 0),
    ('backbone.attn_pool.attn.proj.weight', 3, 1.0, 1),
    ('backbone.attn_pool.attn.proj.bias', 3, 1.0, 0),
    ('backbone.attn_pool.norm2.weight', 3, 1.0, 0),
    ('backbone.attn_pool.norm2.bias', 3, 1.0, 0),
    ('backbone.attn_pool.mlp.fc1.weight', 3, 1.0, 1),
    ('backbone.attn_pool.mlp.fc1.bias', 3, 1.0, 0),
    ('backbone.attn_pool.mlp.fc2.weight', 3, 1.0, 1),
    ('backbone.attn_pool.mlp.fc2.bias', 3, 1.0, 0),
    *_outside(3),
]


def _alternet_conv_block(stage: int, i: int, layer: int, mult: float,
                         shortcut: bool) -> List[Row]:
    b = f'backbone.layer{stage}.{i}.'
    return [
        *([(b + 'shortcut.weight', layer, mult, 1)] if shortcut else []),
        (b + 'bn.weight', layer, mult, 0),
        (b + 'bn.bias', layer, mult, 0),
        (b + 'conv1.weight', layer, mult, 1),
        (b + 'conv2.0.weight', layer, mult, 0),
        (b + 'conv2.0.bias', layer, mult, 0),
        (b + 'conv2.2.weight', layer, mult, 1),
    ]


# A tiny AlterNet: basic blocks (1, 1, 2, 2), one attention block (the last
# one of stage 4). num_layers = 6 blocks + 2 = 8. The stem is layer 0
# (0.9**7), then one layer per block in forward order across the stages
# (the index of a block restarts in every stage, its layer does not):
# layer1.0 -> 1, layer2.0 -> 2, layer3.0 -> 3, layer3.1 -> 4, layer4.0 -> 5,
# layer4.1 -> 6; the output norms are on top (7). The relative position
# table (pos_embedding, 2-D) loses weight decay by keyword.
ALTERNET_TINY_ARCH = dict(block='basic', num_blocks=(1, 1, 2, 2),
                          num_msa=(0, 0, 0, 1), heads=(1, 1, 1, 1),
                          head_dim=8)
ALTERNET_TINY: List[Row] = [
    ('backbone.stem.conv.weight', 0, 0.4782969, 1),
    *_alternet_conv_block(1, 0, 1, 0.531441, shortcut=False),
    *_alternet_conv_block(2, 0, 2, 0.59049, shortcut=True),
    *_alternet_conv_block(3, 0, 3, 0.6561, shortcut=True),
    *_alternet_conv_block(3, 1, 4, 0.729, shortcut=False),
    *_alternet_conv_block(4, 0, 5, 0.81, shortcut=True),
    ('backbone.layer4.1.norm1.weight', 6, 0.9, 0),
    ('backbone.layer4.1.norm1.bias', 6, 0.9, 0),
    ('backbone.layer4.1.conv.weight', 6, 0.9, 1),
    ('backbone.layer4.1.norm2.weight', 6, 0.9, 0),
    ('backbone.layer4.1.norm2.bias', 6, 0.9, 0),
    ('backbone.layer4.1.attn.pos_embedding', 6, 0.9, 0),
    ('backbone.layer4.1.attn.to_q.weight', 6, 0.9, 1),
    ('backbone.layer4.1.attn.to_kv.weight', 6, 0.9, 1),
    ('backbone.layer4.1.attn.to_out.weight', 6, 0.9, 1),
    ('backbone.layer4.1.attn.to_out.bias', 6, 0.9, 0),
    ('backbone.norm0.weight', 7, 1.0, 0),
    ('backbone.norm0.bias', 7, 1.0, 0),
    ('backbone.norm1.weight', 7, 1.0, 0),
    ('backbone.norm1.bias', 7, 1.0, 0),
    ('backbone.norm2.weight', 7, 1.0, 0),
    ('backbone.norm2.bias', 7, 1.0, 0),
    ('backbone.norm3.weight', 7, 1.0, 0),
    ('backbone.norm3.bias', 7, 1.0, 0),
    *_outside(7),
]

# Groups: one per (layer, weight decay or not) that occurs. SuperViT: 2 on
# each of the 4 layers = 8. PatchConvNet: the stem has only (bias-free) conv
# weights, 1 group, then 2 on each other layer = 7. AlterNet: the stem 1,
# then 2 on each of the other 7 layers = 15.
SMALL = [
    pytest.param(dict(type='SuperViT', arch=dict(embed_dims=8, depth=2,
                                                 num_heads=2)),
                 8, SUPERVIT_D2, 8, id='supervit-depth2'),
    pytest.param(dict(type='PatchConvNet', arch=dict(embed_dims=8, depth=2),
                      with_attn_pool=True),
                 8, PATCHCONVNET_D2, 7, id='patchconvnet-depth2'),
    pytest.param(dict(type='AlterNet', arch=ALTERNET_TINY_ARCH),
                 512, ALTERNET_TINY, 15, id='alternet-tiny'),
]


@pytest.mark.parametrize('cfg,channels,table,num_groups', SMALL)
def test_small_backbone_matches_hand_table(cfg, channels, table, num_groups):
    model = _Model(MODELS.build(cfg), channels)
    optimizer = _build(model, rate=RATE, lr=LR, wd=WD)
    expected = {name: row for name, *row in table}
    assert len(expected) == len(table), 'a name is listed twice'
    got = {}
    for group in optimizer.param_groups:
        for name in group['param_names']:
            assert name not in got, f'{name} is in two groups'
            got[name] = group
    # every trainable parameter is in the table, and nothing else
    assert sorted(got) == sorted(expected)
    assert sorted(n for n, _ in model.named_parameters()) == sorted(expected)
    for name, (layer_id, lr_mult, wd_mult) in expected.items():
        group = got[name]
        assert group['layer_id'] == layer_id, name
        assert group['lr_scale'] == pytest.approx(lr_mult, rel=1e-12), name
        assert group['lr'] == pytest.approx(LR * lr_mult, rel=1e-12), name
        assert group['weight_decay'] == WD * wd_mult, name
    # one group per (layer, with/without weight decay) pair that occurs
    assert len(optimizer.param_groups) == num_groups


# Named archs on the meta device (no memory): the layer count and spot
# checks where block indices have two digits ('blocks.1' must not be read as
# a prefix of 'blocks.10') or restart in every stage (AlterNet).
NAMED = [
    # DeiT-S: depth 12 -> 14 layers.
    pytest.param(dict(type='SuperViT', arch='deit-s'), 14, {
        'backbone.pos_embed_list.3': (0, 0.9**13, 0),
        'backbone.blocks.1.attn.qkv.weight': (2, 0.9**11, 1),
        'backbone.blocks.10.attn.qkv.weight': (11, 0.9**2, 1),
        'backbone.blocks.11.mlp.fc2.bias': (12, 0.9, 0),
        'backbone.norm.weight': (13, 1.0, 0),
    }, id='supervit-deit-s'),
    # AlterNet-18: blocks (2, 2, 2, 2) -> 8 + 2 = 10 layers; layer s.i is
    # block 2 * (s - 1) + i, layer 2 * (s - 1) + i + 1.
    pytest.param(dict(type='AlterNet', arch=18), 10, {
        'backbone.stem.conv.weight': (0, 0.9**9, 1),
        'backbone.layer1.1.conv1.weight': (2, 0.9**7, 1),
        'backbone.layer3.0.conv1.weight': (5, 0.9**4, 1),
        'backbone.layer4.1.attn.pos_embedding': (8, 0.9, 0),
        'backbone.norm3.weight': (9, 1.0, 0),
    }, id='alternet-18'),
    # PatchConvNet-S60: depth 60 -> 62 layers.
    pytest.param(dict(type='PatchConvNet', arch='S60'), 62, {
        'backbone.patch_embed.proj.0.weight': (0, 0.9**61, 1),
        'backbone.blocks.5.conv1.weight': (6, 0.9**55, 1),
        'backbone.blocks.59.gamma': (60, 0.9, 0),
        'backbone.blocks.59.conv2.weight': (60, 0.9, 1),
    }, id='patchconvnet-s60'),
]


@pytest.mark.parametrize('cfg,num_layers,spots', NAMED)
def test_named_arch_spot_checks(cfg, num_layers, spots):
    with torch.device('meta'):
        backbone = MODELS.build(cfg)
        model = _Model(backbone, 8)
    assert backbone.num_layers == num_layers
    got = {}
    for group in _build(model, rate=RATE, lr=LR, wd=WD).param_groups:
        for name in group['param_names']:
            got[name] = group
    for name, (layer_id, lr_mult, wd_mult) in spots.items():
        assert got[name]['layer_id'] == layer_id, name
        assert got[name]['lr'] == pytest.approx(LR * lr_mult), name
        assert got[name]['weight_decay'] == WD * wd_mult, name
    # heads keep the base lr; the smallest lr is the stem's
    assert got['head.weight']['lr'] == pytest.approx(LR)
    assert min(g['lr'] for g in got.values()) == pytest.approx(
        LR * 0.9**(num_layers - 1))
