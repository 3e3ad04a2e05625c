# COCO instances: mmdet's own dataset settings, with
# mmsupervit.LoadDetAnnotations in place of LoadAnnotations: a malformed
# polygon or an object without segmentation fails or is logged naming the
# image, where mmdet alone drops it silently or fails without the file name
# (mmsupervit/datasets/checks.py).
_base_ = ['mmdet::_base_/datasets/coco_instance.py']
load_annotations = dict(
    type='mmsupervit.LoadDetAnnotations', with_bbox=True, with_mask=True)
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    load_annotations,
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    load_annotations,
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
