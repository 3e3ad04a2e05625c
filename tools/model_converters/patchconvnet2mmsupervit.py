"""Convert an official PatchConvNet checkpoint to the mmsupervit layout.

    python tools/model_converters/patchconvnet2mmsupervit.py SRC DST \
        [--with-attn-pool]

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
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

import torch

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmsupervit.models.backbones.patchconvnet import \
    convert_patchconvnet  # noqa: E402
from mmsupervit.models.utils.checkpoint import (  # noqa: E402
    load_checkpoint_file, unwrap_state_dict)


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
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    checkpoint = load_checkpoint_file(args.src)
    state_dict = convert_patchconvnet(
        unwrap_state_dict(checkpoint), with_attn_pool=args.with_attn_pool)
    num_blocks = len({k.split('.')[1] for k in state_dict
                      if k.startswith('blocks.')})
    meta = dict(
        source=args.src,
        converter='patchconvnet2mmsupervit',
        with_attn_pool=args.with_attn_pool,
        depth=num_blocks)
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    print(f'saved {len(state_dict)} tensors ({num_blocks} column blocks) '
          f'to {args.dst}')


if __name__ == '__main__':
    main()
