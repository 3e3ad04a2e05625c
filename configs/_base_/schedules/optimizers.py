# Optimizer pieces used by more than one recipe (named, so that a file can
# take them without a clash between bases).
#
# Weight decay off the position tables, class token and norms, as mmseg's
# ViT/DeiT UperNet and mmdet's Swin Mask R-CNN recipes do (their key names
# for a ViT: pos_embed, cls_token, norm).
vit_paramwise_cfg = dict(
    custom_keys={
        'pos_embed': dict(decay_mult=0.),
        'cls_token': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.)
    })
# The optimizer of mmseg's and mmdet's ConvNeXt recipes (configs/convnext/ in
# both): AdamW lr 1e-4, weight decay 0.05, none on 1-d parameters, with
# layer-wise lr decay. Their constructor decays ConvNeXt's stages; ours decays
# block by block, so each config sets `layer_decay_rate` so that its stem gets
# the factor the source gives ConvNeXt's stem (RECIPES.md). Mixed precision
# (AmpOptimWrapper in the sources) is `tools/train.py --amp`, so the configs
# also run without a GPU.
convnext_optim_wrapper = dict(
    type='OptimWrapper',
    constructor='mmsupervit.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05))
