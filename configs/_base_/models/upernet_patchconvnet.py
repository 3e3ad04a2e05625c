# UperNet on PatchConvNet: the stride-16 column goes through the pyramid neck
# of patchconvnet.py (SyncBN inside, as the heads). The backbone has no BN
# (LayerNorm). Single-scale test with sliding 512x512 windows, stride 341, as
# mmseg's ConvNeXt UperNet configs (the recipe source).
_base_ = ['./upernet.py', './patchconvnet.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.patchconvnet),
    neck=_base_.pyramid_neck,
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
