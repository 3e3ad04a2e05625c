# Demo: UperNet on a tiny SuperViT trained from scratch on the synthetic demo
# data (ADE20K layout, written by tools/dataset_converters/make_demo_data.py).
# Sized for CPUs: 128x128 crops, batch 4, 300 iterations (a few minutes).
_base_ = [
    '../_base_/models/upernet_column.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

crop_size = (128, 128)
embed_dims = 96
channels = 64
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='mmsupervit.SuperViT',
        arch=dict(embed_dims=embed_dims, depth=6, num_heads=2),
        out_indices=(1, 3, 4, 5),
        # At input scale 1 the backbone uses its 224 px position table
        # (resampled to the 8x8 grid), whatever pos_embed_size says;
        # pos_embed_size only picks the table for input scales that are not
        # a trained size (0.5, 0.75, ... in a budget sweep). The default, 224,
        # is the one table this single-budget config trains.
        drop_path_rate=0.0),
    neck=dict(
        type='mmsupervit.ColumnPyramidNeck',
        in_channels=embed_dims,
        out_channels=channels,
        scales=(4, 2, 1, 0.5),
        norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[channels] * 4,
        channels=channels,
        num_classes=5,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=channels,
        channels=32,
        num_convs=1,
        num_classes=5,
        norm_cfg=norm_cfg),
    test_cfg=dict(_delete_=True, mode='whole'))

# data: label 0 ("other") is ignored through reduce_zero_label, as in ADE20K
dataset_type = 'BaseSegDataset'
data_root = 'data/demo/ade'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle', 'star'),
    palette=[[120, 120, 120], [220, 20, 60], [0, 160, 60], [30, 80, 230],
             [230, 190, 0]])
# mmsupervit.LoadSegAnnotations: mmseg's LoadAnnotations plus checks that
# name a corrupt map, a map of another size than its image, or a label
# outside the classes (mmsupervit/datasets/checks.py)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmsupervit.LoadSegAnnotations', num_classes=5),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.8, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='mmsupervit.LoadSegAnnotations', num_classes=5),
    dict(type='PackSegInputs'),
]
img_ratios = [1.0, 1.25]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r, keep_ratio=True)
             for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='mmsupervit.LoadSegAnnotations', num_classes=5)],
            [dict(type='PackSegInputs')],
        ])
]
dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# schedule: from scratch, so a larger lr than fine-tuning recipes
max_iters = 300
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=30),
    dict(type='PolyLR', power=1.0, eta_min=1e-5, by_epoch=False, begin=30,
         end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=100,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=4)
# SuperViT keeps one position table per trained size and uses one of them,
# so distributed (DDP) training must tolerate parameters without gradients.
find_unused_parameters = True
