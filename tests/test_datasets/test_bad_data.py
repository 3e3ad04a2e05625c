"""Bad data through the configs' own datasets and pipelines: every error, or
skipped-sample warning where mmseg/mmdet skip, names the file.

The demo configs run on freshly generated demo data with one file broken per
test; the real ADE20K and COCO configs are pointed at the same data (same
mmseg/mmdet dataset classes and transforms, real sizes and class counts).
"""
import copy
import functools
import json
import logging
import os
import os.path as osp
import re
import shutil
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmsupervit.datasets.demo_data import (DET_CLASSES, demo_cfg_options,
                                           generate_demo_data)
from mmsupervit.datasets import BadDataError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEG_DEMO = osp.join(REPO, 'configs', 'demo',
                    'supervit-tiny_upernet_1xb4-300i_demo-128x128.py')
DET_DEMO = osp.join(REPO, 'configs', 'demo',
                    'mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py')
SEG_ADE = osp.join(REPO, 'configs', 'supervit',
                   'supervit-deit-s_upernet_8xb2-160k_ade20k-512x512.py')
DET_COCO = osp.join(REPO, 'configs', 'supervit',
                    'mask-rcnn_supervit-deit-s_fpn_1x_coco.py')
SPLITS = {
    'train': dict(ade='training', prefix='ADE_train', coco='train2017'),
    'val': dict(ade='validation', prefix='ADE_val', coco='val2017'),
}


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('pristine'))
    generate_demo_data(root, num_train=4, num_val=2, seed=0)
    return root


@pytest.fixture
def data(pristine, tmp_path):
    """A private copy of the demo data that a test may break."""
    root = str(tmp_path / 'data')
    shutil.copytree(pristine, root)
    return root


def _ade_paths(root, split, index=1):
    names = SPLITS[split]
    stem = f'{names["prefix"]}_{index:08d}'
    return (osp.join(root, 'ade', 'images', names['ade'], stem + '.jpg'),
            osp.join(root, 'ade', 'annotations', names['ade'], stem + '.png'))


def _coco_image(root, split, image_id=1):
    return osp.join(root, 'coco', SPLITS[split]['coco'],
                    f'{image_id:012d}.jpg')


def _edit_coco(root, split, edit):
    path = osp.join(root, 'coco', 'annotations',
                    f'instances_{SPLITS[split]["coco"]}.json')
    with open(path) as f:
        coco = json.load(f)
    edit(coco)
    with open(path, 'w') as f:
        json.dump(coco, f)


def _anns_of_first_image(coco):
    return [a for a in coco['annotations'] if a['image_id'] == 1]


def _truncate(path, keep=0.5):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


@functools.lru_cache(maxsize=None)
def _config(path):
    return Config.fromfile(path)


def _dataset(config, root, task, split, real=False):
    """The config's dataset of ``split``, reading ``root``."""
    cfg = copy.deepcopy(_config(config))
    opts = demo_cfg_options(root, task)
    if real and task == 'det':
        # the COCO config names COCO's 80 classes; the demo json has four
        opts.update({f'{k}_dataloader.dataset.metainfo': dict(
            classes=DET_CLASSES) for k in ('train', 'val', 'test')})
    cfg.merge_from_dict(opts)
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import DATASETS
    else:
        from mmdet.registry import DATASETS
    return DATASETS.build(cfg[f'{split}_dataloader'].dataset)


def _index_of(dataset, path):
    """Index of the sample whose image is ``path`` (datasets sort files)."""
    for i in range(len(dataset)):
        if osp.samefile(dataset.get_data_info(i)['img_path'], path):
            return i
    raise AssertionError(f'{path} is not in the dataset')


@contextmanager
def _mm_warnings():
    """Collect the WARNING records of mmengine's current logger."""
    records = []

    class _Collect(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    handler = _Collect(level=logging.WARNING)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


# --------------------------------------------------------------- segmentation


@pytest.mark.parametrize('split', ['train', 'val'])
def test_clean_demo_data_loads(data, split):
    for config, task in ((SEG_DEMO, 'seg'), (DET_DEMO, 'det')):
        dataset = _dataset(config, data, task, split)
        with _mm_warnings() as warned:
            for i in range(len(dataset)):
                sample = dataset[i]
                assert sample['inputs'].shape[0] == 3
        assert not warned, warned


@pytest.mark.parametrize('split', ['train', 'val'])
@pytest.mark.parametrize('damage', ['garbage', 'truncated'])
def test_corrupt_image_named(data, split, damage):
    img, _ = _ade_paths(data, split)
    if damage == 'garbage':
        with open(img, 'wb') as f:
            f.write(np.random.default_rng(0).bytes(3000))
    else:
        _truncate(img)
    dataset = _dataset(SEG_DEMO, data, 'seg', split)
    # mmcv's LoadImageFromFile: "failed to load image: <path>"
    with pytest.raises(Exception, match=re.escape(img)):
        dataset[_index_of(dataset, img)]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_truncated_seg_map_named(data, split):
    img, seg = _ade_paths(data, split)
    _truncate(seg)
    dataset = _dataset(SEG_DEMO, data, 'seg', split)
    with pytest.raises(BadDataError,
                       match='could not load segmentation map ' +
                       re.escape(seg)):
        dataset[_index_of(dataset, img)]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_missing_seg_map_named(data, split):
    img, seg = _ade_paths(data, split)
    os.remove(seg)
    dataset = _dataset(SEG_DEMO, data, 'seg', split)
    with pytest.raises(FileNotFoundError, match=re.escape(seg)):
        dataset[_index_of(dataset, img)]


@pytest.mark.parametrize('config', [SEG_DEMO, SEG_ADE], ids=['demo', 'ade'])
@pytest.mark.parametrize('split', ['train', 'val'])
def test_seg_map_of_other_size_named(data, split, config):
    img, seg = _ade_paths(data, split)
    label = cv2.imread(seg, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(seg, cv2.resize(label, (96, 96),
                                interpolation=cv2.INTER_NEAREST))
    dataset = _dataset(config, data, 'seg', split)
    with pytest.raises(BadDataError) as info:
        dataset[_index_of(dataset, img)]
    msg = str(info.value)
    assert seg in msg and img in msg and '96x96' in msg and '128x128' in msg


@pytest.mark.parametrize('split', ['train', 'val'])
def test_colour_seg_map_named(data, split):
    img, seg = _ade_paths(data, split)
    label = cv2.imread(seg, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(seg, np.stack([label] * 3, axis=-1))
    dataset = _dataset(SEG_DEMO, data, 'seg', split)
    with pytest.raises(BadDataError, match=re.escape(seg) + '.*one class'):
        dataset[_index_of(dataset, img)]


# (config, bad file value, label after reduce_zero_label, ok file values):
# the demo data has 5 classes, ADE20K 150; both reduce the zero label.
LABEL_CASES = {
    'demo': (SEG_DEMO, 6, 5, (0, 5, 255)),
    'ade': (SEG_ADE, 151, 150, (0, 150, 255)),
}


@pytest.mark.parametrize('case', sorted(LABEL_CASES))
@pytest.mark.parametrize('split', ['train', 'val'])
def test_label_outside_classes_named(data, split, case):
    config, bad, reduced, ok = LABEL_CASES[case]
    img, seg = _ade_paths(data, split)
    original = cv2.imread(seg, cv2.IMREAD_UNCHANGED)
    # the largest valid labels and the ignore value load
    label = original.copy()
    label[:4, :4], label[4:8, :4], label[8:12, :4] = ok
    cv2.imwrite(seg, label)
    dataset = _dataset(config, data, 'seg', split)
    dataset[_index_of(dataset, img)]
    # one bad block (checked when loaded, before any crop)
    label[40:90, 40:90] = bad
    cv2.imwrite(seg, label)
    dataset = _dataset(config, data, 'seg', split)
    with pytest.raises(BadDataError) as info:
        dataset[_index_of(dataset, img)]
    msg = str(info.value)
    assert seg in msg, msg
    assert f'holds labels {reduced} ' in msg, msg
    assert f'values {bad} in the file' in msg, msg


def test_seg_errors_reach_the_dataloader(data):
    """The message survives mmengine's DataLoader (what training sees)."""
    from mmengine.runner import Runner
    img, seg = _ade_paths(data, 'train')
    _truncate(seg)
    cfg = copy.deepcopy(_config(SEG_DEMO))
    cfg.merge_from_dict(demo_cfg_options(data, 'seg'))
    init_default_scope('mmseg')
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    with pytest.raises(BadDataError, match=re.escape(seg)):
        next(iter(loader))  # batch 4 of 4 images: the first batch has it


# ------------------------------------------------------------------ detection


@pytest.mark.parametrize('config', [DET_DEMO, DET_COCO], ids=['demo', 'coco'])
@pytest.mark.parametrize('split', ['train', 'val'])
def test_missing_coco_image_named(data, split, config):
    img = _coco_image(data, split)
    os.remove(img)
    dataset = _dataset(config, data, 'det', split, real=config == DET_COCO)
    with pytest.raises(FileNotFoundError, match=re.escape(img)):
        for i in range(len(dataset)):
            dataset[i]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_truncated_coco_image_named(data, split):
    img = _coco_image(data, split)
    _truncate(img)
    dataset = _dataset(DET_DEMO, data, 'det', split)
    with pytest.raises(Exception, match=re.escape(img)):
        dataset[_index_of(dataset, img)]


def _odd_polygon(coco):
    for ann in _anns_of_first_image(coco):
        ann['segmentation'] = [ann['segmentation'][0][:-1]]


def _two_points(coco):
    for ann in _anns_of_first_image(coco):
        ann['segmentation'] = [[10.0, 10.0, 20.0, 20.0]]


@pytest.mark.parametrize('config', [DET_DEMO, DET_COCO], ids=['demo', 'coco'])
@pytest.mark.parametrize('edit', [_odd_polygon, _two_points],
                         ids=['odd', 'two-points'])
@pytest.mark.parametrize('split', ['train', 'val'])
def test_malformed_polygon_skipped_with_warning(data, split, edit, config):
    """mmdet drops such polygons (the object becomes an ignored region);
    that stays, but each image is named once in a warning."""
    _edit_coco(data, split, edit)
    img = _coco_image(data, split)
    dataset = _dataset(config, data, 'det', split, real=config == DET_COCO)
    index = _index_of(dataset, img)
    num_objects = len(dataset.get_data_info(index)['instances'])
    with _mm_warnings() as warned:
        sample = dataset[index]
        dataset[index]  # warned once per image
    samples = sample['data_samples']
    assert len(samples.gt_instances) == 0
    assert len(samples.ignored_instances) == num_objects > 0
    assert len(warned) == 2 * num_objects, warned
    assert all(w.startswith(img) for w in warned), warned
    assert sum('mmdet drops it' in w for w in warned) == num_objects
    assert sum('mmdet ignores this object' in w for w in warned) == \
        num_objects


@pytest.mark.parametrize('edit, expected', [
    (lambda a: a.update(segmentation=a['segmentation'][0]),
     'polygon 0 is a float'),
    (lambda a: a.update(segmentation=[[str(v) for v in
                                        a['segmentation'][0]]]),
     'not numbers'),
    (lambda a: a['segmentation'][0].__setitem__(2, float('nan')),
     'NaN or infinite'),
    (lambda a: a.update(segmentation=[]), 'has no segmentation'),
], ids=['flat-list', 'strings', 'nan', 'empty'])
@pytest.mark.parametrize('split', ['train', 'val'])
def test_unusable_polygon_named(data, split, edit, expected):
    """mmdet alone fails without the image (TypeError, KeyError 'mask') or
    builds a mask from garbage (strings, NaN)."""

    def apply(coco):
        edit(_anns_of_first_image(coco)[0])

    _edit_coco(data, split, apply)
    img = _coco_image(data, split)
    dataset = _dataset(DET_DEMO, data, 'det', split)
    with pytest.raises(BadDataError,
                       match=re.escape(img) + ': object 0 .*' + expected):
        dataset[_index_of(dataset, img)]


def test_image_size_differs_from_annotation_warned(data):
    def wider(coco):
        coco['images'][0]['width'] = 200

    _edit_coco(data, 'train', wider)
    img = _coco_image(data, 'train')
    dataset = _dataset(DET_DEMO, data, 'det', 'train')
    with _mm_warnings() as warned:
        dataset[_index_of(dataset, img)]
    assert len(warned) == 1, warned
    assert warned[0].startswith(img) and '128x200' in warned[0] and \
        'is 128x128' in warned[0]


def test_seg_loader_passes_inference_inputs():
    """mmseg's MMSegInferencer drops only 'LoadAnnotations' from the test
    pipeline; ours must let an input without a map through."""
    from mmsupervit.datasets.transforms import LoadSegAnnotations
    results = dict(img=np.zeros((8, 8, 3), np.uint8), img_path=None)
    assert LoadSegAnnotations(num_classes=5)(dict(results)) == results
