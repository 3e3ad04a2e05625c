from . import auto_channels, backbones, budget, necks  # noqa: F401
