# UperNet with an FCN auxiliary head for ADE20K (150 classes): mmseg's
# _base_/models/upernet_r50.py, whose SyncBN (`norm_cfg`) the two heads keep,
# with the auxiliary head on the stride-16 level (in_index 2, loss weight
# 0.4). A single process runs SyncBN as BN (mmengine's Runner reverts it when
# training is not distributed). Every `in_channels='auto'` is read from the
# backbone's output_shape() by mmsupervit.EncoderDecoder, so a family
# fragment only sets the backbone (and, for a column, the pyramid neck).
_base_ = ['mmseg::_base_/models/upernet_r50.py']
custom_imports = dict(imports=['mmsupervit'], allow_failed_imports=False)

# the heads' norm (upernet_r50.py's `norm_cfg`), under a name of our own for
# the fragments that use it in the backbone too
syncbn_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='mmsupervit.EncoderDecoder',
    pretrained=None,
    data_preprocessor=dict(size=(512, 512)),
    decode_head=dict(in_channels='auto', num_classes=150),
    auxiliary_head=dict(in_channels='auto', num_classes=150))
