# mmdet's ConvNeXt-T Mask R-CNN optimizer (configs/convnext/mask-rcnn_convnext-
# t-p4-w7_fpn_amp-ms-crop-3x_coco.py; `convnext_optim_wrapper` in
# optimizers.py) on Swin-T's 1x schedule (the file this inherits: 1000
# warm-up iterations, steps 8 and 11): mmdet has no ConvNeXt 1x config.
_base_ = ['./mask-rcnn_swin_1x.py']

optim_wrapper = dict(_delete_=True, **_base_.convnext_optim_wrapper)
