# AlterNet-101 + UperNet, ADE20K 512x512, 160k iterations, 8 GPUs x 2.
# Recipe: the alternet-50 config's, with the values of mmseg's ConvNeXt-S
# UperNet (configs/convnext/convnext-small_upernet_8xb2-amp-160k_ade20k-
# 512x512.py) where ConvNeXt's sizes differ: stem lr factor 0.9**13 and drop
# path 0.3. Every field in configs/RECIPES.md.
# Weights: pretrained/alternet-101_in1k.pth, made by ImageNet pretraining (no
# official weights exist); the run stops with a hint if it is missing.
# Norms: as alternet-50 (SyncBN with trained statistics, as mmseg's ResNets).
_base_ = './alternet-50_upernet_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch=101,
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='pretrained/alternet-101_in1k.pth')))
# 34 blocks: layer ids 0 (stem) to 35 (top)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9**(13 / 35)))
