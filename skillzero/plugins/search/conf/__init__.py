"""Hydra config groups of the Search-QA plugin."""
