# SuperViT lvvit-s + Mask R-CNN/FPN, COCO, 1x (12 epochs), 8 GPUs x 2.
# Recipe: the deit-s 1x config's (mmdet's Swin-T Mask R-CNN 1x), deviations
# and their reasons as there; every field in configs/RECIPES.md.
# Norms: the LV-ViT conv stem's BN keeps its ImageNet statistics
# (norm_eval=True, affine trained), as mmdet treats ImageNet-pretrained BN
# (mask-rcnn_r50_fpn.py); the LV-ViT paper gives no detection recipe.
# LayerNorm in the blocks, SyncBN in the pyramid neck.
# Weights: official SuperViT lvvit-s (Google Drive only, see README.md) at
# pretrained/super_lvvit_s.pth; the run stops with a hint if it is missing.
_base_ = ['./mask-rcnn_supervit-deit-s_fpn_1x_coco.py']
model = dict(
    backbone=dict(
        arch='lvvit-s',
        init_cfg=dict(checkpoint='pretrained/super_lvvit_s.pth')))
