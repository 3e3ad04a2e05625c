from . import cpu_distributed, hooks, optimizers  # noqa: F401
