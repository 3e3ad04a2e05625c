# Demo: UperNet on a tiny PatchConvNet (embed 64, depth 6) trained from
# scratch on the synthetic demo data (ADE20K layout), as in the paper: the
# backbone returns its last block only (with the official final norm) and
# SimplePyramidNeck (ViTDet's simple feature pyramid) builds strides 4-32
# from that one stride-16 map. Data, heads and schedule come from the
# SuperViT UperNet demo; the multi-depth variant of this project is
# patchconvnet-tiny-multi-depth_upernet_1xb4-300i_demo-128x128.py. Both are
# compared in configs/patchconvnet/README.md.
_base_ = ['./supervit-tiny_upernet_1xb4-300i_demo-128x128.py']

embed_dims = 64
channels = 64
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.PatchConvNet',
        # from scratch: a layer scale of 0.1 instead of the official 1e-6
        # lets the residual blocks contribute from the first iterations
        arch=dict(embed_dims=embed_dims, depth=6, layer_scale_init_value=0.1),
        drop_path_rate=0.0),
    neck=dict(
        _delete_=True,
        type='mmsupervit.SimplePyramidNeck',
        in_channels=embed_dims,
        out_channels=channels,
        scale_factors=(4, 2, 1, 0.5),
        norm_cfg=dict(type='LN2d', eps=1e-6)))
# every PatchConvNet parameter is used (unlike SuperViT's position tables)
find_unused_parameters = False
