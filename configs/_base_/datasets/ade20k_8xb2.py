# ADE20K data: mmseg's own pipelines (512x512 crops, multi-scale + flip TTA
# under `tools/test.py --tta`), 2 images per GPU x 8 GPUs = batch 16.
_base_ = ['mmseg::_base_/datasets/ade20k.py',
          'mmseg::_base_/default_runtime.py']
# mmseg's pipelines with mmsupervit.LoadSegAnnotations in place of
# LoadAnnotations: a corrupt map, a map of another size than its image or a
# label above 150 (other than 255) fails naming the file instead of being
# trained on (mmsupervit/datasets/checks.py). reduce_zero_label comes from the
# dataset (ADE20KDataset: True), as in mmseg.
crop_size = (512, 512)
load_annotations = dict(type='mmsupervit.LoadSegAnnotations', num_classes=150)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    load_annotations,
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    load_annotations,
    dict(type='PackSegInputs')
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale_factor=r, keep_ratio=True)
                for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ], [load_annotations], [dict(type='PackSegInputs')]
        ])
]
train_dataloader = dict(
    batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
# learning rates are tuned for a total batch of 16
auto_scale_lr = dict(enable=False, base_batch_size=16)
