"""A scripted GlobalPlatform SERAM 2.0 Remote Agent for tests: a FastAPI app with the two routes
of GlobalPlatform/SERAM ``spec/gpseram.yaml`` (POST ``/gp/seram/handshake`` and
``/gp/seram/remoteManagement``, ``sessionId`` in the query)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

HANDSHAKE_RESPONSE = {
    "chosenTransportProtocol": "HTTPS",
    "chosenDataFormat": "application/json",
    "chosenVersion": "2.0.0",
}
START = {"delay": 0, "ramCommands": [{"ramCommandType": "ramStartCommand"}]}
STOP = {"ramCommands": [{"ramCommandType": "ramStopCommand"}]}
READ_BINARY = "00B0000000"
HANG = object()
"""A step of the script: the Remote Agent answers only when the test releases it."""


def se_ram(*capdus: str, delay: int | None = 0) -> dict[str, Any]:
    order: dict[str, Any] = {"ramCommands": [{"ramCommandType": "seRamCommand",
                                              "listOfCAPDU": list(capdus)}]}  # fmt: skip
    if delay is not None:
        order["delay"] = delay
    return order


@dataclass
class RemoteAgent:
    """A scripted Remote Agent: the handshake answers ``handshake_status``; each Report gets the
    next step of ``script`` (an Order as a dict, a starlette Response, or :data:`HANG`). It keeps
    every request body, whether the session cookie it set came back, and the Content-Type."""

    script: list[Any] = field(default_factory=list)
    handshake_status: int = 200
    handshakes: list[Any] = field(default_factory=list)
    reports: list[Any] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    cookies: list[str | None] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/gp/seram/handshake")
        async def handshake(request: Request, sessionId: str) -> Response:
            self.content_types.append(request.headers.get("content-type"))
            self.handshakes.append(json.loads(await request.body()))
            if self.handshake_status != 200:
                return Response(status_code=self.handshake_status)
            self.sessions.add(sessionId)
            answer = JSONResponse(HANDSHAKE_RESPONSE)
            answer.set_cookie("ra", sessionId)
            return answer

        @app.post("/gp/seram/remoteManagement")
        async def remote_management(request: Request, sessionId: str) -> Response:
            if sessionId not in self.sessions:
                return Response(status_code=404)
            self.content_types.append(request.headers.get("content-type"))
            self.cookies.append(request.cookies.get("ra"))
            self.reports.append(json.loads(await request.body()))
            step = self.script.pop(0) if self.script else {"delay": 0}
            if step is HANG:
                await self.release.wait()
                return JSONResponse({})
            if isinstance(step, Response):
                return step
            return JSONResponse(step)

        return app
