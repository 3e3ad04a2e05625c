# ADE20K 160k iterations with the warm-up and decay shared by mmseg's ViT/DeiT
# and ConvNeXt UperNet recipes (configs/vit/vit_vit-b16_mln_upernet_8xb2-
# 160k_ade20k-512x512.py, configs/convnext/convnext-*_upernet_8xb2-amp-160k_
# ade20k-512x512.py): linear warm-up from 1e-6 over 1500 iterations, then poly
# decay (power 1) to 0. The optimizer comes from upernet_vit.py or
# upernet_convnext.py.
_base_ = ['mmseg::_base_/schedules/schedule_160k.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500,
         end=160000),
]
