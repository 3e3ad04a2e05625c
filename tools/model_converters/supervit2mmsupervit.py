"""Convert an official SuperViT checkpoint to an mmsupervit checkpoint.

    python tools/model_converters/supervit2mmsupervit.py SRC DST

SRC is an official file as published (``{'model': ...}`` from
``main_deit.py`` or timm's ``{'state_dict', 'state_dict_ema', ...}`` from
``main_lvvit.py``; the EMA weights are preferred). DST gets
``{'state_dict': ..., 'meta': ...}`` with the backbone's keys (classification
heads dropped), which ``init_cfg=dict(type='Pretrained', checkpoint=DST)``
loads. The conversion is :func:`mmsupervit.models.backbones.supervit.
convert_supervit`, the same function the load hook uses.
"""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence

import torch

import mmsupervit  # noqa: F401  (allow-lists argparse.Namespace)
from mmsupervit.models.backbones.supervit import convert_supervit
from mmsupervit.models.utils.checkpoint import (
    load_checkpoint_file, unwrap_state_dict)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output path')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    checkpoint = load_checkpoint_file(args.src)
    state_dict = convert_supervit(unwrap_state_dict(checkpoint))
    meta = dict(
        source=args.src,
        converter='supervit2mmsupervit',
        mmsupervit_version=mmsupervit.__version__)
    for key in ('epoch', 'arch'):
        if key in checkpoint and isinstance(checkpoint[key], (int, str)):
            meta[key] = checkpoint[key]
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'saved {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
