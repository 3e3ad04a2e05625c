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
import os.path as osp
from typing import Optional, Sequence

from mmsupervit.models.backbones.alternet import AlterNet, convert_alternet
from mmsupervit.models.classification import convert_classifier_file
from mmsupervit.models.utils.checkpoint import (load_checkpoint_file,
                                                unwrap_state_dict)
from mmsupervit.models.utils.converter_cli import (converter_parser,
                                                   run_converter,
                                                   save_converted)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = converter_parser(AlterNet, __doc__.split('\n')[0]).parse_args(argv)
    if args.classifier or args.to_official:
        print(convert_classifier_file('AlterNet', args.src, args.dst,
                                      to_official=args.to_official))
        return
    checkpoint = load_checkpoint_file(args.src)
    original = unwrap_state_dict(checkpoint)
    state_dict = convert_alternet(original)
    arch = AlterNet.check_converted_checkpoint(
        original, state_dict, repr(args.src), arch=args.arch)
    save_converted(
        args.dst, state_dict, source=args.src,
        converter=osp.splitext(osp.basename(__file__))[0],
        official_name=checkpoint.get('name'), recognised_arch=arch)


if __name__ == '__main__':
    run_converter(main)
