# SuperViT (DeiT-S) ImageNet-1k classification with the official weights
# (lmbxmu/SuperViT README: 80.62 top-1 at 14x14 tokens = 224 px, keep ratio
# 1): evaluate them (at any budget) before fine-tuning dense models.
# Model: the official DeiT head, the class token after the final norm (the
# backbone with out_type='cls_token') + a linear head.
# Evaluation transform: the official one (DeiT's datasets.py, which SuperViT
# uses: short side to 256 bicubic, 224 center crop), from
# ../_base_/datasets/imagenet_8xb128.py. The budget is the backbone's, as in
# the dense configs: the README's 12x12 tokens / keep ratio 0.7 are
#   --cfg-options model.backbone.input_scale=0.857142857 \
#                 model.backbone.keep_rate=0.7
# (192/224: the input is resized inside the model, bilinear with
# align_corners=True, and the 192 px position table is used, as in the
# official forward).
# Weights: pretrained/super_deit_s.pth, the official checkpoint (Google Drive,
# configs/supervit/README.md). Evaluate:
#   python tools/model_converters/supervit2mmsupervit.py \
#     pretrained/super_deit_s.pth pretrained/supervit-deit-s_in1k-cls.pth \
#     --classifier
#   python tools/test.py <this config> pretrained/supervit-deit-s_in1k-cls.pth
# Train: the backbone starts from the official weights (the head is new);
# the schedule is in ../_base_/schedules/imagenet_deit_8xb128.py.
_base_ = ['../_base_/schedules/imagenet_deit_8xb128.py',
          '../_base_/datasets/imagenet_8xb128.py']
model = dict(
    backbone=dict(
        type='SuperViT',
        arch='deit-s',
        out_type='cls_token',
        drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrained/super_deit_s.pth',
            hint='the official SuperViT weights are on Google Drive only: '
            'configs/supervit/README.md says how to download them')),
    head=dict(in_channels=384))
