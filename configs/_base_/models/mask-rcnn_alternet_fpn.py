# Mask R-CNN on AlterNet (hierarchical: strides 4/8/16/32) with FPN. BN as
# mmdet uses ImageNet-pretrained ResNets (mask-rcnn_r50_fpn.py): affine
# parameters trained, statistics frozen (norm_eval=True), stem and first
# stage frozen (frozen_stages=1). No norm in FPN and heads.
_base_ = ['./mask-rcnn_fpn.py', './alternet.py']

model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.alternet,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        frozen_stages=1))
