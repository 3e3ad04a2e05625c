"""Convert an official SuperViT checkpoint to an mmsupervit checkpoint.

    python tools/model_converters/supervit2mmsupervit.py SRC DST [--arch A]

SRC is an official file as published (``{'model': ...}`` from
``main_deit.py`` or timm's ``{'state_dict', 'state_dict_ema', ...}`` from
``main_lvvit.py``; the EMA weights are preferred), or a plain ImageNet DeiT
(timm ``deit_small_patch16_224``) or LV-ViT (``lvvit_s``) checkpoint, whose
single ``pos_embed`` is resampled into the four trained-size tables. DST gets
``{'state_dict': ..., 'meta': ...}`` with the backbone's keys (classification
heads dropped), which ``init_cfg=dict(type='Pretrained', checkpoint=DST)``
loads. The conversion is :func:`mmsupervit.models.backbones.supervit.
convert_supervit`, the same function the load hook uses.

A file that is not a SuperViT checkpoint (another family, a whole
segmentor/detector, unknown keys) is refused with a message that says what
it looks like; ``--arch deit-s`` also checks every key and shape against
that arch. Nothing is written then.

Whole classifiers, for ImageNet classification with mmpretrain
(``configs/supervit/*_in1k.py``): ``--classifier`` writes the official
classifier, head included, in the layout of those configs (``backbone.*`` +
``head.fc.*``; ``tools/test.py CONFIG DST`` evaluates it), and
``--to-official`` turns a checkpoint such a config wrote (``work_dirs/.../
epoch_*.pth``) back into the official layout
(:func:`mmsupervit.models.classification.convert_classifier_file`).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

import torch

import mmsupervit  # noqa: F401  (allow-lists argparse.Namespace)
from mmsupervit.models.backbones.supervit import (
    SuperViT, convert_supervit)
from mmsupervit.models.classification import convert_classifier_file
from mmsupervit.models.utils.checkpoint import (
    CheckpointError, load_checkpoint_file, unwrap_state_dict)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--arch',
        choices=SuperViT.arch_names(),
        help='check every key and shape against this arch (by default only '
        'the family is checked)')
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        '--classifier',
        action='store_true',
        help='write the whole official classifier (head included) in the '
        'layout of the mmpretrain classification config '
        '(configs/%s/*_in1k.py): backbone.* + head.fc.*' % 'supervit')
    layout.add_argument(
        '--to-official',
        action='store_true',
        help='the reverse: SRC is a checkpoint of the mmpretrain '
        'classification config (e.g. work_dirs/.../epoch_*.pth); DST gets '
        'the official layout')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.classifier or args.to_official:
        print(convert_classifier_file('SuperViT', args.src, args.dst,
                                      to_official=args.to_official))
        return
    checkpoint = load_checkpoint_file(args.src)
    original = unwrap_state_dict(checkpoint)
    state_dict = convert_supervit(original)
    arch = SuperViT.check_converted_checkpoint(
        original, state_dict, repr(args.src), arch=args.arch)
    meta = dict(
        source=args.src,
        converter='supervit2mmsupervit',
        mmsupervit_version=mmsupervit.__version__,
        recognised_arch=arch)
    for key in ('epoch', 'arch'):
        if key in checkpoint and isinstance(checkpoint[key], (int, str)):
            meta[key] = checkpoint[key]
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'saved {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    try:
        main()
    except CheckpointError as err:
        sys.exit(f'error: {err}')
