# PatchConvNet backbone settings shared by its UperNet and Mask R-CNN configs,
# with the official ImageNet-1k weights (facebookresearch/deit,
# README_patchconvnet.md). This file is the one place that decides how the
# stride-16 column becomes a pyramid (`pyramid_neck`, here the XCiT one from
# column_pyramid.py): the UperNet and Mask R-CNN fragments both take it.
_base_ = ['./column_pyramid.py']

patchconvnet = dict(
    type='mmsupervit.PatchConvNet',
    arch='S60',
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://dl.fbaipublicfiles.com/deit/s60_224_1k.pth'))
