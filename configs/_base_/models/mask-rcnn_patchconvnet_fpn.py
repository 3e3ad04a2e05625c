# Mask R-CNN on PatchConvNet: the stride-16 column goes through the pyramid
# neck of patchconvnet.py (SyncBN inside), then FPN (no norm, as mmdet). The
# backbone has no BN (LayerNorm).
_base_ = ['./mask-rcnn_fpn.py', './patchconvnet.py']

model = dict(
    backbone=dict(_delete_=True, **_base_.patchconvnet),
    neck=[_base_.pyramid_neck, _base_.fpn_neck])
