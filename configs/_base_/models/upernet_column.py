# UperNet on a stride-16 column backbone (SuperViT, PatchConvNet).
# The backbone's same-stride maps go through ColumnPyramidNeck (4/8/16/32),
# then mmseg's UPerHead; the FCN auxiliary head reads the stride-16 level.
# Every config that inherits this sets model.backbone and the channel widths.
_base_ = ['mmseg::_base_/models/upernet_r50.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

# BN works on one CPU/GPU; for multi-GPU runs set `sync_bn = 'torch'`
# (mmengine converts every BN to SyncBN when training is distributed).
norm_cfg = dict(type='BN', requires_grad=True)
embed_dims = 384
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(_delete_=True, type='mmsupervit.SuperViT', arch='deit-s'),
    neck=dict(
        type='mmsupervit.ColumnPyramidNeck',
        in_channels=embed_dims,
        scales=(4, 2, 1, 0.5),
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[embed_dims] * 4,
        channels=512,
        num_classes=150,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=embed_dims, in_index=2, num_classes=150,
        norm_cfg=norm_cfg),
    # single-scale test: sliding 512 windows with stride 341 (BEiT/XCiT)
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
