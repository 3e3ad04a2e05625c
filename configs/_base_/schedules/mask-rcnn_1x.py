# COCO instance segmentation, 1x: mmdet's dataset (single scale 1333x800,
# flip, 2 images per GPU x 8 GPUs), 12 epochs with lr steps at 8 and 11
# (_base_/schedules/schedule_1x.py). The optimizer comes from the
# recipe-specific files that inherit this one.
_base_ = ['../datasets/coco_instance.py',
          'mmdet::_base_/schedules/schedule_1x.py',
          'mmdet::_base_/default_runtime.py']
