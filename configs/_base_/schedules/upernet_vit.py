# mmseg's ViT/DeiT UperNet optimizer (configs/vit/vit_vit-b16_mln_upernet_8xb2-
# 160k_ade20k-512x512.py): AdamW lr 6e-5, weight decay 0.01, none on position
# embeddings, class token and norms; no layer-wise lr decay. See RECIPES.md.
_base_ = ['./upernet_160k.py', './optimizers.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=_base_.vit_paramwise_cfg)
