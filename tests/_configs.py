"""What the config tests share: the list of configs, small inputs, and the
reduced-size version of a config's model (same widths, fewer blocks)."""
import copy
import glob
import os.path as osp
from typing import Dict, List

import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs')
_ALL: List[str] = sorted(
    p for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))
#: The ImageNet classification configs (mmpretrain, ``*_in1k.py``), tested
#: by ``test_configs_classification.py``.
CLS_CONFIGS: List[str] = [p for p in _ALL if p.endswith('_in1k.py')]
#: The demo classifiers (mmpretrain, on the demo object crops), tested by
#: ``test_tools/test_demo_pretrained.py`` and ``test_tools/test_run_demo.py``.
DEMO_CLS_CONFIGS: List[str] = [
    p for p in _ALL if p.endswith('_demo-crops-64x64.py')
]
#: Every mmseg/mmdet config a user runs (not the ``_base_`` fragments, not
#: the classification configs), found by globbing.
CONFIGS: List[str] = [
    p for p in _ALL if p not in CLS_CONFIGS + DEMO_CLS_CONFIGS
]
FAMILIES = ('supervit', 'alternet', 'patchconvnet')
#: The ADE20K/COCO configs of the three backbone families (not the demos).
DENSE_CONFIGS: List[str] = [
    p for p in CONFIGS if osp.basename(osp.dirname(p)) in FAMILIES
]


_LOADED: Dict[str, Config] = {}


def load_config(path: str) -> Config:
    """``Config.fromfile(path)``, parsed once per test session (mmengine reads
    hundreds of metafiles for every ``mmseg::``/``mmdet::`` base, seconds per
    config); every call returns a fresh copy the caller may change."""
    path = osp.abspath(path)
    if path not in _LOADED:
        _LOADED[path] = Config.fromfile(path)
    return copy.deepcopy(_LOADED[path])


def rel(path: str) -> str:
    """Path relative to the repository (test ids, messages)."""
    return osp.relpath(path, REPO)


def strip_pretrained(node) -> int:
    """Remove every ``Pretrained`` init_cfg in place (no download); returns
    how many were removed."""
    count = 0
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
            count += 1
        for value in node.values():
            count += strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += strip_pretrained(value)
    return count


def reduced_backbone(backbone: dict) -> dict:
    """The same backbone with few blocks: widths, strides, norms and every
    other setting unchanged (a named ``arch`` becomes ``dict(base=name,
    ...)``); an ``arch`` given as a dict (the demo configs) is kept."""
    cfg = copy.deepcopy(backbone)
    arch = cfg.get('arch')
    if isinstance(arch, dict):
        return cfg
    kind = str(cfg['type']).split('.')[-1]
    if kind in ('SuperViT', 'PatchConvNet'):
        cfg['arch'] = dict(base=arch, depth=4)
    elif kind == 'AlterNet':
        # every stage keeps its block type; stages 2-4 keep an MSA block
        cfg['arch'] = dict(
            base=arch, num_blocks=(1, 2, 2, 2), num_msa=(0, 1, 1, 1))
    else:
        raise ValueError(f'no reduced size known for {kind}')
    return cfg


def seg_data(size, num_classes) -> dict:
    """Two random images with random labels, as a dataloader gives them."""
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
    return dict(inputs=imgs, data_samples=samples)


def seg_batch(model, size, num_classes) -> dict:
    """:func:`seg_data` through the model's preprocessor."""
    return model.data_preprocessor(seg_data(size, num_classes), training=True)


def det_data(size=(128, 160)) -> dict:
    """One random image with two boxes and masks, as a dataloader gives
    them."""
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
    return dict(inputs=[img], data_samples=[s])


def det_batch(model, size=(128, 160)) -> dict:
    """:func:`det_data` through the model's preprocessor."""
    return model.data_preprocessor(det_data(size), training=True)


def small_input(cfg: Config) -> None:
    """Make an mmseg config's preprocessor and sliding window fit a 64x96
    input (in place)."""
    if cfg.default_scope != 'mmseg':
        return
    cfg.model.data_preprocessor.size = (64, 96)
    if cfg.model.test_cfg.get('mode') == 'slide':
        cfg.model.test_cfg.crop_size = (64, 64)
        cfg.model.test_cfg.stride = (43, 43)


def total_loss(losses: dict) -> torch.Tensor:
    """Sum of every ``loss*`` entry (lists summed too)."""
    total = 0.
    for key, value in losses.items():
        if 'loss' in key:
            total = total + (sum(value) if isinstance(value, list) else value)
    return total
