# Demo: classification pretraining (mmpretrain) of the tiny PatchConvNet of
# patchconvnet-tiny_upernet_1xb4-300i_demo-128x128.py and
# mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py on the demo object crops. Data,
# head and schedule come from supervit-tiny_1xb32-200i_demo-crops-64x64.py;
# global average pooling of the last block's map stands in for the official
# attention-pooling head, which the dense models do not use.
_base_ = ['./supervit-tiny_1xb32-200i_demo-crops-64x64.py']

embed_dims = 64
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.PatchConvNet',
        # the dense demo's layer scale (0.1, not the official 1e-6), so the
        # checkpoint loads into it as is
        arch=dict(embed_dims=embed_dims, depth=6, layer_scale_init_value=0.1),
        with_attn_pool=True,
        out_type='cls_token',
        drop_path_rate=0.0),
    head=dict(in_channels=embed_dims))
