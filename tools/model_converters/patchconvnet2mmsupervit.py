"""Convert an official PatchConvNet checkpoint to the mmsupervit layout.

    python tools/model_converters/patchconvnet2mmsupervit.py SRC DST \
        [--with-attn-pool] [--arch A]

SRC is a checkpoint of ``facebookresearch/deit`` (``patchconvnet_models.py``;
deit's ``main.py`` writes ``{'model': ..., 'optimizer': ..., ...}``), a
``{'state_dict': ...}`` file or a bare state dict; a local path or a URL such
as ``https://dl.fbaipublicfiles.com/deit/s60_224_1k.pth``. DST receives
``{'state_dict': ..., 'meta': ...}`` with the keys of
``mmsupervit.PatchConvNet``, converted by the same function the ``init_cfg``
load path uses (:func:`mmsupervit.models.backbones.patchconvnet.
convert_patchconvnet`). The classification head is always dropped; the
official final norm is kept as ``norm.*`` (the default backbone applies it to
its output); the class-attention pooling block is kept only with
``--with-attn-pool`` (for a backbone built with ``with_attn_pool=True``).
The result loads strictly into the default backbone; the ``init_cfg`` path
also fits it to ``multi_depth=True`` backbones (it drops ``norm.*`` there).

A file that is not a PatchConvNet checkpoint (another family, a whole
segmentor/detector, unknown keys) is refused with a message that says what
it looks like; ``--arch s60`` also checks every key and shape against that
arch. Nothing is written then.

Whole classifiers, for ImageNet classification with mmpretrain
(``configs/patchconvnet/*_in1k.py``): ``--classifier`` writes the official
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

from mmsupervit.models.backbones.patchconvnet import (
    PatchConvNet, convert_patchconvnet)
from mmsupervit.models.classification import convert_classifier_file
from mmsupervit.models.utils.checkpoint import (
    CheckpointError, load_checkpoint_file, unwrap_state_dict)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official PatchConvNet checkpoint to '
        'mmsupervit.')
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--with-attn-pool',
        action='store_true',
        help='keep the class-attention pooling block (cls_token, '
        'blocks_token_only) as attn_pool.*')
    parser.add_argument(
        '--arch',
        choices=PatchConvNet.arch_names(),
        help='check every key and shape against this arch (by default only '
        'the family is checked)')
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument(
        '--classifier',
        action='store_true',
        help='write the whole official classifier (head included) in the '
        'layout of the mmpretrain classification config '
        '(configs/%s/*_in1k.py): backbone.* + head.fc.*' % 'patchconvnet')
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
        print(convert_classifier_file('PatchConvNet', args.src, args.dst,
                                      to_official=args.to_official))
        return
    checkpoint = load_checkpoint_file(args.src)
    original = unwrap_state_dict(checkpoint)
    state_dict = convert_patchconvnet(
        original, with_attn_pool=args.with_attn_pool)
    arch = PatchConvNet.check_converted_checkpoint(
        original, state_dict, repr(args.src), arch=args.arch,
        build_cfg=dict(with_attn_pool=args.with_attn_pool))
    num_blocks = len({k.split('.')[1] for k in state_dict
                      if k.startswith('blocks.')})
    meta = dict(
        source=args.src,
        converter='patchconvnet2mmsupervit',
        with_attn_pool=args.with_attn_pool,
        depth=num_blocks,
        recognised_arch=arch)
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'saved {len(state_dict)} tensors ({num_blocks} column blocks) '
          f'to {args.dst}')


if __name__ == '__main__':
    try:
        main()
    except CheckpointError as err:
        sys.exit(f'error: {err}')
