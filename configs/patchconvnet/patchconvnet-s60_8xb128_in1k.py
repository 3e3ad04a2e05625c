# PatchConvNet-S60 ImageNet-1k classification with the official weights
# (facebookresearch/deit README_patchconvnet.md, 82.1 top-1 published):
# evaluate them before fine-tuning dense models, or fine-tune them.
# Model: the official classifier, the column + class-attention pooling +
# final LayerNorm (the backbone with out_type='cls_token') + a linear head.
# Evaluation transform: the official one (deit main.py, --eval-crop-ratio
# 0.875: short side to 256 bicubic, 224 center crop), from
# ../_base_/datasets/imagenet_8xb128.py.
# Evaluate: python tools/model_converters/patchconvnet2mmsupervit.py \
#   https://dl.fbaipublicfiles.com/deit/s60_224_1k.pth \
#   pretrained/patchconvnet-s60_in1k-cls.pth --classifier
#   python tools/test.py <this config> pretrained/patchconvnet-s60_in1k-cls.pth
# Train: the backbone starts from the official weights (the head is new);
# the schedule is in ../_base_/schedules/imagenet_deit_8xb128.py.
_base_ = ['../_base_/datasets/imagenet_8xb128.py',
          '../_base_/schedules/imagenet_deit_8xb128.py']
model = dict(
    backbone=dict(
        type='PatchConvNet',
        arch='S60',
        with_attn_pool=True,
        out_type='cls_token',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://dl.fbaipublicfiles.com/deit/s60_224_1k.pth')),
    head=dict(in_channels=384))
