"""LwM2M operations (LwM2M-TS-Core §6) and their CoAP mapping (LwM2M-TS-Transport §6):
``requests`` (one frozen value per operation), ``responses``, ``coap_mapping``."""
