"""Every config under configs/ loads, builds on CPU and runs one step.

Configs are found by globbing, so a new config is covered automatically.
Nothing is downloaded: every ``init_cfg`` of type ``Pretrained`` is removed.
The models are the real full-size ones; only the input is small. Configs that
differ only in schedule or data (1x vs ms-3x) share one model definition: each
one is built, and the training/inference step runs once per distinct model.
"""
import glob
import hashlib
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p.split(osp.sep))


def _strip_pretrained(node):
    """Remove every Pretrained init_cfg (in place); returns how many."""
    count = 0
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
            count += 1
        for value in node.values():
            count += _strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _strip_pretrained(value)
    return count


def _seg_batch(model, size, num_classes):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=size, pad_shape=size,
                                        ori_shape=size))
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, ) + size))
        samples.append(s)
    imgs = [torch.randint(0, 256, (3, ) + size, dtype=torch.uint8)
            for _ in range(2)]
    return model.data_preprocessor(dict(inputs=imgs, data_samples=samples),
                                   training=True)


def _det_batch(model, size):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = size
    s = DetDataSample(metainfo=dict(img_shape=size, pad_shape=size,
                                    ori_shape=size, scale_factor=(1., 1.)))
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 8:60, 10:70] = 1
    masks[1, 40:120, 60:150] = 1
    s.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 8., 70., 60.], [60., 40., 150., 120.]]),
        labels=torch.tensor([0, 1]),
        masks=BitmapMasks(masks.numpy(), h, w))
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    return model.data_preprocessor(dict(inputs=[img], data_samples=[s]),
                                   training=True)


def _total(losses):
    total = 0.
    for key, value in losses.items():
        if 'loss' in key:
            total = total + (sum(value) if isinstance(value, list) else value)
    return total


_STEPPED = set()


def _model_key(cfg):
    return hashlib.sha1(
        repr(sorted(cfg.model.to_dict().items())).encode()).hexdigest()


def test_configs_found():
    assert len(CONFIGS) >= 24, CONFIGS


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds_and_runs(path):
    cfg = Config.fromfile(path)
    assert cfg.get('custom_imports', {}).get('imports') == ['mmsupervit'], \
        'configs must import mmsupervit through custom_imports'
    assert str(cfg.model.backbone.type).startswith('mmsupervit.')
    _strip_pretrained(cfg.model)
    scope = cfg.get('default_scope')
    assert scope in ('mmseg', 'mmdet'), scope
    init_default_scope(scope)
    torch.manual_seed(0)
    if scope == 'mmseg':
        size = (64, 96)
        cfg.model.data_preprocessor.size = size
        if cfg.model.test_cfg.get('mode') == 'slide':
            cfg.model.test_cfg.crop_size = (64, 64)
            cfg.model.test_cfg.stride = (43, 43)
    model = MODELS.build(cfg.model)
    key = _model_key(cfg)
    if key in _STEPPED:
        return  # the same model already ran a step under another config
    _STEPPED.add(key)
    model.train()
    if scope == 'mmseg':
        data = _seg_batch(model, size, cfg.model.decode_head.num_classes)
    else:
        data = _det_batch(model, (128, 160))
    losses = model(**data, mode='loss')
    total = _total(losses)
    assert torch.isfinite(total), losses
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), \
        'no gradient reached the backbone'
    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert len(preds) == len(data['data_samples'])
    if scope == 'mmseg':
        assert preds[0].pred_sem_seg.data.shape[-2:] == size
    else:
        assert 'masks' in preds[0].pred_instances


@pytest.mark.parametrize('family', ['supervit', 'alternet', 'patchconvnet'])
def test_model_zoo_page_lists_every_config(family):
    import yaml
    folder = osp.join(REPO, 'configs', family)
    assert osp.isfile(osp.join(folder, 'README.md'))
    with open(osp.join(folder, 'metafile.yaml')) as f:
        meta = yaml.safe_load(f)
    listed = {m['Config'] for m in meta['Models']}
    on_disk = {
        osp.relpath(p, REPO)
        for p in glob.glob(osp.join(folder, '*.py'))
    }
    assert listed == on_disk
    with open(osp.join(folder, 'README.md')) as f:
        readme = f.read()
    for path in on_disk:
        assert f'({osp.basename(path)})' in readme, f'{path} not in README'
