# AlterNet-101 + Mask R-CNN/FPN, COCO, ms-3x: the 1x sibling trained 36 epochs
# (lr steps 27, 33) on multi-scale data (shorter side 640-800).
# Recipe: the 1x sibling's optimizer and mmdet's ms-3x data (configs/common/
# ms-poly_3x_coco-instance.py); mmdet runs that recipe as 12 epochs over a 3x
# RepeatDataset with steps 9 and 11, here 36 epochs with steps 27 and 33 as
# mmdet's Swin-T/ConvNeXt-T 3x configs. Fields in configs/RECIPES.md.
# Norms: as the 1x sibling (BN with frozen statistics).
_base_ = [
    './mask-rcnn_alternet-101_fpn_1x_coco.py',
    '../_base_/schedules/mask-rcnn_ms-3x.py'
]
train_dataloader = dict(dataset=dict(pipeline=_base_.ms_3x_train_pipeline))
train_cfg = dict(max_epochs=_base_.ms_3x_max_epochs)
param_scheduler = [_base_.param_scheduler[0], _base_.ms_3x_lr_steps]
