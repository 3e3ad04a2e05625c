# The pieces a mask-rcnn_*_ms-3x_coco.py config applies on top of its 1x
# sibling (mmengine does not allow a second base that sets the same keys, so
# they have names of their own):
# * multi-scale training data of mmdet's ms-3x recipe (configs/common/
#   ms-poly_3x_coco-instance.py): shorter side drawn from 640..800, longer
#   side at most 1333, flip, polygon masks;
# * 36 epochs with lr steps at 27 and 33, as mmdet's Swin-T/ConvNeXt-T 3x
#   configs (mmdet's ResNet ms-poly-3x runs the same schedule as 12 epochs
#   over a 3x RepeatDataset with steps at 9 and 11).
# The warm-up stays the 1x sibling's.
ms_3x_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='mmsupervit.LoadDetAnnotations', with_bbox=True,
         with_mask=True, poly2mask=False),
    dict(type='RandomResize', scale=[(1333, 640), (1333, 800)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
ms_3x_max_epochs = 36
ms_3x_lr_steps = dict(type='MultiStepLR', begin=0, end=ms_3x_max_epochs,
                      by_epoch=True, milestones=[27, 33], gamma=0.1)
