"""Hydra config entries of the SDAR plugin (``algo=sdar`` and its baselines)."""
