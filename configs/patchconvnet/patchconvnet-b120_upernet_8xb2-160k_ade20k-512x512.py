# PatchConvNet-B120 + UperNet, ADE20K 512x512, 160k iterations, 8 GPUs x 2.
# Recipe: the b60 config's, with the values of mmseg's ConvNeXt-B UperNet
# (configs/convnext/convnext-base_upernet_8xb2-amp-160k_ade20k-512x512.py)
# where ConvNeXt's sizes differ: stem lr factor 0.9**13 and drop path 0.2 (half
# of ConvNeXt-B's 0.4, see the s60 config). Gradient checkpointing (with_cp)
# saves memory. Every field in configs/RECIPES.md.
# Weights: official ImageNet-1k b120_224_1k.pth (facebookresearch/deit).
# Norms: as the s60 config (LayerNorm in backbone and pyramid neck).
_base_ = './patchconvnet-b60_upernet_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        arch='B120',
        with_cp=True,
        init_cfg=_base_.official_weights['b120']))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.9**(13 / 121)))
