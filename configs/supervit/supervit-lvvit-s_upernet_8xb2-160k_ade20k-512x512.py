# SuperViT lvvit-s + UperNet, ADE20K 512x512, 160k iterations, 8 GPUs x 2.
# Recipe: the deit-s config's (mmseg's DeiT-S UperNet 160k; mmseg has no
# LV-ViT config), deviations and their reasons as there; every field in
# configs/RECIPES.md.
# Norms: the LV-ViT conv stem's BN is SyncBN with trained statistics
# (norm_eval=False), as mmseg treats ImageNet-pretrained BN backbones
# (upernet_r50.py); the LV-ViT paper gives no dense recipe. LayerNorm in the
# blocks, SyncBN in neck and heads.
# Weights: official SuperViT lvvit-s (Google Drive only, see README.md) at
# pretrained/super_lvvit_s.pth; the run stops with a hint if it is missing.
_base_ = ['./supervit-deit-s_upernet_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        arch='lvvit-s',
        init_cfg=dict(checkpoint='pretrained/super_lvvit_s.pth')))
