# Demo: classification pretraining (mmpretrain) of the tiny SuperViT of
# supervit-tiny_upernet_1xb4-300i_demo-128x128.py on the object crops of the
# synthetic demo data (4 classes, 64x64; written by
# tools/dataset_converters/make_demo_data.py under <data>/cls). Its
# checkpoint (`backbone.` keys) initialises the dense demo configs through
# init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.'), which
# is what tools/run_demo.py does over HTTP. Sized for CPUs: batch 32,
# 200 iterations. The AlterNet and PatchConvNet demo classifiers inherit
# everything but the backbone (and the head's width) from this file.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

crop_size = 64
embed_dims = 96
# The classifier of configs/supervit/supervit-deit-s_8xb128_in1k.py at the
# demo's size: the class token after the last block and the final norm
# (out_type='cls_token'), then a linear head, as the official SuperViT.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmsupervit.SuperViT',
        arch=dict(embed_dims=embed_dims, depth=6, num_heads=2),
        out_type='cls_token',
        drop_path_rate=0.0),
    head=dict(
        type='LinearClsHead',
        num_classes=4,
        in_channels=embed_dims,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, )))
# the normalisation of the dense demo configs (mmseg/mmdet ImageNet values)
data_preprocessor = dict(
    num_classes=4,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

dataset_type = 'CustomDataset'
data_root = 'data/demo/cls'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star'))
# objects are seen at several scales, as in the dense images
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=crop_size,
        crop_ratio_range=(0.5, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop_size, edge='short'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='meta/train.txt',
        data_prefix='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='meta/val.txt',
        data_prefix='val',
        pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_iters = 200
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=20,
         end=max_iters),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=32)
