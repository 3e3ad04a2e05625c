# Demo: Mask R-CNN on the tiny PatchConvNet as in the paper: the backbone
# returns its last block only (with the official final norm) and
# SimplePyramidNeck (ViTDet's simple feature pyramid) builds strides 4-64
# from that one stride-16 map; no FPN after it, as in ViTDet. Data, heads and
# schedule come from mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py (the
# multi-depth variant of this project); only the backbone outputs and the
# neck differ. Both are compared in configs/patchconvnet/README.md.
_base_ = ['./mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py']

embed_dims = 64
channels = 64
model = dict(
    backbone=dict(multi_depth=False),
    neck=dict(
        _delete_=True,
        type='mmsupervit.SimplePyramidNeck',
        in_channels=embed_dims,
        out_channels=channels,
        scale_factors=(4, 2, 1, 0.5),
        num_outs=5,  # + stride 64 for the RPN, like FPN's num_outs=5
        norm_cfg=dict(type='LN2d', eps=1e-6)))
