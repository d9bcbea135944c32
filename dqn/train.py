"""Public alias: `from dqn.train import train` (the training loop lives in dqn.core.train)."""

from dqn.core.train import train

__all__ = ["train"]
