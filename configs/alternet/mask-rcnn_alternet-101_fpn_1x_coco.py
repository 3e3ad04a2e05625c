# AlterNet-101 + Mask R-CNN/FPN, COCO, 1x (12 epochs), 8 GPUs x 2.
# Recipe: the alternet-50 config's (mmdet's RSB ResNet-50 recipe; mmdet has
# no RSB ResNet-101 config). Every field in configs/RECIPES.md.
# Weights: pretrained/alternet-101_in1k.pth, made by ImageNet pretraining (no
# official weights exist); the run stops with a hint if it is missing.
# Norms: as alternet-50 (BN with frozen statistics, as mmdet's ResNets).
_base_ = './mask-rcnn_alternet-50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        arch=101,
        init_cfg=dict(checkpoint='pretrained/alternet-101_in1k.pth')))
