"""Tests of the sans-IO OSCORE core (RFC 8613), :mod:`lwm2m.oscore`."""
