"""The ``lwm2m`` command line (L4: may import every layer)."""
