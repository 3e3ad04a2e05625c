# PatchConvNet-S60 + UperNet, ADE20K 512x512, 160k iterations, 8 GPUs x 2.
# Recipe: mmseg's ConvNeXt-T UperNet (configs/convnext/convnext-
# tiny_upernet_8xb2-amp-160k_ade20k-512x512.py): PatchConvNet is, like
# ConvNeXt, a LayerNorm/layer-scale convnet trained on ImageNet with AdamW, and
# the paper's own dense recipe could not be read. Every field beside ours in
# configs/RECIPES.md. Deviations: (1) as in the paper, the last block's map
# alone feeds the heads, through ViTDet's simple feature pyramid (strides
# 4-32; no dense recipe of the paper could be read); (2) layer-wise lr decay block by block, with the rate that gives
# the stem ConvNeXt-T's stem factor 0.9**7 (mmseg decays ConvNeXt stage by
# stage); (3) drop path 0.2 on every block, the mean of ConvNeXt-T's linear
# 0-0.4 ramp (PatchConvNet gives all blocks one rate); (4) mixed precision is
# tools/train.py --amp.
# Norms: LayerNorm in the backbone and the pyramid neck, SyncBN in the heads.
# Weights: official ImageNet-1k s60_224_1k.pth (facebookresearch/deit).
_base_ = [
    '../_base_/models/upernet_patchconvnet.py',
    '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/schedules/upernet_convnext.py'
]
model = dict(
    backbone=dict(
        arch='S60',
        drop_path_rate=0.2,
        init_cfg=_base_.official_weights['s60']))
optim_wrapper = dict(
    paramwise_cfg=dict(layer_decay_rate=0.9**(7 / 61)))
