# AlterNet backbone settings shared by its UperNet and Mask R-CNN configs.
# No official ImageNet weights exist: the configs expect a checkpoint made by
# ImageNet pretraining at the path below (the file the classification config
# alternet-{50,101}_8xb128_in1k.py writes, taken as it is) and stop with a
# hint when it is missing (never a silent start from scratch); the *-scratch
# configs train without it.
alternet = dict(
    type='mmsupervit.AlterNet',
    arch=50,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='pretrained/alternet-50_in1k.pth',
        hint='AlterNet has no public ImageNet weights: make this file by '
        'ImageNet pretraining with configs/alternet/alternet-{50,101}_8xb128_'
        'in1k.py and copy its last checkpoint here (README, "Pretrain -> '
        'fine-tune"), or train from scratch with an alternet-*-scratch '
        'config'))
