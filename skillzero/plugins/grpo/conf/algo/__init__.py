"""The ``algo`` config group entries ``grpo`` and ``gigpo``."""
