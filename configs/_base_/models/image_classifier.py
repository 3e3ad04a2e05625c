# What every ImageNet classification config shares: mmpretrain's
# ImageClassifier with a linear head over the 1000 classes, trained with label
# smoothing 0.1 (AlterNet's recipe and DeiT's both use it, with Mixup/CutMix
# set by each recipe). Each config adds its backbone (registered in
# mmpretrain's scope by mmsupervit) and the head's in_channels.
model = dict(
    type='ImageClassifier',
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
