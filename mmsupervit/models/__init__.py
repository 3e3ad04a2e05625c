from . import auto_channels, backbones, necks  # noqa: F401
