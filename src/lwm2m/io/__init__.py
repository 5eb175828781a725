"""asyncio adapters (layer L3): the CoAP endpoint over UDP (:mod:`lwm2m.io.coap_endpoint`) and
its transport/security seam (:mod:`lwm2m.io.coap_transport`)."""

from __future__ import annotations
