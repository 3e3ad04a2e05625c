"""The synthetic demo data: deterministic, valid COCO, valid ADE20K layout."""
import filecmp
import glob
import json
import os.path as osp

import numpy as np
import pytest

from mmsupervit.datasets.demo_data import (DET_CLASSES, SEG_CLASSES,
                                           demo_data_exists,
                                           generate_demo_data)

NUM_TRAIN, NUM_VAL = 6, 3


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    generate_demo_data(root, NUM_TRAIN, NUM_VAL, seed=3, size=96)
    return root


def _files(root):
    return sorted(
        osp.relpath(p, root)
        for p in glob.glob(osp.join(root, '**', '*.*'), recursive=True))


def test_same_seed_same_bytes(demo_root, tmp_path):
    again = str(tmp_path / 'again')
    generate_demo_data(again, NUM_TRAIN, NUM_VAL, seed=3, size=96)
    files = _files(demo_root)
    assert files == _files(again)
    for rel in files:
        assert filecmp.cmp(
            osp.join(demo_root, rel), osp.join(again, rel), shallow=False), rel


def test_other_seed_other_data_and_prefix_stable(demo_root, tmp_path):
    other = str(tmp_path / 'other')
    generate_demo_data(other, NUM_TRAIN, NUM_VAL, seed=4, size=96)
    rel = 'ade/images/training/ADE_train_00000001.jpg'
    assert not filecmp.cmp(osp.join(demo_root, rel), osp.join(other, rel),
                           shallow=False)
    # the first images do not depend on how many are generated
    fewer = str(tmp_path / 'fewer')
    generate_demo_data(fewer, 2, 1, seed=3, size=96)
    assert filecmp.cmp(osp.join(demo_root, rel), osp.join(fewer, rel),
                       shallow=False)


def test_ade20k_layout_and_labels(demo_root):
    import mmcv
    assert demo_data_exists(demo_root)
    for split, prefix, num in (('training', 'ADE_train', NUM_TRAIN),
                               ('validation', 'ADE_val', NUM_VAL)):
        imgs = sorted(glob.glob(
            osp.join(demo_root, 'ade', 'images', split, '*.jpg')))
        anns = sorted(glob.glob(
            osp.join(demo_root, 'ade', 'annotations', split, '*.png')))
        assert len(imgs) == len(anns) == num
        for img_path, ann_path in zip(imgs, anns):
            stem = osp.splitext(osp.basename(img_path))[0]
            assert stem.startswith(prefix + '_')
            assert osp.splitext(osp.basename(ann_path))[0] == stem
            img = mmcv.imread(img_path)
            label = mmcv.imread(ann_path, flag='unchanged')
            assert img.shape == (96, 96, 3)
            assert label.shape == (96, 96) and label.dtype == np.uint8
            # 0 = other (ignored by reduce_zero_label), 1..K = SEG_CLASSES
            assert label.max() <= len(SEG_CLASSES)
            assert (label == 1).any()  # background present
            assert (label == 0).mean() < 0.3


def test_mmseg_dataset_and_reduce_zero_label(demo_root):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    ds = DATASETS.build(
        dict(
            type='BaseSegDataset',
            data_root=osp.join(demo_root, 'ade'),
            metainfo=dict(classes=SEG_CLASSES),
            img_suffix='.jpg',
            seg_map_suffix='.png',
            reduce_zero_label=True,
            data_prefix=dict(
                img_path='images/validation',
                seg_map_path='annotations/validation'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert len(ds) == NUM_VAL
    seg = ds[0]['data_samples'].gt_sem_seg.data
    values = set(seg.unique().tolist())
    assert values <= set(range(len(SEG_CLASSES))) | {255}
    assert 255 in values and 0 in values


def test_coco_json_valid_and_masks_match(demo_root):
    from pycocotools.coco import COCO
    for split, num in (('train2017', NUM_TRAIN), ('val2017', NUM_VAL)):
        path = osp.join(demo_root, 'coco', 'annotations',
                        f'instances_{split}.json')
        coco = COCO(path)
        assert len(coco.getImgIds()) == num
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
            DET_CLASSES)
        anns = coco.loadAnns(coco.getAnnIds())
        assert len(anns) >= num
        ade_split = 'training' if split == 'train2017' else 'validation'
        prefix = 'ADE_train' if split == 'train2017' else 'ADE_val'
        for ann in anns:
            img = coco.loadImgs(ann['image_id'])[0]
            assert osp.isfile(
                osp.join(demo_root, 'coco', split, img['file_name']))
            assert ann['iscrowd'] == 0 and ann['segmentation']
            mask = coco.annToMask(ann)
            # polygons reproduce the object's area (up to the boundary)
            assert abs(mask.sum() - ann['area']) <= 0.25 * ann['area'] + 4
            x, y, w, h = ann['bbox']
            ys, xs = np.nonzero(mask)
            assert xs.min() >= x - 1 and xs.max() <= x + w
            assert ys.min() >= y - 1 and ys.max() <= y + h
            # ... and lie on pixels labelled with the same class in ADE
            import mmcv
            label = mmcv.imread(
                osp.join(demo_root, 'ade', 'annotations', ade_split,
                         f'{prefix}_{ann["image_id"]:08d}.png'),
                flag='unchanged')
            inside = label[mask.astype(bool)]
            inside = inside[inside != 0]
            assert (inside == ann['category_id'] + 1).mean() > 0.95


def test_cli(tmp_path):
    import subprocess
    import sys
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    out = str(tmp_path / 'cli')
    subprocess.run([
        sys.executable,
        osp.join(repo, 'tools', 'dataset_converters', 'make_demo_data.py'),
        '--out', out, '--num-train', '2', '--num-val', '1', '--seed', '0'
    ], check=True, capture_output=True)
    assert demo_data_exists(out)
    with open(osp.join(out, 'coco', 'annotations',
                       'instances_val2017.json')) as f:
        assert len(json.load(f)['images']) == 1


def test_classification_crops(demo_root):
    """One crop per large enough object, labelled by its COCO category: the
    class's hue is the most common of the four class hues in the crop, and
    mmpretrain's CustomDataset reads the lists with those labels."""
    import cv2
    from mmsupervit.datasets import demo_data
    own_hue_wins = []
    for split, coco_split in (('train', 'train2017'), ('val', 'val2017')):
        with open(osp.join(demo_root, 'coco', 'annotations',
                           f'instances_{coco_split}.json')) as f:
            anns = json.load(f)['annotations']
        expected = sorted(a['category_id'] - 1 for a in anns
                          if a['area'] >= demo_data._MIN_CROP_AREA)
        with open(osp.join(demo_root, 'cls', 'meta', f'{split}.txt')) as f:
            lines = f.read().split('\n')
        assert lines[-1] == ''
        entries = [line.rsplit(' ', 1) for line in lines[:-1]]
        assert sorted(int(label) for _, label in entries) == expected
        for rel, label in entries:
            assert rel.split('/')[0] == DET_CLASSES[int(label)]
            img = cv2.imread(osp.join(demo_root, 'cls', split, rel))
            assert img.shape == (demo_data.CROP_SIZE, demo_data.CROP_SIZE, 3)
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).reshape(-1, 3)
            coloured = hsv[hsv[:, 1] > 120, 0].astype(int)
            votes = [np.sum(np.minimum(abs(coloured - h),
                                       180 - abs(coloured - h)) <= 20)
                     for h in demo_data._CLASS_HUE]
            own_hue_wins.append(int(np.argmax(votes)) == int(label))
    assert np.mean(own_hue_wins) > 0.9, np.mean(own_hue_wins)

    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS
    init_default_scope('mmpretrain')
    ds = DATASETS.build(
        dict(type='CustomDataset', data_root=osp.join(demo_root, 'cls'),
             ann_file='meta/val.txt', data_prefix='val',
             metainfo=dict(classes=DET_CLASSES),
             pipeline=[dict(type='LoadImageFromFile'),
                       dict(type='PackInputs')]))
    assert len(ds) == len(entries)
    sample = ds[0]
    assert osp.basename(osp.dirname(sample['data_samples'].img_path)) == \
        DET_CLASSES[int(sample['data_samples'].gt_label)]


def _own_hue_share(root):
    """Share of the objects whose most common hue is their class's."""
    import cv2
    from mmsupervit.datasets import demo_data
    with open(osp.join(root, 'coco', 'annotations',
                       'instances_train2017.json')) as f:
        coco = json.load(f)
    wins = []
    for ann in coco['annotations']:
        img = cv2.imread(osp.join(root, 'coco', 'train2017',
                                  f'{ann["image_id"]:012d}.jpg'))
        x, y, w, h = map(int, ann['bbox'])
        hsv = cv2.cvtColor(img[y:y + h, x:x + w], cv2.COLOR_BGR2HSV)
        hue = hsv[..., 0][hsv[..., 1] > 120].astype(int)
        if hue.size < 20:
            continue
        votes = [np.sum(np.minimum(abs(hue - c), 180 - abs(hue - c)) <= 20)
                 for c in demo_data._CLASS_HUE]
        wins.append(int(np.argmax(votes)) == ann['category_id'] - 1)
    return np.mean(wins), len(wins)


def test_random_colours_keep_the_scenes(demo_root, tmp_path):
    """--random-colours draws the hues at random and nothing else: the
    same shapes at the same places (label maps equal), the colours no
    longer tell the class."""
    import cv2
    other = str(tmp_path / 'random')
    generate_demo_data(other, 30, NUM_VAL, seed=3, size=96,
                       class_colours=False)
    same = str(tmp_path / 'same')
    generate_demo_data(same, 30, NUM_VAL, seed=3, size=96)
    for name in sorted(glob.glob(osp.join(same, 'ade', 'annotations',
                                          '*', '*.png'))):
        rel = osp.relpath(name, same)
        np.testing.assert_array_equal(cv2.imread(name),
                                      cv2.imread(osp.join(other, rel)))
    share, n = _own_hue_share(same)
    assert n > 40 and share > 0.9, (share, n)
    share, n = _own_hue_share(other)
    assert n > 40 and share < 0.5, (share, n)
