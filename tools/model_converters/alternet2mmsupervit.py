"""Convert an official AlterNet checkpoint to the mmsupervit layout.

    python tools/model_converters/alternet2mmsupervit.py SRC DST [--arch A]

SRC is a checkpoint written by the official ``xxxnell/how-do-vits-work``
code (``{'name', 'state_dict'[, 'optimizer']}``) or a bare state dict. DST
gets ``{'state_dict': ..., 'meta': ...}`` with the keys of
``mmsupervit.AlterNet`` (same conversion as the ``init_cfg`` load path:
:func:`mmsupervit.models.backbones.alternet.convert_alternet`). The linear
classifier is dropped; the classifier BN becomes the last output norm.

No ImageNet AlterNet weights are public; this tool is for checkpoints you
trained with the official code.

A file that is not an AlterNet checkpoint (another family, a whole
segmentor/detector, unknown keys) is refused with a message that says what
it looks like; ``--arch 50`` also checks every key and shape against that
arch. Nothing is written then.

Whole classifiers, for ImageNet classification with mmpretrain
(``configs/alternet/*_in1k.py``): ``--classifier`` writes the official
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
from typing import List, Optional

import torch

from mmsupervit.models.backbones.alternet import (
    AlterNet, convert_alternet)
from mmsupervit.models.classification import convert_classifier_file
from mmsupervit.models.utils.checkpoint import (
    CheckpointError, load_checkpoint_file, unwrap_state_dict)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official AlterNet checkpoint to mmsupervit.')
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--arch',
        choices=AlterNet.arch_names(),
        help='check every key and shape against this arch (by default only '
        'the family is checked)')
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        '--classifier',
        action='store_true',
        help='write the whole official classifier (head included) in the '
        'layout of the mmpretrain classification config '
        '(configs/%s/*_in1k.py): backbone.* + head.fc.*' % 'alternet')
    layout.add_argument(
        '--to-official',
        action='store_true',
        help='the reverse: SRC is a checkpoint of the mmpretrain '
        'classification config (e.g. work_dirs/.../epoch_*.pth); DST gets '
        'the official layout')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.classifier or args.to_official:
        print(convert_classifier_file('AlterNet', args.src, args.dst,
                                      to_official=args.to_official))
        return
    checkpoint = load_checkpoint_file(args.src)
    original = unwrap_state_dict(checkpoint)
    state_dict = convert_alternet(original)
    arch = AlterNet.check_converted_checkpoint(
        original, state_dict, repr(args.src), arch=args.arch)
    meta = dict(
        source=args.src,
        converter='alternet2mmsupervit',
        official_name=checkpoint.get('name'),
        recognised_arch=arch)
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'saved {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    try:
        main()
    except CheckpointError as err:
        sys.exit(f'error: {err}')
