from . import atomic_backend, hooks, optimizers  # noqa: F401
