"""The bottom layer: hook specs and the contracts that plugins implement.

What a plugin may rely on and must provide: the hooks (:mod:`~skillzero.contracts.hookspecs`),
text environments, prompts and action parsers (:mod:`~skillzero.contracts.env`), skill
providers (:mod:`~skillzero.contracts.skills`), rollout backends
(:mod:`~skillzero.contracts.rollout`), loss terms and advantage estimators
(:mod:`~skillzero.contracts.losses`), trainer callbacks
(:mod:`~skillzero.contracts.callbacks`), the TensorDict layout of a batch
(:mod:`~skillzero.contracts.trajectory`) and how factories read their settings
(:mod:`~skillzero.contracts.settings`).

Modules here import nothing else of skillzero: the registry sits above them and the
training loop (:mod:`skillzero.core`) above both (``tests/test_layers.py`` checks it). The
old names (``skillzero.core.env`` and so on) stay importable.
"""
