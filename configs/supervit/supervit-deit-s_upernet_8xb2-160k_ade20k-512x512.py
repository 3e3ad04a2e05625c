# SuperViT deit-s + UperNet, ADE20K 512x512, 160k iterations, 8 GPUs x 2.
# Recipe: mmseg's DeiT-S UperNet 160k (configs/vit/vit_deit-s16_upernet_8xb2-
# 160k_ade20k-512x512.py); every field beside ours in configs/RECIPES.md.
# Deviations: (1) the XCiT pyramid neck turns the four stride-16 block outputs
# into strides 4-32 (mmseg feeds UperNet the stride-16 maps themselves); (2)
# so the auxiliary head reads the stride-16 level, block 9 (mmseg: block 12);
# (3) 160k iterations explicitly: mmseg 1.x's file inherits an 80k schedule
# from its base, while its name, mmseg 0.x and the published 42.87 mIoU are
# 160k.
# Norms: LayerNorm in the backbone, SyncBN in neck and heads.
# Weights: official SuperViT deit-s (Google Drive only, see README.md) at
# pretrained/super_deit_s.pth; the run stops with a hint if it is missing.
_base_ = [
    '../_base_/models/upernet_column.py', '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/schedules/upernet_vit.py'
]
model = dict(
    backbone=dict(
        arch='deit-s',
        init_cfg=dict(checkpoint='pretrained/super_deit_s.pth')))
