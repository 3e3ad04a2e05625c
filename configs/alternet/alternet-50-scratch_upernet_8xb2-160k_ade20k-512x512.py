# AlterNet-50 + UperNet trained from scratch (no ImageNet weights), ADE20K
# 512x512, 160k iterations, 8 GPUs x 2: what runs before ImageNet weights
# exist. Recipe: the pretrained alternet-50 config's; neither mmseg nor the
# AlterNet paper publishes a from-scratch UperNet recipe. Deviation: no
# layer-wise lr decay (it keeps pretrained features, and there are none).
# Expect far lower mIoU than with pretraining. Fields in configs/RECIPES.md.
# Norms: SyncBN with trained statistics, as the pretrained config.
_base_ = './alternet-50_upernet_8xb2-160k_ade20k-512x512.py'
model = dict(backbone=dict(init_cfg=None))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=1.0))
