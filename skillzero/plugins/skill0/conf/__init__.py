"""Hydra config entries of the SKILL0 plugin (``algo=skill0``)."""
