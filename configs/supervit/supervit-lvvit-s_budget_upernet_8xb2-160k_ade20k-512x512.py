# SuperViT lvvit-s UperNet trained for every compute budget at once: each
# iteration runs four sub-networks on the batch (input scale 1 and a sampled
# smaller scale, each at keep 1 with the task loss and at a sampled keep rate
# distilled towards it) and makes one optimizer step; see
# mmsupervit/models/budget.py. Everything else is the single-budget config.
_base_ = ['./supervit-lvvit-s_upernet_8xb2-160k_ade20k-512x512.py']

model = dict(
    type='mmsupervit.BudgetEncoderDecoder',
    # the official SuperViT sets and weights (lmbxmu/SuperViT deit/engine.py)
    budget_cfg=dict(
        keep_rates=(0.5, 0.7),
        input_scales=(128 / 224, 160 / 224, 192 / 224),
        task_loss_weight=1.0,
        kd_loss_weight=1.0,
        temperature=1.0))
