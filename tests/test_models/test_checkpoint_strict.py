"""Checkpoints that do not fit are refused with a message that names them.

Covers the ``Pretrained`` init_cfg of every backbone (dict and list forms),
the model converters and whole-model checkpoints (``load_from`` /
``--resume``) through :class:`mmsupervit.engine.hooks.CheckpointCheckHook`.
The golden tiny checkpoints are in the official layouts.
"""
import importlib.util
import json
import logging
import os.path as osp
import re

import pytest
import torch

from golden_weights import golden_arch

import mmsupervit  # noqa: F401  (registers everything)
from mmsupervit.engine.hooks import checkpoint_check_hook as hook_module
from mmsupervit.engine.hooks import check_model_checkpoint
from mmsupervit.models.backbones import AlterNet, PatchConvNet, SuperViT
from mmsupervit.models.utils import checkpoint as ckpt_module
from mmsupervit.models.utils.checkpoint import (CheckpointError,
                                                unwrap_state_dict)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# family -> (golden checkpoint, config it fits, class)
GOLDEN = {
    'SuperViT': ('supervit_deit_tiny.ckpt.pth',
                 dict(arch=golden_arch('supervit_deit_tiny')), SuperViT),
    'AlterNet': ('alternet_tiny.ckpt.pth',
                 dict(arch=golden_arch('alternet_tiny')), AlterNet),
    'PatchConvNet': ('patchconvnet_tiny.ckpt.pth',
                     dict(arch=golden_arch('patchconvnet_tiny')),
                     PatchConvNet),
}
# What the error says each golden checkpoint looks like.
LOOKS_LIKE = {
    'SuperViT': r"a SuperViT checkpoint of an arch outside its zoo "
                r"\(arch=dict\(embed_dims=32, depth=12",
    'AlterNet': r"an AlterNet checkpoint of an arch outside its zoo "
                r"\(arch=dict\(block='basic', num_blocks=\(1, 2, 2, 2\)",
    'PatchConvNet': r'a PatchConvNet checkpoint of an arch outside its zoo '
                    r'\(arch=dict\(embed_dims=64, depth=6\)\)',
}
PAIRS = [
    pytest.param(src, dst, id=f'{src}-into-{dst}') for src in GOLDEN
    for dst in GOLDEN if src != dst
]
FORMS = ['dict', 'list']


# tiny models: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures('single_thread')


@pytest.fixture
def logs(monkeypatch):
    """Messages logged by the checkpoint module and the hook, with levels."""
    records = []

    def record(msg, logger=None, level=logging.INFO):
        records.append((level, msg))

    monkeypatch.setattr(ckpt_module, 'print_log', record)
    monkeypatch.setattr(hook_module, 'print_log', record)
    return records


def _warnings(records):
    return [msg for level, msg in records if level >= logging.WARNING]


def _init_cfg(path, form, **extra):
    pretrained = dict(type='Pretrained', checkpoint=path, **extra)
    if form == 'dict':
        return pretrained
    return [dict(type='Constant', val=0.25, layer='LayerNorm'), pretrained]


def _build(family, init_cfg=None, **overrides):
    _, cfg, cls = GOLDEN[family]
    return cls(**dict(cfg, init_cfg=init_cfg, **overrides))


def _official(golden, family):
    return unwrap_state_dict(
        torch.load(golden(GOLDEN[family][0]), weights_only=True))


def _save(tmp_path, name, state_dict):
    path = str(tmp_path / name)
    torch.save({'state_dict': state_dict}, path)
    return path


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    own = model.state_dict()
    return all(torch.equal(v, before[k]) for k, v in own.items())


# ---------------------------------------------------------------------------
# Pretrained init_cfg
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('form', FORMS)
@pytest.mark.parametrize('src,dst', PAIRS)
def test_other_family_is_refused_and_named(golden, src, dst, form):
    path = golden(GOLDEN[src][0])
    model = _build(dst, _init_cfg(path, form))
    with pytest.raises(CheckpointError) as err:
        model.init_weights()
    msg = str(err.value)
    assert f"checkpoint '{path}' does not fit {dst}" in msg
    assert 'This looks like' in msg
    assert re.search(LOOKS_LIKE[src], msg), msg
    assert f'while this backbone is a{"n" if dst[0] == "A" else ""} {dst}' \
        in msg, msg
    assert 'keys match' in msg


@pytest.mark.parametrize('form', FORMS)
@pytest.mark.parametrize('family', list(GOLDEN))
def test_right_checkpoint_loads_and_only_tolerated_keys_warn(
        golden, family, form, logs):
    model = _build(family, _init_cfg(golden(GOLDEN[family][0]), form))
    model.init_weights()
    own = model.state_dict()
    converted = model.convert_checkpoint(_official(golden, family))
    assert converted, 'nothing to compare'
    assert all(torch.equal(own[k], v) for k, v in converted.items())
    warned = _warnings(logs)
    # Official checkpoints lack our output norms: a warning, not an error.
    # PatchConvNet's default (the paper's single map with the official final
    # norm) has no layer of ours, so nothing is missing.
    expected = {'SuperViT': None, 'AlterNet': "'norm0.weight'",
                'PatchConvNet': None}[family]
    if expected is None:
        assert warned == []
    else:
        assert len(warned) == 1 and 'optional keys missing' in warned[0]
        assert expected in warned[0]
        assert 'num_batches_tracked' not in warned[0]


@pytest.mark.parametrize('form', FORMS)
def test_small_fraction_is_refused(golden, tmp_path, form):
    official = _official(golden, 'SuperViT')
    ten = dict(list(official.items())[:10])
    path = _save(tmp_path, 'ten.pth', ten)
    model = _build('SuperViT', _init_cfg(path, form))
    with pytest.raises(CheckpointError, match=r'it would fill [\d,]+ of the '
                       r'[\d,]+ required weight elements \(\d+\.\d%, '
                       r'min_loaded=1\.0\)') as err:
        model.init_weights()
    assert '10 keys match' in str(err.value)
    missing = [k for k in model.state_dict() if k not in ten]
    assert f'{len(missing)} missing {missing[:5]}' in str(err.value)
    assert 'strict=False in the Pretrained init_cfg' in str(err.value)
    own = model.state_dict()  # nothing was loaded
    assert not any(torch.equal(own[k], v) for k, v in ten.items())


def test_min_loaded_sets_the_fraction(golden, tmp_path, logs):
    official = _official(golden, 'SuperViT')
    half = {k: v for k, v in official.items()
            if not k.startswith(tuple(f'blocks.{i}.' for i in range(6, 12)))}
    path = _save(tmp_path, 'half.pth', half)
    total = sum(v.numel() for v in _build('SuperViT').state_dict().values())
    kept = sum(v.numel() for k, v in half.items()
               if not k.startswith(('head.', )))
    fraction = kept / total  # ~0.61 (the position tables weigh much here)
    assert 0.5 < fraction < 0.7
    with pytest.raises(CheckpointError, match='min_loaded=0.7'):
        _build('SuperViT',
               dict(type='Pretrained', checkpoint=path,
                    min_loaded=0.7)).init_weights()
    model = _build('SuperViT',
                   dict(type='Pretrained', checkpoint=path, min_loaded=0.5))
    model.init_weights()
    assert torch.equal(model.blocks[5].attn.qkv.weight,
                       half['blocks.5.attn.qkv.weight'])
    warned = _warnings(logs)
    assert len(warned) == 1 and 'required keys missing' in warned[0]
    assert "'blocks.6.norm1.weight'" in warned[0]


@pytest.mark.parametrize('form', FORMS)
def test_strict_false_loads_what_fits(golden, tmp_path, form, logs):
    # another family: nothing fits, nothing fails
    model = _build('SuperViT',
                   _init_cfg(golden(GOLDEN['AlterNet'][0]), form,
                             strict=False))
    model.init_weights()
    assert any('required keys missing' in w for w in _warnings(logs))
    assert any('unexpected keys' in w for w in _warnings(logs))
    # a few keys: exactly those are loaded
    official = _official(golden, 'SuperViT')
    ten = dict(list(official.items())[:10])
    model = _build('SuperViT',
                   _init_cfg(_save(tmp_path, 'ten.pth', ten), form,
                             strict=False))
    model.init_weights()
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in ten.items())


def test_shape_mismatch_fails_even_without_strict(golden):
    model = _build('PatchConvNet',
                   dict(type='Pretrained',
                        checkpoint=golden(GOLDEN['PatchConvNet'][0]),
                        strict=False),
                   arch=dict(embed_dims=32, depth=6))
    with pytest.raises(CheckpointError,
                       match=r"'patch_embed\.proj\.0\.weight' has shape "
                       r'\(8, 3, 3, 3\) in the checkpoint but \(4, 3, 3, 3\)'):
        model.init_weights()


def test_deeper_checkpoint_has_unexpected_keys(golden):
    path = golden(GOLDEN['PatchConvNet'][0])
    shallow = _build('PatchConvNet', dict(type='Pretrained', checkpoint=path),
                     arch=dict(embed_dims=64, depth=4))
    with pytest.raises(CheckpointError, match=r'the checkpoint has 26 keys '
                       r"the model does not have.*unexpected \['blocks\.4\."):
        shallow.init_weights()
    _build('PatchConvNet',
           dict(type='Pretrained', checkpoint=path, strict=False),
           arch=dict(embed_dims=64, depth=4)).init_weights()


def test_tolerated_unexpected_keys(golden, logs):
    # norm3 (the official classifier BN) is not used without stage 3
    model = _build('AlterNet',
                   dict(type='Pretrained',
                        checkpoint=golden(GOLDEN['AlterNet'][0])),
                   out_indices=(0, 1, 2))
    model.init_weights()
    infos = [m for level, m in logs if level == logging.INFO]
    assert any('does not use' in m and "'norm3.weight'" in m for m in infos)


@pytest.mark.parametrize('form', FORMS)
def test_whole_model_checkpoint_suggests_prefix(golden, tmp_path, form):
    official = _official(golden, 'PatchConvNet')
    whole = {f'backbone.{k}': v for k, v in official.items()}
    whole['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(3, 4)
    path = _save(tmp_path, 'detector.pth', whole)
    with pytest.raises(CheckpointError) as err:
        _build('PatchConvNet', _init_cfg(path, form)).init_weights()
    msg = str(err.value)
    assert 'a whole-model checkpoint of an mmdet detector (modules ' \
        'backbone, roi_head)' in msg
    assert "whose 'backbone.' keys are a PatchConvNet checkpoint" in msg
    assert "load its backbone with prefix='backbone.'" in msg
    model = _build('PatchConvNet', _init_cfg(path, form, prefix='backbone.'))
    model.init_weights()  # as suggested


def test_bad_strict_and_min_loaded_fail_at_build_time():
    for bad in (dict(strict='no'), dict(min_loaded=0), dict(min_loaded=1.5),
                dict(min_loaded=True)):
        with pytest.raises(ValueError, match='strict|min_loaded'):
            _build('SuperViT', dict(type='Pretrained', checkpoint='x.pth',
                                    **bad))


@pytest.mark.parametrize('family', list(GOLDEN))
def test_official_zoo_manifests_are_recognised(golden, family):
    from mmsupervit.models.backbones.base import identify_checkpoint
    cls = GOLDEN[family][2]
    prefix = {'SuperViT': 'super_', 'AlterNet': 'alternet_',
              'PatchConvNet': 'patchconvnet_'}[family]
    names = {'SuperViT': {'deit_s': 'deit-s', 'lvvit_s': 'lvvit-s'},
             'AlterNet': {n: n for n in ('18', '34', '50', '101', '152')},
             'PatchConvNet': {n: n.lower() for n in (
                 'S60', 'S120', 'B60', 'B120', 'L60', 'L120')}}[family]
    for file_part, arch in names.items():
        with open(golden(f'{prefix}{file_part}.keys.json')) as f:
            keys = json.load(f)['keys']
        sd = {k: torch.empty(v['shape'], device='meta')
              for k, v in keys.items()}
        assert cls.identify_arch(sd) == arch
        article = 'an' if family[0] == 'A' else 'a'
        assert identify_checkpoint(sd) == \
            f'{article} {family} checkpoint (arch={arch!r})'


# ---------------------------------------------------------------------------
# converters
# ---------------------------------------------------------------------------
def _tool(family):
    name = {'SuperViT': 'supervit', 'AlterNet': 'alternet',
            'PatchConvNet': 'patchconvnet'}[family]
    spec = importlib.util.spec_from_file_location(
        f'{name}_tool', osp.join(REPO, 'tools', 'model_converters',
                                 f'{name}2mmsupervit.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.mark.parametrize('src,dst', PAIRS)
def test_converter_refuses_another_family(golden, tmp_path, src, dst):
    out = tmp_path / 'out.pth'
    with pytest.raises(CheckpointError) as err:
        _tool(dst).main([golden(GOLDEN[src][0]), str(out)])
    assert f'is not a {dst} checkpoint: it looks like' in str(err.value)
    assert re.search(LOOKS_LIKE[src], str(err.value)), err.value
    assert not out.exists()


def test_converter_checks_arch_and_records_it(golden, tmp_path):
    out = tmp_path / 'out.pth'
    with pytest.raises(CheckpointError,
                       match=r"does not fit AlterNet\(arch='18'\): key "
                       r"'layer2\.1\.attn\.to_q\.weight' has shape"):
        _tool('AlterNet').main(
            [golden(GOLDEN['AlterNet'][0]), str(out), '--arch', '18'])
    assert not out.exists()
    # the golden checkpoint is a tiny arch of the family: no --arch, recorded
    _tool('PatchConvNet').main([golden(GOLDEN['PatchConvNet'][0]), str(out)])
    meta = torch.load(str(out), weights_only=True)['meta']
    assert meta['recognised_arch'] == dict(embed_dims=64, depth=6)
    # a whole detector is not a backbone checkpoint
    whole = {f'backbone.{k}': v
             for k, v in _official(golden, 'SuperViT').items()}
    whole['rpn_head.rpn_cls.weight'] = torch.zeros(3, 4)
    with pytest.raises(CheckpointError, match="prefix='backbone.'"):
        _tool('SuperViT').main(
            [_save(tmp_path, 'det.pth', whole), str(tmp_path / 'x.pth')])


# ---------------------------------------------------------------------------
# whole-model checkpoints: load_from / --resume
# ---------------------------------------------------------------------------
SEG_CFG = osp.join(REPO, 'configs', 'demo',
                   'supervit-tiny_upernet_1xb4-300i_demo-128x128.py')
DET_CFG = osp.join(REPO, 'configs', 'demo',
                   'mask-rcnn_supervit-tiny_fpn_300i_demo.py')
DET_PCN_CFG = osp.join(REPO, 'configs', 'demo',
                       'mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py')


def _model(path, **backbone):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.update(backbone)
    if backbone.get('arch', {}).get('embed_dims') == 64 and \
            cfg.default_scope == 'mmdet':
        cfg.model.neck[0].in_channels = 64
        cfg.model.neck[1].in_channels = [64] * 4
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def models():
    """The demo segmentor and detector (the same SuperViT, embed 96), the
    detector with another SuperViT (embed 64), and the PatchConvNet demo
    detector."""
    from mmengine.registry import DefaultScope

    # Module-scoped fixtures are set up before conftest's per-test scope
    # isolation: restore the default scope here.
    saved = dict(DefaultScope._instance_dict)
    torch.manual_seed(0)
    try:
        yield dict(
            seg=_model(SEG_CFG),
            det=_model(DET_CFG),
            det64=_model(DET_CFG, arch=dict(embed_dims=64, depth=6,
                                            num_heads=2)),
            det_pcn=_model(DET_PCN_CFG))
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)


def _ckpt(model):
    return {'meta': {}, 'state_dict': model.state_dict()}


def test_same_model_checkpoint_passes(models, logs):
    report = check_model_checkpoint(models['seg'], _ckpt(models['seg']))
    assert report.loaded_fraction == 1.0 and not report.unexpected
    assert _warnings(logs) == []
    # with a DDP-style prefix (mmengine strips it as well)
    sd = {f'module.{k}': v for k, v in models['det'].state_dict().items()}
    check_model_checkpoint(models['det'], {'state_dict': sd})


def test_detector_checkpoint_into_segmentor_is_refused(models):
    # same backbone: the heads give it away
    with pytest.raises(CheckpointError) as err:
        check_model_checkpoint(models['seg'], _ckpt(models['det']),
                               'checkpoint det.pth')
    msg = str(err.value)
    assert msg.startswith('checkpoint det.pth does not fit EncoderDecoder: '
                          'it would fill')
    assert 'This looks like an mmdet detector (modules backbone, neck, ' \
        'rpn_head, roi_head) whose backbone is a SuperViT checkpoint' in msg
    assert 'while the model is an mmseg segmentor (modules ' \
        'data_preprocessor, backbone, neck, decode_head, auxiliary_head)' \
        in msg or 'while the model is an mmseg segmentor' in msg
    # another backbone too: the backbone check names it
    with pytest.raises(CheckpointError,
                       match=r'does not fit the backbone of EncoderDecoder: '
                       r"key 'cls_token' has shape \(1, 1, 64\) in the "
                       r'checkpoint but \(1, 1, 96\)'):
        check_model_checkpoint(models['seg'], _ckpt(models['det64']))


def test_other_backbone_checkpoint_is_refused(models):
    with pytest.raises(CheckpointError) as err:
        check_model_checkpoint(models['det'], _ckpt(models['det_pcn']))
    msg = str(err.value)
    assert 'does not fit the backbone of MaskRCNN' in msg
    assert 'whose backbone is a PatchConvNet checkpoint' in msg
    assert 'with a SuperViT backbone' in msg


def test_backbone_only_checkpoint_is_refused(models):
    backbone = {k: v for k, v in models['seg'].backbone.state_dict().items()}
    with pytest.raises(CheckpointError,
                       match='a backbone checkpoint, not a whole model: give '
                       r"it as model\.backbone\.init_cfg"):
        check_model_checkpoint(models['seg'], {'state_dict': backbone})


def test_new_class_count_passes_with_a_lower_min_loaded(models, logs):
    sd = dict(models['seg'].state_dict())
    for key in ('decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'):
        sd[key] = torch.zeros((7, ) + tuple(sd[key].shape[1:]))
    with pytest.raises(CheckpointError,
                       match=r"'decode_head\.conv_seg\.weight' has shape "
                       r'\(7, 64, 1, 1\) in the checkpoint but '
                       r'\(5, 64, 1, 1\)'):
        check_model_checkpoint(models['seg'], {'state_dict': sd})
    report = check_model_checkpoint(models['seg'], {'state_dict': sd},
                                    min_loaded=0.9)
    assert [k for k, _, _ in report.mismatched] == [
        'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias']
    assert any('conv_seg' in w for w in _warnings(logs))
    # strict=False: anything goes, with a warning
    check_model_checkpoint(models['seg'], _ckpt(models['det']), strict=False)


def test_hook_stops_the_runner_before_loading(models, tmp_path):
    from mmengine.runner import Runner
    path = str(tmp_path / 'det.pth')
    torch.save(_ckpt(models['det']), path)
    seg = models['seg']
    before = _snapshot(seg)
    runner = Runner(model=seg, work_dir=str(tmp_path / 'work'),
                    custom_hooks=[dict(type='mmsupervit.CheckpointCheckHook')],
                    default_scope='mmseg')
    with pytest.raises(CheckpointError,
                       match=f"checkpoint '{path}' does not fit"):
        runner._load_from = path  # as Runner(load_from=path) sets it
        runner.load_checkpoint(path)
    assert _unchanged(seg, before)
    # the tools add the hook (a config's own one wins)
    from mmengine.config import Config
    from mmsupervit.utils import runner_utils as ru
    cfg = Config(dict(custom_hooks=[dict(type='SyncBuffersHook')]))
    ru.add_checkpoint_check(cfg, 0.9)
    assert cfg.custom_hooks[-1] == dict(
        type='mmsupervit.CheckpointCheckHook', min_loaded=0.9)
    cfg = Config(dict(custom_hooks=[dict(type='CheckpointCheckHook',
                                         strict=False)]))
    ru.add_checkpoint_check(cfg)
    assert len(cfg.custom_hooks) == 1


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_add_the_hook(tool, monkeypatch, tmp_path):
    from mmsupervit.utils import runner_utils as ru
    spec = importlib.util.spec_from_file_location(
        f'_{tool}_tool', osp.join(REPO, 'tools', f'{tool}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen = {}

    class Stop(Exception):
        pass

    def fake_build_runner(cfg):
        seen['cfg'] = cfg
        raise Stop

    monkeypatch.setattr(ru, 'build_runner', fake_build_runner)
    args = [SEG_CFG, '--work-dir', str(tmp_path)]
    if tool == 'test':
        args.insert(1, 'x.pth')
    with pytest.raises(Stop):
        module.main(args)
    hooks = [h for h in seen['cfg'].custom_hooks
             if h['type'] == 'mmsupervit.CheckpointCheckHook']
    assert hooks == [dict(type='mmsupervit.CheckpointCheckHook',
                          min_loaded=1.0 if tool == 'test' else 0.9)]
