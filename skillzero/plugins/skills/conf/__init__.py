"""Hydra config entries of the skills plugin (``skills=category|all|embedding``)."""
