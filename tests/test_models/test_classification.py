"""mmpretrain classifiers of our backbones against the official logits.

Each golden tiny checkpoint (official layout, ``tests/data/README.md``) is
turned into the classifier layout by
:func:`mmsupervit.models.classification.official_to_classifier`, loaded
strictly into mmpretrain's ``ImageClassifier`` (backbone from mmpretrain's
scope + the official head), and must give the logits the official model
gave. Also: ``import mmsupervit`` without mmpretrain.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmpretrain')

from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import mmsupervit  # noqa: E402,F401
from mmsupervit.models.classification import (  # noqa: E402
    BACKBONES, classifier_to_official, convert_classifier_file,
    official_to_classifier)
from mmsupervit.models.utils.checkpoint import (  # noqa: E402
    CheckpointError, unwrap_state_dict)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOL = dict(atol=1e-4, rtol=1e-4)

pytestmark = pytest.mark.usefixtures('single_thread')

#: The golden tiny models (tests/data/README.md) as classifier configs.
CLASSIFIERS = {
    'patchconvnet': ('PatchConvNet', dict(
        backbone=dict(type='PatchConvNet',
                      arch=dict(embed_dims=64, depth=6,
                                layer_scale_init_value=1e-4),
                      with_attn_pool=True, out_type='cls_token'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64))),
    'supervit_deit': ('SuperViT', dict(
        backbone=dict(type='SuperViT',
                      arch=dict(embed_dims=32, depth=12, num_heads=2),
                      out_type='cls_token'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=32))),
    'supervit_lvvit': ('SuperViT', dict(
        backbone=dict(type='SuperViT',
                      arch=dict(base='lvvit-s', embed_dims=32, depth=12,
                                num_heads=2),
                      out_type='cls_token'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=32))),
    'alternet': ('AlterNet', dict(
        backbone=dict(type='AlterNet',
                      arch=dict(block='basic', num_blocks=(1, 2, 2, 2),
                                num_msa=(0, 1, 1, 1), heads=(3, 3, 3, 3)),
                      out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=512))),
}


def _official(golden, name):
    return unwrap_state_dict(torch.load(
        golden(f'{name}_tiny.ckpt.pth'), map_location='cpu',
        weights_only=True))


def _classifier(golden, name, **backbone):
    family, cfg = CLASSIFIERS[name]
    cfg = dict(type='ImageClassifier', **cfg)
    cfg['backbone'] = dict(cfg['backbone'], **backbone)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    model.load_state_dict(official_to_classifier(family, _official(
        golden, name)), strict=True)
    return model.eval()


def _ref(golden, name):
    return torch.load(golden(f'{name}_tiny.ref.pth'), map_location='cpu',
                      weights_only=True)


def test_backbones_are_registered_in_mmpretrain_scope():
    for cls in BACKBONES:
        assert MODELS.get(cls.__name__) is cls  # the same class, no copy


@pytest.mark.parametrize('name', ['patchconvnet', 'alternet'])
def test_official_logits(golden, name):
    ref = _ref(golden, name)
    model = _classifier(golden, name)
    with torch.no_grad():
        logits = model(ref['input'], mode='tensor')
    torch.testing.assert_close(logits, ref['logits'], **TOL)


@pytest.mark.parametrize('run_key', ['224_1.0', '224_0.7', '160_0.5',
                                     '128_1.0'])
@pytest.mark.parametrize('name', ['supervit_deit', 'supervit_lvvit'])
def test_supervit_official_logits(golden, name, run_key):
    """Each run of the official ``model(x, img_size, keep_ratio)``: the
    backbone's ``input_scale`` does the official first step, the bilinear
    (``align_corners=True``) resize of the 64 px input to ``img_size``, and
    ``pos_embed_size`` picks that size's position table. LV-ViT's official
    logits add its token-labelling head (not ported): the classifier gives
    the main head's logits, recorded as ``head_logits``."""
    ref = _ref(golden, name)
    run = ref[run_key]
    size = run['img_size']
    model = _classifier(golden, name, keep_rate=run['keep_ratio'],
                        input_scale=size / ref['input'].shape[-1],
                        pos_embed_size=size)
    with torch.no_grad():
        logits = model(ref['input'], mode='tensor')
    expected = run['head_logits'] if name == 'supervit_lvvit' else \
        run['logits']
    torch.testing.assert_close(logits, expected, **TOL)


@pytest.mark.parametrize('name', ['patchconvnet', 'supervit_deit',
                                  'alternet'])
def test_official_classifier_round_trip(golden, name):
    """official -> classifier -> official is the original, tensor for
    tensor, and the classifier layout loads strictly (above)."""
    family = CLASSIFIERS[name][0]
    official = _official(golden, name)
    back = classifier_to_official(
        family, official_to_classifier(family, official))
    assert sorted(back) == sorted(official)
    assert all(torch.equal(back[k], v) for k, v in official.items())


def test_import_without_mmpretrain():
    """``import mmsupervit`` works (and registers nothing into mmpretrain)
    when mmpretrain cannot be found."""
    code = '\n'.join([
        'import sys',
        'class Hide:',
        '    def find_spec(self, name, path=None, target=None):',
        "        if name.split('.')[0] == 'mmpretrain':",
        '            raise ModuleNotFoundError(',
        "                f'No module named {name!r}', name=name)",
        'sys.meta_path.insert(0, Hide())',
        'import mmsupervit',
        'from mmsupervit.models import classification',
        'assert not classification.register_into_mmpretrain()',
        "assert not any(m.split('.')[0] == 'mmpretrain' "
        'for m in sys.modules)',
        "print('ok')",
    ])
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ,
                                   PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', \
        proc.stderr[-2000:]


@pytest.mark.parametrize('name', ['patchconvnet', 'supervit_deit',
                                  'alternet'])
def test_converted_file_evaluates_like_the_official_model(golden, name,
                                                          tmp_path):
    """The user's path: ``<family>2mmsupervit.py SRC DST --classifier``,
    then mmengine's ``load_checkpoint`` (what ``tools/test.py CONFIG DST``
    does) gives the official logits; ``--to-official`` gives the official
    file back."""
    from mmengine.runner import load_checkpoint
    family, cfg = CLASSIFIERS[name]
    src = golden(f'{name}_tiny.ckpt.pth')
    dst = str(tmp_path / 'cls.pth')
    convert_classifier_file(family, src, dst)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(type='ImageClassifier', **cfg)).eval()
    load_checkpoint(model, dst, strict=True)
    ref = _ref(golden, name)
    run = ref['224_1.0'] if name.startswith('supervit') else ref
    x = ref['input']
    if name.startswith('supervit'):
        model.backbone.input_scale = 224 / x.shape[-1]
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), run['logits'],
                                   **TOL)
    back = str(tmp_path / 'official.pth')
    convert_classifier_file(family, dst, back, to_official=True)
    original = torch.load(src, map_location='cpu', weights_only=True)
    exported = torch.load(back, map_location='cpu', weights_only=True)
    key = 'state_dict' if family == 'AlterNet' else 'model'
    assert sorted(exported[key]) == sorted(original[key])
    assert all(torch.equal(exported[key][k], v)
               for k, v in original[key].items())


def test_converter_refuses_another_family(golden, tmp_path):
    with pytest.raises(CheckpointError, match='not a PatchConvNet'):
        convert_classifier_file('PatchConvNet',
                                golden('alternet_tiny.ckpt.pth'),
                                str(tmp_path / 'x.pth'))
    assert not (tmp_path / 'x.pth').exists()


#: Dense backbone keys a classifier checkpoint does not hold (new output
#: norms), and classifier keys a dense backbone does not use (PatchConvNet's
#: pooling block, dropped on load), per golden model.
DENSE_ONLY = {'alternet': ('norm0.', 'norm1.', 'norm2.'),
              'patchconvnet': (), 'supervit_deit': ()}
CLASSIFIER_ONLY = {'alternet': (), 'patchconvnet': ('attn_pool.', ),
                   'supervit_deit': ()}


@pytest.mark.parametrize('prefix', [None, 'backbone.'])
@pytest.mark.parametrize('name', ['alternet', 'patchconvnet',
                                  'supervit_deit'])
def test_dense_backbone_takes_a_classifier_checkpoint(golden, tmp_path,
                                                      name, prefix):
    """A checkpoint of an mmpretrain classifier loads into the dense
    backbone (default outputs) with the explicit prefix or without one (the
    ``backbone.`` keys are taken automatically), weight for weight."""
    family, cfg = CLASSIFIERS[name]
    dst = str(tmp_path / 'cls.pth')
    convert_classifier_file(family, golden(f'{name}_tiny.ckpt.pth'), dst)
    init_cfg = dict(type='Pretrained', checkpoint=dst)
    if prefix:
        init_cfg['prefix'] = prefix
    dense = next(c for c in BACKBONES if c.__name__ == family)(
        arch=cfg['backbone']['arch'], init_cfg=init_cfg)
    dense.init_weights()
    trained = {
        k[len('backbone.'):]: v
        for k, v in torch.load(dst, map_location='cpu', weights_only=True)
        ['state_dict'].items() if k.startswith('backbone.')
    }
    own = dense.state_dict()
    new = {k for k in own if k not in trained}
    assert new == {k for k in own if k.startswith(DENSE_ONLY[name])}
    assert {k for k in trained if k not in own} == {
        k for k in trained if k.startswith(CLASSIFIER_ONLY[name])}
    shared = [k for k in own if k in trained]
    assert len(shared) > 10
    assert all(torch.equal(own[k], trained[k]) for k in shared)
