# COCO 1x: 12 epochs, lr steps at 8 and 11, AdamW lr 1e-4 wd 0.05 with
# layer-wise lr decay (rate set per backbone), no weight decay on norms,
# biases, position tables, class tokens and layer scales. Batch 16 (8x2).
_base_ = ['../datasets/coco_instance.py',
          'mmdet::_base_/schedules/schedule_1x.py',
          'mmdet::_base_/default_runtime.py']

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mmsupervit.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[8, 11], gamma=0.1),
]
train_dataloader = dict(batch_size=2, num_workers=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
