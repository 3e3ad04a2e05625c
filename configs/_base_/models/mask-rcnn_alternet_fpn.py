# Mask R-CNN on AlterNet (hierarchical: strides 4/8/16/32) with mmdet's FPN.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

# BN works on one CPU/GPU; for multi-GPU runs set `sync_bn = 'torch'`.
# AlterNet has no ImageNet weights: it trains from scratch, so its norms are
# trained (not frozen) and FPN gets norms too.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.AlterNet',
        arch=50,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg),
    neck=dict(in_channels=[256, 512, 1024, 2048], norm_cfg=norm_cfg))
