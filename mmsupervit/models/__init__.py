from . import backbones, necks  # noqa: F401
from .auto_channels import AUTO, EncoderDecoder, MaskRCNN  # noqa: F401
