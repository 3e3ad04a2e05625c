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
import os.path as osp
from typing import Optional, Sequence

from mmsupervit.models.backbones.supervit import SuperViT, convert_supervit
from mmsupervit.models.classification import convert_classifier_file
from mmsupervit.models.utils.checkpoint import (load_checkpoint_file,
                                                unwrap_state_dict)
from mmsupervit.models.utils.converter_cli import (converter_parser,
                                                   run_converter,
                                                   save_converted)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = converter_parser(SuperViT, __doc__.split('\n')[0]).parse_args(argv)
    if args.classifier or args.to_official:
        print(convert_classifier_file('SuperViT', args.src, args.dst,
                                      to_official=args.to_official))
        return
    checkpoint = load_checkpoint_file(args.src)
    original = unwrap_state_dict(checkpoint)
    state_dict = convert_supervit(original)
    arch = SuperViT.check_converted_checkpoint(
        original, state_dict, repr(args.src), arch=args.arch)
    meta = {key: checkpoint[key] for key in ('epoch', 'arch')
            if isinstance(checkpoint.get(key), (int, str))}
    save_converted(
        args.dst, state_dict, source=args.src,
        converter=osp.splitext(osp.basename(__file__))[0],
        recognised_arch=arch, **meta)


if __name__ == '__main__':
    run_converter(main)
