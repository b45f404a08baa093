"""The ``algo`` group entries of the SKILL0 plugin."""
