# AlterNet-50 + Mask R-CNN/FPN trained from scratch (no ImageNet weights),
# COCO, 6x (73 epochs), 8 GPUs x 2: what runs before ImageNet weights exist.
# Recipe: mmdet's from-scratch Mask R-CNN (configs/scratch/mask-rcnn_r50-
# scratch_fpn_gn-all_6x_coco.py, after "Rethinking ImageNet Pre-training"):
# GroupNorm (32 groups) in backbone, FPN and heads, a 4conv1fc box head,
# nothing frozen, SGD lr 0.02, no weight decay on norms, steps 65 and 71.
# Every field beside ours in configs/RECIPES.md. Deviation: mmdet's ResNet
# option zero_init_residual=False has no AlterNet counterpart (AlterNet's own
# initialisation is used).
# Norms: GroupNorm everywhere (no BN), as the source.
_base_ = [
    '../_base_/models/mask-rcnn_alternet_fpn.py',
    '../_base_/schedules/mask-rcnn_1x.py'
]
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(
        norm_cfg=norm_cfg, norm_eval=False, frozen_stages=-1, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.))
max_epochs = 73
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[65, 71], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
