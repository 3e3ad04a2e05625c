# Demo: UperNet on the tiny PatchConvNet with this project's multi-depth
# extension (not in the paper): blocks 0, 2, 3 and 5, each with a new output
# norm, resampled one per level by ColumnPyramidNeck (XCiT's adapter) and
# projected to 64 channels. Everything else comes from the paper variant,
# patchconvnet-tiny_upernet_1xb4-300i_demo-128x128.py; both are compared in
# configs/patchconvnet/README.md.
_base_ = ['./patchconvnet-tiny_upernet_1xb4-300i_demo-128x128.py']

embed_dims = 64
channels = 64
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(multi_depth=True),
    neck=dict(
        _delete_=True,
        type='mmsupervit.ColumnPyramidNeck',
        in_channels=embed_dims,
        out_channels=channels,
        scales=(4, 2, 1, 0.5),
        norm_cfg=norm_cfg))
