# Demo: the SuperViT-tiny UperNet demo trained for every compute budget at
# once (four sub-networks per iteration, one optimizer step; see
# mmsupervit/models/budget.py). Same data, schedule and seed as the
# single-budget demo, so the two can be compared budget by budget with
# tools/analysis_tools/budget_sweep.py.
_base_ = ['./supervit-tiny_upernet_1xb4-300i_demo-128x128.py']

model = dict(
    type='mmsupervit.BudgetEncoderDecoder',
    budget_cfg=dict(
        keep_rates=(0.5, 0.7),
        input_scales=(128 / 224, 160 / 224, 192 / 224),
        task_loss_weight=1.0,
        kd_loss_weight=1.0,
        temperature=1.0))
