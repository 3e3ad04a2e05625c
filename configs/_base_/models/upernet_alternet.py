# UperNet on AlterNet: a hierarchical backbone (strides 4/8/16/32), no neck.
_base_ = ['mmseg::_base_/models/upernet_r50.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

# BN works on one CPU/GPU; for multi-GPU runs set `sync_bn = 'torch'`.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='mmsupervit.AlterNet',
        arch=50,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[256, 512, 1024, 2048], num_classes=150,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=1024, num_classes=150, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
