# PatchConvNet-S60 + Mask R-CNN/FPN, COCO, 1x (12 epochs), 8 GPUs x 2.
# Recipe: mmdet's ConvNeXt-T Mask R-CNN optimizer (configs/convnext/mask-
# rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py, mmdet's only ConvNeXt Mask
# R-CNN) on the 1x schedule of mmdet's Swin-T (there is no ConvNeXt 1x):
# PatchConvNet is, like ConvNeXt, a LayerNorm/layer-scale convnet trained with
# AdamW. Every field beside ours in configs/RECIPES.md. Deviations: (1) as in
# the paper, the last block's map alone, through ViTDet's simple feature
# pyramid in FPN's place (strides 4-64); (2) layer-wise lr decay
# block by block, with the rate that gives the stem ConvNeXt-T's stem factor
# 0.95**7 (mmdet decays ConvNeXt's layer groups); (3) drop path 0.2 on every
# block, the mean of ConvNeXt-T's linear 0-0.4 ramp (PatchConvNet gives all
# blocks one rate); (4) mixed precision is tools/train.py --amp.
# Norms: LayerNorm in the backbone and the pyramid neck, no norm in the
# heads.
# Weights: official ImageNet-1k s60_224_1k.pth (facebookresearch/deit).
_base_ = [
    '../_base_/models/mask-rcnn_patchconvnet_fpn.py',
    '../_base_/schedules/mask-rcnn_convnext_1x.py'
]
model = dict(
    backbone=dict(
        arch='S60',
        drop_path_rate=0.2,
        init_cfg=_base_.official_weights['s60']))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.95**(7 / 61)))
