"""Neck and head widths follow the backbone's declared outputs.

The configs say ``in_channels='auto'``; mmsupervit.EncoderDecoder and
mmsupervit.MaskRCNN fill it from ``backbone.output_shape()``. Changing only the
arch of a config must give a model whose neck and heads have the new widths.
"""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

from _configs import CONFIG_DIR, load_config, strip_pretrained
from mmsupervit.models.auto_channels import resolve_auto_channels


def _build_meta(path, **backbone):
    cfg = load_config(f'{CONFIG_DIR}/{path}')
    init_default_scope(cfg.default_scope)
    strip_pretrained(cfg.model)
    cfg.model.backbone.update(backbone)  # the one line a variant changes
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def _declared(model):
    return [s.channels for s in model.backbone.output_shape().values()]


def _fpn_in(fpn):
    return [conv.conv.in_channels for conv in fpn.lateral_convs]


# (config, arch changes, expected backbone widths)
SEG_CASES = [
    ('alternet/alternet-50_upernet_8xb2-160k_ade20k-512x512.py',
     dict(arch=18), [64, 128, 256, 512]),
    ('patchconvnet/patchconvnet-s60_upernet_8xb2-160k_ade20k-512x512.py',
     dict(arch='B60'), [768]),
    ('supervit/supervit-deit-s_upernet_8xb2-160k_ade20k-512x512.py',
     dict(arch=dict(base='deit-s', embed_dims=192, num_heads=3)), [192] * 4),
]


@pytest.mark.parametrize('path,change,widths', SEG_CASES,
                         ids=[c[0].split('/')[0] for c in SEG_CASES])
def test_upernet_widths_follow_the_arch(path, change, widths):
    model = _build_meta(path, **change)
    assert _declared(model) == widths
    lateral = [c.conv.in_channels for c in model.decode_head.lateral_convs]
    pooled = model.decode_head.psp_modules[0][1].conv.in_channels
    aux = model.auxiliary_head.convs[0].conv.in_channels
    levels = widths
    if model.with_neck:  # a column: the pyramid turns it into 4 levels
        assert model.neck.in_channels == widths[0]
        levels = [s.channels for s in model.neck.output_shape().values()] \
            if hasattr(model.neck, 'output_shape') else widths
    assert lateral == levels[:3] and pooled == levels[3]
    assert aux == levels[model.auxiliary_head.in_index]
    # and the pieces fit: backbone + neck + heads run on a meta input
    model.eval()
    with torch.no_grad():
        x = torch.empty(1, 3, 128, 128, device='meta')
        logits = model.decode_head(model.extract_feat(x))
    assert logits.shape[1] == 150


DET_CASES = [
    ('alternet/mask-rcnn_alternet-50_fpn_1x_coco.py', dict(arch=18),
     [64, 128, 256, 512]),
    ('patchconvnet/mask-rcnn_patchconvnet-s60_fpn_1x_coco.py',
     dict(arch='B120'), [768]),
    ('supervit/mask-rcnn_supervit-deit-s_fpn_1x_coco.py',
     dict(arch=dict(base='deit-s', embed_dims=192, num_heads=3)), [192] * 4),
]


@pytest.mark.parametrize('path,change,widths', DET_CASES,
                         ids=[c[0].split('/')[0] for c in DET_CASES])
def test_fpn_widths_follow_the_arch(path, change, widths):
    model = _build_meta(path, **change)
    assert _declared(model) == widths
    if isinstance(model.neck, torch.nn.Sequential):  # column: pyramid, FPN
        pyramid, fpn = model.neck
        assert pyramid.in_channels == widths[0]
        assert _fpn_in(fpn) == list(pyramid.out_channels)
        assert _fpn_in(fpn) == widths
    elif type(model.neck).__name__ == 'FPN':  # hierarchical backbone
        assert _fpn_in(model.neck) == widths
    else:  # one map: the simple feature pyramid in FPN's place
        assert model.neck.in_channels == widths[0]
    with torch.no_grad():
        feats = model.extract_feat(
            torch.empty(1, 3, 128, 128, device='meta'))
    assert [f.shape[1] for f in feats] == [256] * 5


def test_explicit_widths_are_left_alone():
    neck = dict(type='mmsupervit.ColumnPyramidNeck', in_channels=7)
    heads = [dict(type='FCNHead', in_channels=3)]
    from mmseg.registry import MODELS as SEG_MODELS
    out_neck, out_heads = resolve_auto_channels(
        SEG_MODELS, dict(type='mmsupervit.PatchConvNet'), neck, heads)
    assert out_neck == neck and out_heads == heads


def test_auto_needs_a_declaring_backbone():
    from mmseg.registry import MODELS as SEG_MODELS
    init_default_scope('mmseg')
    with pytest.raises(TypeError, match='output_shape'):
        resolve_auto_channels(
            SEG_MODELS, dict(type='ResNetV1c', depth=18), None,
            [dict(type='FCNHead', in_channels='auto', channels=8,
                  num_classes=2)])


def test_single_width_neck_rejects_mixed_widths():
    """AlterNet's four widths cannot feed the one-width column pyramid."""
    from mmseg.registry import MODELS as SEG_MODELS
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match=r'different widths \[64, 128'):
        resolve_auto_channels(
            SEG_MODELS, dict(type='mmsupervit.AlterNet', arch=18),
            dict(type='mmsupervit.ColumnPyramidNeck', in_channels='auto'))


def test_head_index_out_of_range():
    from mmseg.registry import MODELS as SEG_MODELS
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match='in_index 5 is out of range'):
        resolve_auto_channels(
            SEG_MODELS, dict(type='mmsupervit.AlterNet', arch=18), None,
            [dict(type='FCNHead', in_channels='auto', in_index=5)])


def test_auto_outside_our_models_fails_clearly():
    """mmseg's own EncoderDecoder does not resolve 'auto': the neck says so."""
    from mmsupervit.models.necks import ColumnPyramidNeck
    with pytest.raises(TypeError, match="mmsupervit.EncoderDecoder"):
        ColumnPyramidNeck(in_channels='auto')


PATCHCONVNET_CONFIGS = sorted(
    p.split('configs/', 1)[1]
    for p in __import__('glob').glob(f'{CONFIG_DIR}/patchconvnet/*.py')
    if not p.endswith('_in1k.py'))


@pytest.mark.parametrize('path', PATCHCONVNET_CONFIGS)
def test_patchconvnet_configs_feed_the_last_block_alone(path):
    """As in the paper: the backbone returns one map, its last block's, and
    the neck builds four levels (strides 4, 8, 16, 32) from it."""
    model = _build_meta(path)
    backbone = model.backbone
    assert backbone.out_indices == (backbone.depth - 1, )
    assert list(backbone.output_shape().values()) == [
        (backbone.embed_dims, 16)]
    strides = [s.stride for s in model.neck.output_shape().values()]
    assert strides[:4] == [4, 8, 16, 32]
    with torch.no_grad():
        feats = model.extract_feat(torch.empty(1, 3, 128, 128, device='meta'))
    assert [f.shape[-1] for f in feats[:4]] == [32, 16, 8, 4]
