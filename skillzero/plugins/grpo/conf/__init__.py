"""Hydra config entries of the GRPO plugin (``algo=grpo``, ``algo=gigpo``)."""
