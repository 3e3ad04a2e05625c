"""Classification pretraining with mmpretrain feeds the dense configs as is.

``tools/train.py`` runs the AlterNet-50 ImageNet config (its pipelines,
Mixup/CutMix, optimizer and schedulers; only the data, the class count, the
depth and the length are changed) for one epoch of two iterations on
generated images. The checkpoint it writes is copied to the path the dense
AlterNet-50 configs expect (``pretrained/alternet-50_in1k.pth``), and the
dense models built from those configs, unedited apart from the same reduced
depth, must hold exactly the trained backbone weights. The converter tool
exports the checkpoint to the official layout and back.
"""
import glob
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip('mmpretrain')

from _tool_helpers import REPO, run_tool  # noqa: E402

from mmsupervit.models.classification import (  # noqa: E402
    classifier_to_official)

CLS_CFG = osp.join(REPO, 'configs', 'alternet', 'alternet-50_8xb128_in1k.py')
DENSE_CFGS = [
    osp.join(REPO, 'configs', 'alternet', name) for name in (
        'alternet-50_upernet_8xb2-160k_ade20k-512x512.py',
        'mask-rcnn_alternet-50_fpn_1x_coco.py')
]
#: AlterNet-50 with fewer blocks (bottlenecks, widths and MSA stages kept),
#: on both sides.
REDUCED = dict(base=50, num_blocks=(1, 2, 2, 2), num_msa=(0, 1, 1, 1))


def _images(root, num_classes=4, per_class=2, size=64):
    """A class-folder image set (mmpretrain's CustomDataset layout)."""
    from PIL import Image
    rng = np.random.RandomState(0)
    for c in range(num_classes):
        folder = osp.join(root, 'train', f'class{c}')
        os.makedirs(folder)
        for i in range(per_class):
            pixels = rng.randint(0, 256, (size, size, 3), dtype=np.uint8)
            pixels[..., c % 3] = 40 * c  # a class colour
            Image.fromarray(pixels).save(osp.join(folder, f'c{c}_{i}.png'))


def _write_cls_config(path, data_root):
    """The ImageNet config with tiny data: 8 images, batch 4, one epoch."""
    with open(path, 'w') as f:
        f.write(f'''_base_ = [{CLS_CFG!r}]
model = dict(backbone=dict(arch=dict(_delete_=True, **{REDUCED!r})),
             head=dict(num_classes=4))
data_preprocessor = dict(num_classes=4)
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root={data_root!r},
                 data_prefix='train', pipeline=_base_.train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root={data_root!r},
                 data_prefix='train', pipeline=_base_.test_pipeline))
test_evaluator = dict(topk=(1, 3))  # 4 classes: no top-5
train_cfg = dict(max_epochs=1)
default_hooks = dict(checkpoint=dict(interval=1),
                     logger=dict(interval=1))
randomness = dict(seed=0)
''')


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """(run folder, checkpoint) of the 2-iteration classification run."""
    root = tmp_path_factory.mktemp('pretrain')
    _images(str(root / 'data'))
    cfg = str(root / 'alternet-50_tiny_in1k.py')
    _write_cls_config(cfg, str(root / 'data'))
    work_dir = str(root / 'work_dir')
    proc = run_tool(['tools/train.py', cfg, '--work-dir', work_dir],
                    timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Epoch(train) [1][2/2]' in proc.stdout + proc.stderr
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt), os.listdir(work_dir)
    return root, ckpt


def test_test_tool_evaluates_the_classifier(pretrained):
    """``tools/test.py CONFIG CKPT`` on an mmpretrain config: accuracy of
    the written checkpoint with the config's evaluation transform."""
    root, ckpt = pretrained
    show_dir = str(root / 'show')
    proc = run_tool(['tools/test.py', str(root / 'alternet-50_tiny_in1k.py'),
                     ckpt, '--work-dir', str(root / 'test_dir'),
                     '--show-dir', show_dir])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'accuracy/top1' in out and 'accuracy/top3' in out, out[-2000:]
    # --show-dir: one picture per test image (8), mmpretrain's hook
    pictures = glob.glob(osp.join(show_dir, '*.png'))
    assert len(pictures) == 8, os.listdir(show_dir)


def test_classification_checkpoint_layout(pretrained):
    _, ckpt = pretrained
    sd = torch.load(ckpt, map_location='cpu', weights_only=False)[
        'state_dict']
    tops = {k.split('.')[0] for k in sd}
    assert tops == {'backbone', 'head'}, tops
    assert set(k for k in sd if k.startswith('head.')) == {
        'head.fc.weight', 'head.fc.bias'}
    # the trained classifier moved away from its initialisation
    assert sd['head.fc.weight'].shape == (4, 2048)


@pytest.mark.parametrize('dense_cfg', DENSE_CFGS,
                         ids=[osp.basename(p) for p in DENSE_CFGS])
def test_dense_configs_take_the_checkpoint_unedited(pretrained, dense_cfg,
                                                    monkeypatch):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    import mmsupervit  # noqa: F401
    root, ckpt = pretrained
    # the path the dense configs name, relative to the run directory
    os.makedirs(root / 'pretrained', exist_ok=True)
    shutil.copy(ckpt, root / 'pretrained' / 'alternet-50_in1k.pth')
    monkeypatch.chdir(root)
    cfg = Config.fromfile(dense_cfg)
    assert cfg.model.backbone.init_cfg.checkpoint == \
        'pretrained/alternet-50_in1k.pth'
    cfg.model.backbone.arch = REDUCED  # the depth of the run above
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    trained = {
        k[len('backbone.'):]: v
        for k, v in torch.load(ckpt, map_location='cpu', weights_only=False)
        ['state_dict'].items() if k.startswith('backbone.')
    }
    own = model.backbone.state_dict()
    # every trained weight is in the dense backbone, equal
    assert set(trained) <= set(own)
    for key, value in trained.items():
        assert torch.equal(own[key], value), key
    # only our per-stage output norms (no ImageNet counterpart) are new
    assert all(k.split('.')[0] in ('norm0', 'norm1', 'norm2')
               for k in set(own) - set(trained))


def test_converter_exports_official_layout_and_back(pretrained, tmp_path):
    """tools/model_converters/alternet2mmsupervit.py: the mmpretrain
    checkpoint -> official layout (--to-official) -> classifier layout
    (--classifier) gives the trained tensors back."""
    _, ckpt = pretrained
    official = str(tmp_path / 'official.pth')
    back = str(tmp_path / 'classifier.pth')
    tool = 'tools/model_converters/alternet2mmsupervit.py'
    proc = run_tool([tool, ckpt, official, '--to-official'])
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_tool([tool, official, back, '--classifier'])
    assert proc.returncode == 0, proc.stderr[-2000:]
    trained = torch.load(ckpt, map_location='cpu',
                         weights_only=False)['state_dict']
    exported = torch.load(official, map_location='cpu', weights_only=True)
    assert set(exported) == {'name', 'state_dict'}  # official _save layout
    assert exported['state_dict'].keys() == classifier_to_official(
        'AlterNet', trained).keys()
    assert 'classifier.0.dense.weight' in exported['state_dict']
    restored = torch.load(back, map_location='cpu',
                          weights_only=True)['state_dict']
    assert sorted(restored) == sorted(trained)
    assert all(torch.equal(restored[k], v) for k, v in trained.items())
