"""Checks of one loaded sample: a bad file is named, never silently used.

What mmseg 1.2.2 and mmdet 3.3.0 do with bad data on their own (tried on the
demo data, see ``tests/test_datasets/test_bad_data.py``):

* a corrupt or truncated image: mmcv's ``LoadImageFromFile`` fails with
  ``failed to load image: <path>`` (OpenCV 4.14 and 5.0 refuse truncated JPEG
  and PNG data) -- already named, nothing to add;
* a missing image or segmentation map: ``FileNotFoundError`` naming the path;
* a truncated or corrupt segmentation map: ``OSError: image file is
  truncated`` (Pillow) without the path;
* a segmentation map of another size than its image: trained on silently
  (both are resized and cropped with the image's geometry), and fails at
  evaluation with an unrelated shape error;
* a label outside the classes (e.g. 200 in an ADE20K map): trained on until
  the loss fails (``Target 199 is out of bounds``; a device-side assert on a
  GPU), silently dropped by ``IoUMetric``;
* a polygon with an odd number of coordinates or fewer than 3 points: mmdet
  drops it and, when nothing is left, turns the object into an ignored
  region -- silently;
* a polygon that is not a list of numbers or an object without
  segmentation: ``TypeError: object of type 'float' has no len()`` (a flat
  list), ``KeyError: 'mask'`` (no segmentation), or strings taken as
  coordinates -- none names the image; a NaN coordinate made the loading
  process grow until the kernel's OOM killer ended it (20 GB RSS).

The functions here check what the loaders cannot see; the transforms in
:mod:`mmsupervit.datasets.transforms` call them on every sample.
"""
import numbers
from typing import List, Optional, Sequence

import numpy as np


class BadDataError(ValueError):
    """A sample cannot be used; the message names its file."""


def _shape(shape: Sequence[int]) -> str:
    return 'x'.join(str(int(s)) for s in shape)


def check_seg_map(seg_map: np.ndarray,
                  num_classes: int,
                  ignore_index: int = 255,
                  image_shape: Optional[Sequence[int]] = None,
                  reduce_zero_label: bool = False,
                  seg_map_path: str = '',
                  img_path: str = '') -> None:
    """Check a loaded semantic segmentation map against its image.

    Args:
        seg_map (np.ndarray): Labels after ``reduce_zero_label`` and
            ``label_map`` (what mmseg's ``LoadAnnotations`` stores).
        num_classes (int): Labels must be in ``[0, num_classes)`` or equal
            ``ignore_index``.
        ignore_index (int): The label the losses and metrics ignore.
            Defaults to 255.
        image_shape (Sequence[int], optional): ``(H, W)`` of the image as
            loaded (its ``ori_shape``). Defaults to None (not compared).
        reduce_zero_label (bool): Only used to name the values as they are
            in the file. Defaults to False.
        seg_map_path (str): Named in messages. Defaults to ''.
        img_path (str): Named in messages. Defaults to ''.

    Raises:
        BadDataError: If the map is not one label per pixel, has another
            size than the image, or holds labels outside the classes.
    """
    if seg_map.ndim != 2:
        raise BadDataError(
            f'segmentation map {seg_map_path} has shape '
            f'{tuple(seg_map.shape)}: expected one class index per pixel '
            '(a single-channel image); colour-coded maps must be converted '
            'to class indices first')
    if image_shape is not None and tuple(seg_map.shape) != tuple(
            image_shape[:2]):
        raise BadDataError(
            f'segmentation map {seg_map_path} is {_shape(seg_map.shape)} '
            f'(HxW) but its image {img_path} is {_shape(image_shape[:2])}: '
            'they must have the same size')
    outside = (seg_map >= num_classes) & (seg_map != ignore_index)
    if outside.any():
        bad = np.unique(seg_map[outside]).tolist()
        listed = ', '.join(str(v) for v in bad[:10])
        listed += ', ...' if len(bad) > 10 else ''
        msg = (f'segmentation map {seg_map_path} holds labels {listed} '
               f'({int(outside.sum())} pixels) but the dataset has '
               f'{num_classes} classes (labels 0..{num_classes - 1}, '
               f'{ignore_index} = ignore)')
        if reduce_zero_label:
            raw = ', '.join(str(v + 1) for v in bad[:10])
            msg += (f'; with reduce_zero_label=True these are the values '
                    f'{raw} in the file')
        raise BadDataError(msg)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_instances(results: dict, with_mask: bool = True) -> List[str]:
    """Check the COCO-style instances of one image before mmdet loads them.

    Args:
        results (dict): The sample as mmdet's ``CocoDataset`` produces it
            (``img_path``, ``instances`` with ``bbox``, ``bbox_label`` and,
            when the annotation has one, ``mask``).
        with_mask (bool): Whether the pipeline loads masks.
            Defaults to True.

    Returns:
        list[str]: Problems mmdet handles by dropping a polygon or ignoring
        an object (each names the image); the caller warns about them.

    Raises:
        BadDataError: For annotations mmdet would crash on without naming
            the image, or turn into a wrong mask.
    """
    problems: List[str] = []
    if not with_mask:
        return problems
    img = results.get('img_path', '<unknown image>')
    for i, instance in enumerate(results.get('instances', [])):
        where = (f'{img}: object {i} (box {instance.get("bbox")}, label '
                 f'{instance.get("bbox_label")})')
        if 'mask' not in instance:
            raise BadDataError(
                f'{where} has no segmentation (missing or empty in the '
                'annotation file) but the pipeline loads masks')
        mask = instance['mask']
        if isinstance(mask, dict):
            if not (mask.get('size') is not None
                    and isinstance(mask.get('counts'), (list, str))):
                problems.append(f'{where}: RLE mask without "counts" and '
                                '"size"; mmdet ignores this object')
            continue
        if not isinstance(mask, list):
            raise BadDataError(
                f'{where}: segmentation must be a list of polygons or an RLE '
                f'dict, got {type(mask).__name__}')
        kept = 0
        for j, polygon in enumerate(mask):
            if not isinstance(polygon, (list, tuple)):
                raise BadDataError(
                    f'{where}: polygon {j} is a {type(polygon).__name__}, '
                    'expected a list [x1, y1, x2, y2, ...] (segmentation is a '
                    'list of such lists)')
            if not all(_is_number(v) for v in polygon):
                raise BadDataError(
                    f'{where}: polygon {j} holds values that are not numbers '
                    f'({polygon[:6]}...)')
            if not np.isfinite(np.asarray(polygon, dtype=float)).all():
                raise BadDataError(
                    f'{where}: polygon {j} holds NaN or infinite coordinates')
            if len(polygon) % 2 or len(polygon) < 6:
                problems.append(
                    f'{where}: polygon {j} has {len(polygon)} coordinates '
                    '(needs an even number, at least 6); mmdet drops it')
            else:
                kept += 1
        if mask and not kept:
            problems.append(
                f'{where}: no usable polygon left; mmdet ignores this object '
                '(it becomes an ignored region, not a training target)')
    return problems


def check_image_size(results: dict) -> Optional[str]:
    """Compare the annotation's image size with the loaded image.

    Args:
        results (dict): With ``height``/``width`` from the annotation file
            and ``ori_shape`` from the image loader.

    Returns:
        str or None: A message naming the image when the sizes differ
        (boxes and polygons are in the annotation's frame, so they would
        not fit the image), else None.
    """
    height, width = results.get('height'), results.get('width')
    if height is None or width is None or 'ori_shape' not in results:
        return None
    loaded = tuple(results['ori_shape'][:2])
    if (height, width) == loaded:
        return None
    return (f'{results.get("img_path")}: the annotation file gives the image '
            f'size {height}x{width} (HxW) but the image is '
            f'{_shape(loaded)}; its boxes and masks may not fit it')
