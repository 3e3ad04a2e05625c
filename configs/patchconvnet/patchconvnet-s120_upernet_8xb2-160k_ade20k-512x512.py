# PatchConvNet-S120 + UperNet, ADE20K 512x512, 160k iterations, 8 GPUs x 2.
# Recipe: the s60 config's, with the values of mmseg's ConvNeXt-S UperNet
# (configs/convnext/convnext-small_upernet_8xb2-amp-160k_ade20k-512x512.py)
# where ConvNeXt's sizes differ: stem lr factor 0.9**13 and drop path 0.15
# (half of ConvNeXt-S's 0.3, see the s60 config). Gradient checkpointing
# (with_cp) saves memory. Every field in configs/RECIPES.md.
# Weights: official ImageNet-1k s120_224_1k.pth (facebookresearch/deit).
# Norms: as the s60 config (LayerNorm in backbone and pyramid neck).
_base_ = './patchconvnet-s60_upernet_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='S120',
        drop_path_rate=0.15,
        with_cp=True,
        init_cfg=_base_.official_weights['s120']))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.9**(13 / 121)))
