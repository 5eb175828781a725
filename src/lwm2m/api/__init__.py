"""The REST API of the LwM2M server (layer L4): FastAPI over a running
:class:`~lwm2m.io.lwm2m_server.LwM2MServer`, served by uvicorn in the same event loop as the
CoAP endpoint.

- :mod:`lwm2m.api.app` -- :func:`create_app` and the routes;
- :mod:`lwm2m.api.schemas` -- the JSON bodies (pydantic models, hence the OpenAPI document);
- :mod:`lwm2m.api.errors` -- failures as HTTP statuses with ``{"error": ...}`` bodies;
- :mod:`lwm2m.api.events` -- server events as Server-Sent Events;
- :mod:`lwm2m.api.auth` -- bearer tokens (:class:`ApiTokens`), when the API is to require them;
- :mod:`lwm2m.codec.node_json` -- nodes as plain JSON, typed by the client's object model.

Usage::

    server = LwM2MServer()
    await server.start(("0.0.0.0", 5683))
    config = uvicorn.Config(create_app(server), host="127.0.0.1", port=8080)
    await uvicorn.Server(config).serve()
"""

from lwm2m.api.app import create_app
from lwm2m.api.auth import ApiTokens, TokenScope

__all__ = ["ApiTokens", "TokenScope", "create_app"]
