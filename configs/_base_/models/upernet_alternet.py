# UperNet on AlterNet (hierarchical: strides 4/8/16/32, no neck). Every BN of
# the backbone is SyncBN and trains its statistics (norm_eval=False), as
# mmseg's UperNet does with ImageNet-pretrained ResNets (upernet_r50.py);
# SyncBN in the heads too. Single-scale test with sliding 512x512 windows,
# stride 341, as mmseg's ConvNeXt UperNet configs (the recipe source).
_base_ = ['./upernet.py', './alternet.py']

model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.alternet,
        norm_cfg=_base_.syncbn_cfg,
        norm_eval=False),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
