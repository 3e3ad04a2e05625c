# UperNet on PatchConvNet: the last block's stride-16 map goes through the
# simple feature pyramid of patchconvnet.py (LayerNorm inside, as ViTDet),
# then UperNet (SyncBN in the heads). Single-scale test with sliding 512x512
# windows, stride 341, as mmseg's ConvNeXt UperNet configs (the recipe
# source).
_base_ = ['./upernet.py', './patchconvnet.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.patchconvnet),
    neck=_base_.pyramid_neck,
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
