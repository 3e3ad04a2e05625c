# Mask R-CNN on SuperViT, the default stride-16 column (the demo configs
# build on this file too): column_pyramid.py's neck makes strides 4/8/16/32,
# FPN adds the fifth level. Norm layers: SyncBN in the pyramid neck (trained
# at 2 images per GPU; no norm in FPN and heads, as mmdet); the LV-ViT conv
# stem's BN keeps its ImageNet statistics (norm_eval=True, affine trained),
# as mmdet does with ImageNet-pretrained BN (mask-rcnn_r50_fpn.py). The ViT
# blocks use LayerNorm.
_base_ = ['./mask-rcnn_fpn.py', './supervit.py']

model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.supervit,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True),
    neck=[_base_.pyramid_neck, _base_.fpn_neck])
