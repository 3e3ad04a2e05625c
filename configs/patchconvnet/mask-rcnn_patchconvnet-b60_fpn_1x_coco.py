# PatchConvNet-B60 + Mask R-CNN/FPN, COCO, 1x (12 epochs), 8 GPUs x 2.
# Recipe: the s60 config's (mmdet's ConvNeXt-T optimizer on Swin-T's 1x
# schedule); the layer decay rate gives the 60-block column ConvNeXt-T's stem
# factor. mmdet has no larger ConvNeXt Mask R-CNN, so ConvNeXt-T's other values
# stay. Every field in configs/RECIPES.md.
# Weights: official ImageNet-1k b60_224_1k.pth (facebookresearch/deit).
# Norms: as the s60 config (LayerNorm in backbone and pyramid neck).
_base_ = './mask-rcnn_patchconvnet-s60_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        arch='B60',
        init_cfg=_base_.official_weights['b60']))
