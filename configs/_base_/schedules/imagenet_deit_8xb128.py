# Classifier and training fields of the PatchConvNet / SuperViT ImageNet
# configs (the classifier from ../models/image_classifier.py), for
# fine-tuning their official weights: mmpretrain's DeiT-S recipe
# (configs/deit/deit-small_4xb256_in1k.py with its schedule
# _base_/schedules/imagenet_bs1024_adamw_swin.py): AdamW lr 1e-3 at batch
# 1024 (DeiT's 5e-4 x batch / 512), weight decay 0.05 (none on norms, biases,
# class token and position tables), 20 linear warmup epochs, cosine to 1e-5
# over 300 epochs, gradient clipping 5, Mixup 0.8 / CutMix 1.0 (with the
# label smoothing 0.1 of ../models/image_classifier.py). It is not the
# recipe the official weights were trained with (SuperViT's multi-budget
# training and PatchConvNet's recipe are not ported); it is a DeiT-style
# starting point: shorten it for a fine-tune, e.g.
# --cfg-options train_cfg.max_epochs=30.
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
          '../models/image_classifier.py']
model = dict(
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))
optim_wrapper = dict(
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'cls_token': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=5.0))
