# The 4-level pyramid of a stride-16 column (SuperViT, PatchConvNet), as XCiT
# builds it for UperNet and Mask R-CNN (facebookresearch/xcit
# detection/backbone/xcit.py, FPN1-4): x4 = deconv, BN, GELU, deconv; x2 =
# deconv; x1 = identity; x1/2 = max-pool, one map per scale. XCiT hard-codes
# SyncBN there; here it is the config's norm, SyncBN for training at 2 images
# per GPU (run as BN in a single process).
pyramid_neck = dict(
    type='mmsupervit.ColumnPyramidNeck',
    in_channels='auto',
    scales=(4, 2, 1, 0.5),
    norm_cfg=dict(type='SyncBN', requires_grad=True))
