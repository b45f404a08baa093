"""skillzero: reinforcement learning of LLM agents in multi-turn environments.

The contracts (:mod:`skillzero.contracts`) define the hooks and what plugins implement,
the registry (:mod:`skillzero.registry`) discovers plugins through the ``skillzero``
entry-point group, and the core (:mod:`skillzero.core`) is the training machinery; every
environment, skill provider, rollout backend, loss term and algorithm comes from a
plugin. Importing this package is cheap: it imports neither torch nor any plugin.
"""

from skillzero.contracts.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
