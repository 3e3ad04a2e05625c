# AlterNet-50 + UperNet, ADE20K 512x512, 160k iterations, 8 GPUs x 2.
# Recipe: mmseg's ConvNeXt-T UperNet (configs/convnext/convnext-tiny_upernet_
# 8xb2-amp-160k_ade20k-512x512.py), the AdamW recipe of mmseg for an
# ImageNet-pretrained convnet: AlterNet's ImageNet recipe is AdamW
# (xxxnell/how-do-vits-work configs/imagenet_vit.yaml), and its paper gives
# no dense recipe. Every field beside ours in configs/RECIPES.md.
# Deviations: (1) layer-wise lr decay block by block, with the rate that gives
# the stem ConvNeXt-T's stem factor 0.9**7 (mmseg decays ConvNeXt stage by
# stage); (2) mixed precision is tools/train.py --amp.
# Norms: SyncBN with trained statistics in the backbone (norm_eval=False), as
# mmseg's UperNet treats ImageNet-pretrained ResNets; SyncBN in the heads.
# Weights: pretrained/alternet-50_in1k.pth, made by ImageNet pretraining (no
# official weights exist); the run stops with a hint if it is missing.
_base_ = [
    '../_base_/models/upernet_alternet.py',
    '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/schedules/upernet_convnext.py'
]
model = dict(
    backbone=dict(
        arch=50,
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint='pretrained/alternet-50_in1k.pth')))
# 17 blocks: layer ids 0 (stem) to 18 (top)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.9**(7 / 18)))
