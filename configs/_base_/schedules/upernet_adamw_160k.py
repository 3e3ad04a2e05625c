# ADE20K UperNet recipe: 160k iterations, AdamW, linear warm-up over 1500
# iterations then poly decay, layer-wise lr decay on the backbone (the rate is
# set per backbone; 1.0 = no decay), no weight decay on norms, biases,
# position tables, class tokens and layer scales.
_base_ = ['mmseg::_base_/schedules/schedule_160k.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmsupervit.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500,
         end=160000),
]
