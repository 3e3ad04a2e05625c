# mmdet's Swin-T Mask R-CNN 1x recipe (configs/swin/mask-rcnn_swin-t-p4-w7_fpn_
# 1x_coco.py): AdamW lr 1e-4, weight decay 0.05, none on position tables and
# norms (here the ViT names: pos_embed, cls_token, norm), no layer-wise lr
# decay, linear warm-up over 1000 iterations. See RECIPES.md.
_base_ = ['./mask-rcnn_1x.py', './optimizers.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=_base_.vit_paramwise_cfg)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1),
]
