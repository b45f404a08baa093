"""Hydra config entries of the WebShop plugin (``env=webshop``)."""
