"""LwM2M 1.1 enabler."""
