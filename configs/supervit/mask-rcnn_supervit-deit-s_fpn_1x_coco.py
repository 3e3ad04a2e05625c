# SuperViT deit-s + Mask R-CNN/FPN, COCO, 1x (12 epochs), 8 GPUs x 2.
# Recipe: mmdet's Swin-T Mask R-CNN 1x (configs/swin/mask-rcnn_swin-t-p4-w7_
# fpn_1x_coco.py); every field beside ours in configs/RECIPES.md.
# Deviations: (1) the XCiT pyramid neck before FPN (SuperViT is a stride-16
# column); (2) no weight decay on the ViT's pos_embed/cls_token/norm, the
# counterparts of Swin's absolute_pos_embed/relative_position_bias_table/norm;
# (3) drop path 0.1, mmseg's value for this architecture (DeiT-S), not
# Swin-T's 0.2.
# Norms: LayerNorm in the backbone, SyncBN in the pyramid neck, no norm in FPN
# and heads.
# Weights: official SuperViT deit-s (Google Drive only, see README.md) at
# pretrained/super_deit_s.pth; the run stops with a hint if it is missing.
_base_ = [
    '../_base_/models/mask-rcnn_column_fpn.py',
    '../_base_/schedules/mask-rcnn_swin_1x.py'
]
model = dict(
    backbone=dict(
        arch='deit-s',
        init_cfg=dict(checkpoint='pretrained/super_deit_s.pth')))
