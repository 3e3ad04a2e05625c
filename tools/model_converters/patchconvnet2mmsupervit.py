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
import os.path as osp
from typing import Optional, Sequence

from mmsupervit.models.backbones.patchconvnet import (PatchConvNet,
                                                      convert_patchconvnet)
from mmsupervit.models.classification import convert_classifier_file
from mmsupervit.models.utils.checkpoint import (load_checkpoint_file,
                                                unwrap_state_dict)
from mmsupervit.models.utils.converter_cli import (converter_parser,
                                                   run_converter,
                                                   save_converted)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = converter_parser(PatchConvNet, __doc__.split('\n')[0])
    parser.add_argument(
        '--with-attn-pool',
        action='store_true',
        help='keep the class-attention pooling block (cls_token, '
        'blocks_token_only) as attn_pool.*')
    args = parser.parse_args(argv)
    if args.classifier or args.to_official:
        print(convert_classifier_file('PatchConvNet', args.src, args.dst,
                                      to_official=args.to_official))
        return
    original = unwrap_state_dict(load_checkpoint_file(args.src))
    state_dict = convert_patchconvnet(
        original, with_attn_pool=args.with_attn_pool)
    arch = PatchConvNet.check_converted_checkpoint(
        original, state_dict, repr(args.src), arch=args.arch,
        build_cfg=dict(with_attn_pool=args.with_attn_pool))
    num_blocks = len({k.split('.')[1] for k in state_dict
                      if k.startswith('blocks.')})
    save_converted(
        args.dst, state_dict, f' ({num_blocks} column blocks)',
        source=args.src,
        converter=osp.splitext(osp.basename(__file__))[0],
        with_attn_pool=args.with_attn_pool, depth=num_blocks,
        recognised_arch=arch)


if __name__ == '__main__':
    run_converter(main)
