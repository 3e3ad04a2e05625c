# Mask R-CNN on a stride-16 column backbone (SuperViT, PatchConvNet):
# backbone -> ColumnPyramidNeck (strides 4/8/16/32) -> FPN -> mmdet heads.
# Every config that inherits this sets model.backbone and `embed_dims`.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

# BN works on one CPU/GPU; for multi-GPU runs set `sync_bn = 'torch'`.
norm_cfg = dict(type='BN', requires_grad=True)
embed_dims = 384
model = dict(
    backbone=dict(_delete_=True, type='mmsupervit.SuperViT', arch='deit-s'),
    neck=[
        dict(
            type='mmsupervit.ColumnPyramidNeck',
            in_channels=embed_dims,
            scales=(4, 2, 1, 0.5),
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[embed_dims] * 4,
            out_channels=256,
            num_outs=5,
            norm_cfg=norm_cfg),
    ])
