# Demo: Mask R-CNN on a tiny PatchConvNet (embed 64, depth 6) on the
# synthetic demo data (COCO layout, written by
# tools/dataset_converters/make_demo_data.py). Sized for CPUs: 128x128
# images, small heads, batch 4, 300 iterations.
# tools/run_demo.py fine-tunes it from scratch and from the demo classifier
# (patchconvnet-tiny_1xb32-200i_demo-crops-64x64.py); README.md's demo table
# has the results. The SuperViT Mask R-CNN demo inherits everything but the
# backbone (and the necks' input widths) from this file.
_base_ = [
    '../_base_/models/mask-rcnn_column_fpn.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

img_scale = (128, 128)
embed_dims = 64
channels = 64
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.PatchConvNet',
        # from scratch: a layer scale of 0.1 instead of the official 1e-6
        # lets the residual blocks contribute from the first iterations
        arch=dict(embed_dims=embed_dims, depth=6, layer_scale_init_value=0.1),
        # this project's multi-depth extension (blocks 0, 2, 3, 5, each with
        # a new output norm), one map per ColumnPyramidNeck level; the
        # paper's single-map variant is
        # mask-rcnn_patchconvnet-tiny_simple-pyramid_300i_demo.py
        multi_depth=True,
        drop_path_rate=0.0),
    neck=[
        dict(
            type='mmsupervit.ColumnPyramidNeck',
            in_channels=embed_dims,
            scales=(4, 2, 1, 0.5),
            norm_cfg=norm_cfg),
        dict(
            type='FPN',
            in_channels=[embed_dims] * 4,
            out_channels=channels,
            num_outs=5,
            norm_cfg=norm_cfg),
    ],
    # objects are 10-60 px: anchors of 16-256 px on strides 4-64
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels, fc_out_channels=256, num_classes=4),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            num_convs=2,
            in_channels=channels,
            conv_out_channels=channels,
            num_classes=4)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=100),
        # few objects per image: fewer, more balanced RoI samples
        rcnn=dict(sampler=dict(num=32, pos_fraction=0.5))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=10)))

dataset_type = 'CocoDataset'
data_root = 'data/demo/coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star'),
    palette=[(220, 20, 60), (0, 160, 60), (30, 80, 230), (230, 190, 0)])
# mmsupervit.LoadDetAnnotations: mmdet's LoadAnnotations plus checks that
# name the image of a malformed annotation (mmsupervit/datasets/checks.py)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmsupervit.LoadDetAnnotations', with_bbox=True,
        with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(
        type='mmsupervit.LoadDetAnnotations', with_bbox=True,
        with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
# No test-time augmentation: mmdet's DetTTAModel merges boxes only, not
# instance masks.
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False)
test_evaluator = val_evaluator

max_iters = 300
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', power=1.0, eta_min=1e-5, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=100,
        max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=4)
