# PatchConvNet backbone settings shared by its UperNet and Mask R-CNN configs,
# with the official ImageNet-1k weights (facebookresearch/deit,
# README_patchconvnet.md). As in the paper, the dense heads are fed by the
# column's last block only (the backbone's default: one stride-16 map, put
# through the official final LayerNorm, no new layer), and the neck builds
# the pyramid from that one map: `pyramid_neck`, ViTDet's simple feature
# pyramid (mmsupervit.SimplePyramidNeck: deconvolutions up, max-pool down,
# 1x1 + 3x3 convs with LayerNorm per level). The four-tap variant with new
# output norms is this project's extension (`multi_depth=True`, compared on
# the demo data in configs/patchconvnet/README.md).
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
pyramid_neck = dict(
    type='mmsupervit.SimplePyramidNeck',
    in_channels='auto',
    out_channels=256,
    scale_factors=(4, 2, 1, 0.5))
