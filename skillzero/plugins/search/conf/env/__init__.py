"""The env=search entry."""
