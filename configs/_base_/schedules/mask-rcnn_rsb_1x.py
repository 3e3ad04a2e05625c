# mmdet's Mask R-CNN 1x recipe for a ResNet-50 pretrained with a modern
# (non-SGD) ImageNet recipe (configs/resnet_strikes_back/mask-rcnn_r50-rsb-
# pre_fpn_1x_coco.py): AdamW lr 2e-4, weight decay 0.05, none on norms, on
# mmdet's 1x schedule (500 warm-up iterations, steps 8 and 11). See
# RECIPES.md.
_base_ = ['./mask-rcnn_1x.py']

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bypass_duplicate=True))
