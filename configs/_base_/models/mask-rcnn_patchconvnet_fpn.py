# Mask R-CNN on PatchConvNet: the last block's stride-16 map goes through the
# simple feature pyramid of patchconvnet.py with a fifth, max-pooled level
# (strides 4-64), which takes FPN's place as in ViTDet; no norm in the heads,
# as mmdet. The backbone has no BN (LayerNorm).
_base_ = ['./mask-rcnn_fpn.py', './patchconvnet.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.patchconvnet),
    neck=dict(_delete_=True, num_outs=5, **_base_.pyramid_neck))
