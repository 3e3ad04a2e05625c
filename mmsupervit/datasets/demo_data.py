"""A tiny, seeded synthetic dataset in the ADE20K and COCO layouts.

The demo configs (``configs/demo/``) train on it in minutes on a CPU. Every
image shows a few coloured shapes (circle, square, triangle, star) of varied
sizes and rotations, partly occluding each other, on a textured background
(noise, gradients, stripes or checkers). The same scenes are written twice:

* ADE20K layout (mmseg ``BaseSegDataset`` with ADE20K conventions)::

    <out>/ade/images/{training,validation}/ADE_{train,val}_%08d.jpg
    <out>/ade/annotations/{training,validation}/ADE_{train,val}_%08d.png

  Label 0 is "other" (ignored through ``reduce_zero_label=True``, exactly as
  in ADE20K): a thin band on every object boundary, where a label would be
  ambiguous after JPEG compression. 1 is the background, 2.. are the shapes,
  so after the reduction the classes are :data:`SEG_CLASSES`.

* COCO instances (mmdet ``CocoDataset``)::

    <out>/coco/{train2017,val2017}/%012d.jpg
    <out>/coco/annotations/instances_{train,val}2017.json

  One annotation per visible object: polygons of the visible part (after
  occlusion), its pixel area, ``[x, y, w, h]`` box and ``iscrowd=0``;
  categories :data:`DET_CLASSES` with ids 1.. .

* Object crops for classification (mmpretrain ``CustomDataset``, ImageNet
  style: class folders and a ``meta/<split>.txt`` list of
  ``<class>/<file> <label>`` lines, labels in :data:`DET_CLASSES` order)::

    <out>/cls/{train,val}/<class>/%012d_%02d.jpg
    <out>/cls/meta/{train,val}.txt

  One square crop per COCO annotation around its box (with context), resized
  to a fixed side; written from the COCO images and annotations above, so
  the crops of the validation split come from validation images only.

Each image is drawn from its own random stream derived from
``(seed, split, index)``, so the output is byte-identical for a given seed
(and the first N images do not depend on how many are generated).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

DET_CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star')
SEG_CLASSES: Tuple[str, ...] = ('background', ) + DET_CLASSES
# Palettes for visualisation (RGB), one per class.
DET_PALETTE: List[Tuple[int, int, int]] = [(220, 20, 60), (0, 160, 60),
                                           (30, 80, 230), (230, 190, 0)]
SEG_PALETTE: List[Tuple[int, int, int]] = [(120, 120, 120)] + DET_PALETTE

# Each shape class has a typical hue (OpenCV HSV, 0-179; red, yellow-green,
# cyan, violet: evenly spaced) that is jittered, so
# colour is a strong cue but not the only one. With ``class_colours=False``
# every hue is drawn uniformly and only the shape tells the class.
_CLASS_HUE = (0, 45, 90, 135)
_HUE_JITTER = 12
_SPLITS = {
    'train': dict(ade='training', ade_prefix='ADE_train', coco='train2017'),
    'val': dict(ade='validation', ade_prefix='ADE_val', coco='val2017'),
}
_IGNORE_BAND = 1  # pixels of label 0 ("other") on each object boundary
#: Side of the classification crops, in pixels.
CROP_SIZE = 64
# context around an object's box: the crop side is this times the longer box
# side, so the shape's outline and some background are always visible
_CROP_CONTEXT = 1.3
# objects with fewer visible pixels are left out of the classification set
# (a sliver left by occlusion says little about the shape)
_MIN_CROP_AREA = 60


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    split_id = sorted(_SPLITS).index(split)
    return np.random.default_rng([seed, split_id, index])


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A desaturated textured background, float32 RGB in [0, 255]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(40, 200, 3)
    other = np.clip(base + rng.uniform(-70, 70, 3), 0, 255)
    kind = rng.integers(4)
    if kind == 0:  # smooth noise
        coarse = rng.uniform(0, 1, (size // 16, size // 16)).astype(np.float32)
        t = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    elif kind == 1:  # linear gradient in a random direction
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 2:  # stripes
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(0.05, 0.25)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (np.sin(2 * np.pi * t / period) > 0).astype(np.float32)
    else:  # checkers
        cells = int(rng.integers(3, 9))
        t = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2).astype(
            np.float32)
    t = np.clip(t, 0, 1)[..., None]
    img = base * (1 - t) + other * t
    # desaturate towards grey so the shapes stand out by colour
    grey = img.mean(axis=2, keepdims=True)
    img = grey + 0.35 * (img - grey)
    return img.astype(np.float32)


def _shape_mask(cls: int, cx: float, cy: float, r: float, angle: float,
                size: int) -> np.ndarray:
    """Binary mask (uint8 0/1) of one shape."""
    mask = np.zeros((size, size), np.uint8)
    name = DET_CLASSES[cls]
    if name == 'circle':
        cv2.circle(mask, (int(round(cx)), int(round(cy))), int(round(r)), 1,
                   thickness=-1)
        return mask
    if name == 'square':
        k = np.arange(4)
        radii = np.full(4, r * 1.05)
        angles = angle + np.pi / 4 + k * np.pi / 2
    elif name == 'triangle':
        k = np.arange(3)
        radii = np.full(3, r * 1.2)
        angles = angle + k * 2 * np.pi / 3
    else:  # star: 5 points, inner radius half the outer one
        k = np.arange(10)
        radii = np.where(k % 2 == 0, r * 1.3, r * 0.65)
        angles = angle + k * np.pi / 5
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)],
                   axis=1)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask


def _object_colour(rng: np.random.Generator, cls: int,
                   class_colours: bool = True) -> np.ndarray:
    if class_colours:
        hue = (_CLASS_HUE[cls] +
               rng.integers(-_HUE_JITTER, _HUE_JITTER + 1)) % 180
    else:
        hue = rng.integers(180)
    hsv = np.array([[[hue, rng.integers(150, 256),
                      rng.integers(140, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def make_scene(rng: np.random.Generator,
               size: int = 128,
               max_objects: int = 4,
               min_visible: float = 0.4,
               class_colours: bool = True
               ) -> Tuple[np.ndarray, np.ndarray, List[Dict]]:
    """Draw one scene.

    Args:
        rng (np.random.Generator): The random stream of this image.
        size (int): Image height and width. Defaults to 128.
        max_objects (int): At most this many shapes. Defaults to 4.
        min_visible (float): A new shape is rejected when it would leave an
            earlier one with less than this fraction visible.
            Defaults to 0.4.
        class_colours (bool): Each class in its own hue band (True) or any
            hue (False). Defaults to True.

    Returns:
        tuple: ``(image, label, objects)``: RGB uint8 image, ADE-style uint8
        label map (0 other, 1 background, 2.. shapes) and one dict per
        object with ``category`` (0-based shape index) and ``mask`` (its
        visible part).
    """
    img = _background(rng, size)
    num = int(rng.integers(1, max_objects + 1))
    objects: List[Dict] = []
    visible: List[np.ndarray] = []
    for _ in range(num):
        for _attempt in range(10):
            cls = int(rng.integers(len(DET_CLASSES)))
            r = float(rng.uniform(0.07, 0.24) * size)
            cx, cy = rng.uniform(0.1 * size, 0.9 * size, 2)
            mask = _shape_mask(cls, cx, cy, r, rng.uniform(0, 2 * np.pi),
                               size)
            if mask.sum() < 30:
                continue
            ok = all((v & (1 - mask)).sum() >= min_visible * o['area_full']
                     for v, o in zip(visible, objects))
            if ok:
                break
        else:
            continue
        visible = [v & (1 - mask) for v in visible]
        visible.append(mask.copy())
        objects.append(dict(category=cls, area_full=int(mask.sum())))
        colour = _object_colour(rng, cls, class_colours)
        texture = rng.normal(0, 10, (size, size, 1)).astype(np.float32)
        shade = 1 + 0.25 * np.linspace(-1, 1, size, dtype=np.float32)[:, None,
                                                                       None]
        m = mask[..., None].astype(bool)
        img = np.where(m, colour * shade + texture, img)
    img = img + rng.normal(0, 4, img.shape).astype(np.float32)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)

    label = np.ones((size, size), np.uint8)
    kernel = np.ones((2 * _IGNORE_BAND + 1, ) * 2, np.uint8)
    for obj, vis in zip(objects, visible):
        obj['mask'] = vis
        label[vis.astype(bool)] = obj['category'] + 2
    # boundary band -> 0 ("other"), as ADE20K leaves ambiguous pixels
    edges = cv2.morphologyEx(label, cv2.MORPH_GRADIENT, kernel) > 0
    label[edges] = 0
    objects = [o for o in objects if o['mask'].sum() > 0]
    return img, label, objects


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """COCO polygons (flat ``[x1, y1, x2, y2, ...]``) of a binary mask.

    Vertices are placed on pixel centres (``+0.5``), so the polygon area is
    the mask area minus about half a pixel along the boundary.
    """
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) < 3:
            continue
        polys.append([round(float(v) + 0.5, 2) for v in c.reshape(-1)])
    return polys


def _write_jpg(path: str, img_rgb: np.ndarray) -> None:
    ok = cv2.imwrite(path, cv2.cvtColor(img_rgb, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OSError(f'could not write {path}')


def generate_split(out_dir: str,
                   split: str,
                   num_images: int,
                   seed: int = 0,
                   size: int = 128,
                   class_colours: bool = True) -> Dict:
    """Write one split in both layouts.

    Args:
        out_dir (str): Dataset root (``ade/`` and ``coco/`` go below it).
        split (str): ``'train'`` or ``'val'``.
        num_images (int): How many images.
        seed (int): Base seed. Defaults to 0.
        size (int): Image side in pixels. Defaults to 128.
        class_colours (bool): Each class in its own hue band (True) or
            every hue at random (False). Defaults to True.

    Returns:
        dict: The COCO annotation dict that was written.
    """
    if split not in _SPLITS:
        raise ValueError(f'split must be one of {sorted(_SPLITS)}: {split!r}')
    names = _SPLITS[split]
    ade_img = osp.join(out_dir, 'ade', 'images', names['ade'])
    ade_ann = osp.join(out_dir, 'ade', 'annotations', names['ade'])
    coco_img = osp.join(out_dir, 'coco', names['coco'])
    coco_ann = osp.join(out_dir, 'coco', 'annotations')
    for d in (ade_img, ade_ann, coco_img, coco_ann):
        os.makedirs(d, exist_ok=True)

    images, annotations = [], []
    for i in range(num_images):
        img, label, objects = make_scene(
            _rng(seed, split, i), size=size, class_colours=class_colours)
        stem = f'{names["ade_prefix"]}_{i + 1:08d}'
        _write_jpg(osp.join(ade_img, stem + '.jpg'), img)
        cv2.imwrite(osp.join(ade_ann, stem + '.png'), label)
        image_id = i + 1
        file_name = f'{image_id:012d}.jpg'
        _write_jpg(osp.join(coco_img, file_name), img)
        images.append(
            dict(id=image_id, file_name=file_name, height=size, width=size))
        for obj in objects:
            polys = mask_to_polygons(obj['mask'])
            if not polys:
                continue
            ys, xs = np.nonzero(obj['mask'])
            x0, y0 = int(xs.min()), int(ys.min())
            bbox = [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=obj['category'] + 1,
                    segmentation=polys,
                    area=float(obj['mask'].sum()),
                    bbox=[float(v) for v in bbox],
                    iscrowd=0))
    coco = dict(
        info=dict(
            description='mmsupervit synthetic demo data',
            version='1.0',
            seed=seed),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[
            dict(id=k + 1, name=name, supercategory='shape')
            for k, name in enumerate(DET_CLASSES)
        ])
    with open(osp.join(coco_ann, f'instances_{names["coco"]}.json'),
              'w') as f:
        json.dump(coco, f, separators=(',', ':'))
    return coco


def write_classification_split(out_dir: str,
                               split: str,
                               size: int = CROP_SIZE) -> List[str]:
    """Write the object crops of one split (see the module docstring).

    Reads the COCO layout that :func:`generate_split` wrote under
    ``out_dir``. Each crop is the square of side ``1.3 x`` the longer box
    side centred on the box (shifted to stay inside the image when it can,
    else zero-padded), resized to ``size x size``.

    Args:
        out_dir (str): Dataset root holding ``coco/``.
        split (str): ``'train'`` or ``'val'``.
        size (int): Crop side in pixels. Defaults to :data:`CROP_SIZE`.

    Returns:
        list[str]: The lines of ``cls/meta/<split>.txt``
        (``<class>/<file> <label>``).
    """
    if split not in _SPLITS:
        raise ValueError(f'split must be one of {sorted(_SPLITS)}: {split!r}')
    coco_dir = osp.join(out_dir, 'coco')
    ann_file = osp.join(coco_dir, 'annotations',
                        f'instances_{_SPLITS[split]["coco"]}.json')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(
            f'{ann_file} is missing: write the COCO layout first '
            '(generate_split)')
    with open(ann_file) as f:
        coco = json.load(f)
    images = {im['id']: im for im in coco['images']}
    cls_dir = osp.join(out_dir, 'cls')
    for name in DET_CLASSES:
        os.makedirs(osp.join(cls_dir, split, name), exist_ok=True)
    os.makedirs(osp.join(cls_dir, 'meta'), exist_ok=True)
    lines, count, loaded = [], {}, {}
    for ann in coco['annotations']:
        if ann['area'] < _MIN_CROP_AREA:
            continue
        info = images[ann['image_id']]
        if info['id'] not in loaded:
            loaded.clear()  # annotations are grouped by image
            path = osp.join(coco_dir, _SPLITS[split]['coco'],
                            info['file_name'])
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise OSError(f'could not read {path}')
            loaded[info['id']] = img
        img = loaded[info['id']]
        x, y, w, h = ann['bbox']
        side = max(int(round(_CROP_CONTEXT * max(w, h))), 8)
        H, W = img.shape[:2]
        # centred on the box, shifted inside the image where it fits
        x0 = int(round(x + w / 2 - side / 2))
        y0 = int(round(y + h / 2 - side / 2))
        x0 = min(max(x0, 0), max(W - side, 0))
        y0 = min(max(y0, 0), max(H - side, 0))
        crop = np.zeros((side, side, 3), np.uint8)
        patch = img[y0:y0 + side, x0:x0 + side]
        crop[:patch.shape[0], :patch.shape[1]] = patch
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA
                          if side > size else cv2.INTER_LINEAR)
        label = ann['category_id'] - 1
        name = DET_CLASSES[label]
        k = count[info['id']] = count.get(info['id'], -1) + 1
        rel = f'{name}/{info["id"]:012d}_{k:02d}.jpg'
        if not cv2.imwrite(osp.join(cls_dir, split, rel), crop,
                           [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f'could not write {rel} under {cls_dir}/{split}')
        lines.append(f'{rel} {label}')
    with open(osp.join(cls_dir, 'meta', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return lines


def generate_demo_data(out_dir: str,
                       num_train: int = 200,
                       num_val: int = 40,
                       seed: int = 0,
                       size: int = 128,
                       class_colours: bool = True) -> str:
    """Write the whole demo dataset; see the module docstring for the layout.

    Args:
        out_dir (str): Dataset root.
        num_train (int): Training images. Defaults to 200.
        num_val (int): Validation images. Defaults to 40.
        seed (int): Base seed. Defaults to 0.
        size (int): Image side in pixels. Defaults to 128.
        class_colours (bool): See :func:`generate_split`. Defaults to True.

    Returns:
        str: ``out_dir``.
    """
    for split, num in (('train', num_train), ('val', num_val)):
        generate_split(out_dir, split, num, seed, size, class_colours)
        write_classification_split(out_dir, split)
    with open(osp.join(out_dir, 'README.txt'), 'w') as f:
        f.write('Synthetic demo data written by mmsupervit '
                f'(seed={seed}, train={num_train}, val={num_val}, '
                f'size={size}, class_colours={class_colours}). '
                'Regenerate with\n  python tools/'
                'dataset_converters/make_demo_data.py --out <dir>\n')
    return out_dir


def demo_data_exists(out_dir: str) -> bool:
    """Whether all three layouts and both splits are present under
    ``out_dir``."""
    need = [
        osp.join(out_dir, 'ade', 'images', 'training'),
        osp.join(out_dir, 'ade', 'annotations', 'validation'),
        osp.join(out_dir, 'coco', 'annotations', 'instances_train2017.json'),
        osp.join(out_dir, 'coco', 'annotations', 'instances_val2017.json'),
        osp.join(out_dir, 'cls', 'meta', 'train.txt'),
        osp.join(out_dir, 'cls', 'meta', 'val.txt'),
    ]
    return all(osp.exists(p) for p in need)


def demo_cfg_options(data_root: str, task: str) -> Dict[str, str]:
    """``--cfg-options`` that point a demo config at another data root.

    Config variables such as ``data_root`` are resolved when the config is
    read, so every place that uses the root is overridden explicitly.

    Args:
        data_root (str): The generator's output folder (holding ``ade/`` and
            ``coco/``).
        task (str): ``'seg'``, ``'det'`` or ``'cls'`` (the object crops).

    Returns:
        dict: Keys and values for ``Config.merge_from_dict``.
    """
    data_root = osp.abspath(data_root)
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    if task == 'seg':
        return {f'{k}.dataset.data_root': osp.join(data_root, 'ade')
                for k in loaders}
    if task == 'det':
        root = osp.join(data_root, 'coco') + os.sep
        opts = {f'{k}.dataset.data_root': root for k in loaders}
        ann = osp.join(root, 'annotations', 'instances_val2017.json')
        opts.update({'val_evaluator.ann_file': ann,
                     'test_evaluator.ann_file': ann})
        return opts
    if task == 'cls':
        return {f'{k}.dataset.data_root': osp.join(data_root, 'cls')
                for k in loaders}
    raise ValueError(f'task must be seg, det or cls, got {task!r}')


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line entry point (``tools/dataset_converters/...``)."""
    import argparse
    parser = argparse.ArgumentParser(
        description='Write the synthetic demo dataset (ADE20K and COCO '
        'layouts, object crops for classification).')
    parser.add_argument('--out', default='data/demo', help='dataset root')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--size', type=int, default=128,
                        help='image side in pixels')
    parser.add_argument('--random-colours', action='store_true',
                        help='draw every object\'s hue at random, so only '
                        'the shape tells the class (default: each class '
                        'has its own hue band)')
    args = parser.parse_args(argv)
    generate_demo_data(args.out, args.num_train, args.num_val, args.seed,
                       args.size, class_colours=not args.random_colours)
    print(f'demo data written to {args.out} ({args.num_train} train / '
          f'{args.num_val} val images, {args.size}x{args.size}, '
          f'seed {args.seed})')
