# Demo: Mask R-CNN on a tiny SuperViT (embed 64, depth 6, 2 heads) trained
# from scratch on the synthetic demo data (COCO layout). Data, heads and
# schedule come from the PatchConvNet demo config; only the backbone differs.
_base_ = ['./mask-rcnn_patchconvnet-tiny_fpn_300i_demo.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsupervit.SuperViT',
        arch=dict(embed_dims=64, depth=6, num_heads=2),
        out_indices=(1, 3, 4, 5),
        pos_embed_size=128,  # the table trained at 128 px fits the 8x8 grid
        drop_path_rate=0.0))
# SuperViT keeps one position table per trained size and uses one of them,
# so distributed (DDP) training must tolerate parameters without gradients.
find_unused_parameters = True
