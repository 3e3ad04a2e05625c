# SuperViT budget training (mmsupervit/models/budget.py): each iteration runs
# four sub-networks on the batch (input scale 1 and a sampled smaller scale,
# each at keep 1 with the task loss and at a sampled keep rate distilled
# towards it) and makes one optimizer step. The sets and weights are the
# official ones (lmbxmu/SuperViT deit/engine.py). UperNet distils the decode
# head's per-pixel class distribution (KL, temperature 1), Mask R-CNN the FPN
# maps (MSE). A config takes one of these with `model.budget_cfg`.
budget_sets = dict(
    keep_rates=(0.5, 0.7),
    input_scales=(128 / 224, 160 / 224, 192 / 224),
    task_loss_weight=1.0,
    kd_loss_weight=1.0)
upernet_budget = dict(
    type='mmsupervit.BudgetEncoderDecoder',
    budget_cfg=dict(temperature=1.0, **budget_sets))
mask_rcnn_budget = dict(
    type='mmsupervit.BudgetMaskRCNN', budget_cfg=budget_sets)
