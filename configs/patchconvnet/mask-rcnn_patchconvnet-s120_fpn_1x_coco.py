# PatchConvNet-S120 + Mask R-CNN/FPN, COCO, 1x (12 epochs), 8 GPUs x 2.
# Recipe: the s60 config's (mmdet's ConvNeXt-T optimizer on Swin-T's 1x
# schedule); the layer decay rate gives the 120-block column ConvNeXt-T's stem
# factor. mmdet has no larger ConvNeXt Mask R-CNN, so ConvNeXt-T's other values
# stay. Gradient checkpointing (with_cp) saves memory. Every field in
# configs/RECIPES.md.
# Weights: official ImageNet-1k s120_224_1k.pth (facebookresearch/deit).
# Norms: as the s60 config (LayerNorm in backbone and pyramid neck).
_base_ = './mask-rcnn_patchconvnet-s60_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        arch='S120',
        with_cp=True,
        init_cfg=_base_.official_weights['s120']))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.95**(7 / 121)))
