from . import backbones, necks  # noqa: F401
from . import budget  # noqa: F401
