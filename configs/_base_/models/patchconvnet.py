# PatchConvNet backbone settings shared by its UperNet and Mask R-CNN configs,
# with the official ImageNet-1k weights (facebookresearch/deit,
# README_patchconvnet.md). This file is the one place that decides how the
# stride-16 column becomes a pyramid (`pyramid_neck`, here the XCiT one from
# column_pyramid.py): the UperNet and Mask R-CNN fragments both take it.
_base_ = ['./column_pyramid.py']

# the official ImageNet-1k weights of each variant
official_weights = {
    arch: dict(
        type='Pretrained',
        checkpoint=f'https://dl.fbaipublicfiles.com/deit/{arch}_224_1k.pth')
    for arch in ('s60', 's120', 'b60', 'b120')
}
patchconvnet = dict(
    type='mmsupervit.PatchConvNet',
    arch='S60',
    init_cfg=official_weights['s60'])
