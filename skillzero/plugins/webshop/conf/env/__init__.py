"""The ``env`` config group entry ``webshop``."""
