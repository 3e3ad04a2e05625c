# SuperViT deit-s + Mask R-CNN/FPN, COCO, ms-3x: the 1x sibling trained 36
# epochs (lr steps 27, 33) on multi-scale data (shorter side 640-800).
# Recipe: the 1x sibling's optimizer, mmdet's ms-3x data (configs/common/
# ms-poly_3x_coco-instance.py) and the 36-epoch schedule of mmdet's Swin-T 3x
# (configs/swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py); fields in
# configs/RECIPES.md. Deviation: no random crops (Swin-T's ms-crop data); this
# is mmdet's plain ms-3x data.
# Norms: as the 1x sibling (SyncBN in the pyramid neck, no norm in FPN/heads).
_base_ = [
    './mask-rcnn_supervit-deit-s_fpn_1x_coco.py',
    '../_base_/schedules/mask-rcnn_ms-3x.py'
]
train_dataloader = dict(dataset=dict(pipeline=_base_.ms_3x_train_pipeline))
train_cfg = dict(max_epochs=_base_.ms_3x_max_epochs)
param_scheduler = [_base_.param_scheduler[0], _base_.ms_3x_lr_steps]
