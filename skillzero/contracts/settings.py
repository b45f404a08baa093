"""Reading a component's settings, whatever form they arrive in.

Factories receive their configs as plain dicts, OmegaConf nodes or dataclasses
(``register_envs``' ``config`` schema); :func:`cfg_get` reads a key from any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cfg_get(cfg: Mapping[str, Any] | Any | None, key: str, default: Any = None) -> Any:
    """``cfg[key]`` for a dict, an OmegaConf node or a dataclass; ``default`` when the
    key is absent or null. Factories receive configs in all three forms."""
    if cfg is None:
        return default
    if isinstance(cfg, Mapping) or hasattr(cfg, "get"):
        try:
            value = cfg.get(key, default)
        except Exception:  # a structured node without that key
            value = default
    else:
        value = getattr(cfg, key, default)
    return default if value is None else value


__all__ = ["cfg_get"]
