"""Public alias: `from dqn.config import Config` (the config lives in dqn.base.config)."""

from dqn.base.config import Config

__all__ = ["Config"]
