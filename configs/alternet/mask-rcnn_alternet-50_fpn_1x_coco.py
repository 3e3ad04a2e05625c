# AlterNet-50 + Mask R-CNN/FPN, COCO, 1x (12 epochs), 8 GPUs x 2.
# Recipe: mmdet's Mask R-CNN for a ResNet-50 pretrained with a modern
# ImageNet recipe (configs/resnet_strikes_back/mask-rcnn_r50-rsb-pre_fpn_1x_
# coco.py: AdamW, no layer decay): AlterNet is a pre-activation ResNet with a
# few attention blocks, pretrained with AdamW (how-do-vits-work configs/
# imagenet_vit.yaml); its paper gives no detection recipe. Every field beside
# ours in configs/RECIPES.md; no deviation.
# Norms: BN as mmdet uses ImageNet-pretrained ResNets: affine trained,
# statistics frozen (norm_eval=True), stem and stage 1 frozen; no norm in FPN
# and heads.
# Weights: pretrained/alternet-50_in1k.pth, made by ImageNet pretraining (no
# official weights exist); the run stops with a hint if it is missing.
_base_ = [
    '../_base_/models/mask-rcnn_alternet_fpn.py',
    '../_base_/schedules/mask-rcnn_rsb_1x.py'
]
model = dict(
    backbone=dict(
        arch=50, init_cfg=dict(checkpoint='pretrained/alternet-50_in1k.pth')))
