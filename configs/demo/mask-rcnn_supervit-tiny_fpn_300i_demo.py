# Demo: Mask R-CNN on the tiny SuperViT of the UperNet demo (embed 96, depth
# 6, 2 heads; supervit-tiny_upernet_1xb4-300i_demo-128x128.py, so one
# classification checkpoint initialises both) trained on the synthetic demo
# data (COCO layout). Data, heads and schedule come from the PatchConvNet
# demo config; only the backbone and the widths of the necks' inputs differ.
_base_ = ['./mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py']

embed_dims = 96
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.SuperViT',
        arch=dict(embed_dims=embed_dims, depth=6, num_heads=2),
        out_indices=(1, 3, 4, 5),
        # at input scale 1 the 224 px table is used (resampled to the grid);
        # see the UperNet demo config for pos_embed_size
        drop_path_rate=0.0),
    neck=[
        dict(_base_.model.neck[0], in_channels=embed_dims),
        dict(_base_.model.neck[1], in_channels=[embed_dims] * 4),
    ])
# SuperViT keeps one position table per trained size and uses one of them,
# so distributed (DDP) training must tolerate parameters without gradients.
find_unused_parameters = True
