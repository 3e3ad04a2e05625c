# AlterNet backbone settings shared by its UperNet and Mask R-CNN configs.
# No official ImageNet weights exist: the configs expect a checkpoint made by
# ImageNet pretraining at the path below and stop with a hint when it is
# missing (never a silent start from scratch); the *-scratch configs train
# without it.
alternet = dict(
    type='mmsupervit.AlterNet',
    arch=50,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='pretrained/alternet-50_in1k.pth',
        hint='AlterNet has no public ImageNet weights: make this file by '
        'ImageNet pretraining (configs/alternet/README.md), or train from '
        'scratch with an alternet-*-scratch config'))
