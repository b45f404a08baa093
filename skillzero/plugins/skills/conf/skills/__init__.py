"""The ``skills`` group entries of the skills plugin."""
