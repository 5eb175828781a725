"""``lwm2m server`` — an LwM2M server that prints what its clients do.

It binds ``--bind HOST:PORT`` (default ``0.0.0.0:5683``), keeps registrations in memory or in
SQLite (``--store sqlite:PATH``: registrations and observations survive a restart) or Redis
(``--store redis://HOST:PORT/DB``: they survive too, and several servers may share them) and
prints one
line per event: registered, updated, deregistered, expired, notification, send, awake,
sleeping (see :mod:`lwm2m.cli.printing`). ``--observe PATH`` observes a path on every client
that registers, so notifications show up. Ctrl-C (or SIGTERM) stops it cleanly.

**DTLS** (``coaps://``, default port 5684): clients are described in a security store —
``--security-store memory`` (default), ``sqlite:PATH`` or a Redis URL (kept across restarts) —
filled from

- ``--psk ENDPOINT:IDENTITY:HEXKEY`` (repeatable; IDENTITY may not contain ``:`` — leave it
  empty, ``ENDPOINT::HEXKEY``, to use the endpoint name; ENDPOINT may contain ``:``);
- ``--rpk ENDPOINT:PEMFILE`` (repeatable): the client's raw public key (a PEM/DER public key or
  certificate);
- X.509 clients are accepted with ``--trust-anchor PEM`` (repeatable): their chain must validate,
  and their certificate CN or a subjectAltName must be the endpoint name.

**OSCORE** (RFC 8613, over ``coap://``): ``--oscore ENDPOINT:SENDER:RECIPIENT:SECRET:SALT``
(repeatable; hex; the client's Sender and Recipient IDs as in its /21 instance; SALT may be
empty). OSCORE clients alone keep the server on ``coap://`` (port 5683).

RPK and X.509 need the server's own key, ``--key PEM`` (P-256), and for X.509 its certificate
chain ``--cert PEM``. ``--allow-plain`` also serves NoSec clients on the same socket (by default
a DTLS server serves only the endpoints of its store). A Register whose ``ep`` does not match
the authenticated identity gets 4.00 and a warning line (never a key).

The helpers shared by the long-running commands live here too: :func:`parse_address` and
:func:`stop_on_signals`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import click
from cryptography import x509
from rich.console import Console

from lwm2m.cli.printing import (
    info_line,
    make_console,
    node_inline,
    response_text,
    server_event_line,
)
from lwm2m.client.dtls_security import load_certificates, load_private_key
from lwm2m.dtls import SoftwareSigningKey
from lwm2m.errors import Lwm2mError
from lwm2m.io.coap_transport import SecurityLayer
from lwm2m.io.lwm2m_server import LwM2MServer, dtls_layer_from_store, public_key_spki
from lwm2m.model import Path
from lwm2m.model.registry import ModelRegistry, default_registry
from lwm2m.secure.object import register_secure_component_object
from lwm2m.server.errors import RequestFailed
from lwm2m.server.events import Registered, SecureComponentReader, ServerEvent
from lwm2m.server.security import SecurityInfo
from lwm2m.store.base import RegistrationStore, SecurityStore
from lwm2m.store.memory import MemorySecurityStore
from lwm2m.store.sqlite import SqliteRegistrationStore, SqliteSecurityStore

if TYPE_CHECKING:  # the web extra is imported only for --http
    from lwm2m.api.auth import ApiTokens

__all__ = [
    "DtlsOptions",
    "bind_failed",
    "build_security",
    "load_registry",
    "open_store",
    "parse_address",
    "parse_store",
    "run_server",
    "server_command",
    "stop_on_signals",
]

#: Bound on each request ``--observe`` makes.
REQUEST_TIMEOUT = 30.0


def parse_address(text: str, option: str = "--bind") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:5683`` for IPv6; an empty host is ``0.0.0.0``)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise click.ClickException(f"{option}: {text!r} is not HOST:PORT (e.g. 127.0.0.1:5683)")
    return (host.strip("[]") or "0.0.0.0", int(port))


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(spec: str) -> bool:
    """Whether a :func:`parse_store` result names a Redis server (else it is a SQLite file)."""
    return spec.startswith(_REDIS_SCHEMES)


def describe_store(spec: str | None) -> str:
    """A :func:`parse_store` result as shown to the user: a Redis URL without its password."""
    if spec is None:
        return "memory"
    if not is_redis_url(spec):
        return f"sqlite:{spec}"
    parts = urlsplit(spec)
    if parts.password is None:
        return spec
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:" if parts.username else ":"
    return urlunsplit(parts._replace(netloc=f"{user}***@{netloc}"))


def _where(spec: str) -> str:
    """A store in an error message: the SQLite path, or the Redis URL without its password."""
    return describe_store(spec) if is_redis_url(spec) else spec


def parse_store(text: str, option: str = "--store") -> str | None:
    """``memory`` → None; ``sqlite:PATH`` → PATH; a Redis URL (``redis://[:PASSWORD@]HOST:PORT
    [/DB]``, ``rediss://…`` for TLS, ``unix://SOCKET``) → the URL, which several servers may
    share. Anything else is a one-line error naming ``option`` (never echoing a password)."""
    if text == "memory":
        return None
    if is_redis_url(text):
        try:
            parts = urlsplit(text)
            valid = bool(parts.hostname or (parts.scheme == "unix" and parts.path))
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            valid = False
        if valid:
            return text
    kind, sep, path = text.partition(":")
    if kind == "sqlite" and sep and path and "://" not in path:
        return path
    shown = text if "@" not in text else "…@" + text.rpartition("@")[2]
    raise click.ClickException(
        f"{option}: {shown!r} is not 'memory', 'sqlite:PATH' or a Redis URL (redis://HOST:PORT)"
    )


def _redis(option: str) -> Any:
    """:mod:`lwm2m.store.redis`, imported when a Redis URL is given (redis-py is the optional
    ``redis`` extra)."""
    try:
        from lwm2m.store import redis as module
    except ImportError:
        raise click.ClickException(
            f"{option}: a Redis store needs redis-py: pip install 'lwm2m[redis]'"
        ) from None
    return module


async def open_store(path: str | None) -> RegistrationStore | None:
    """The registration store for :func:`parse_store`'s result (None: the default memory)."""
    if path is None:
        return None
    try:
        if is_redis_url(path):
            store: RegistrationStore = await _redis("--store").RedisRegistrationStore.open(path)
            return store
        return await SqliteRegistrationStore.open(path)
    except click.ClickException:
        raise
    except Exception as exc:  # OSError, sqlite3.Error, redis errors, the stores' own errors
        raise click.ClickException(f"--store: cannot open {_where(path)}: {exc}") from None


def parse_psk(text: str) -> SecurityInfo:
    """``ENDPOINT:IDENTITY:HEXKEY`` (empty IDENTITY: the endpoint name). Errors never repeat
    the key."""
    endpoint, identity, key_hex = ["", "", "", *text.rsplit(":", 2)][-3:]
    if not endpoint or text.count(":") < 2:
        raise click.ClickException("--psk: expected ENDPOINT:IDENTITY:HEXKEY")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if not key:
        raise click.ClickException(f"--psk {endpoint}: the key is not (non-empty) hex")
    return SecurityInfo.psk(endpoint, identity or endpoint, key)


def parse_oscore(text: str) -> SecurityInfo:
    """``ENDPOINT:SENDER:RECIPIENT:SECRET:SALT`` (hex; ENDPOINT may contain ``:``, SALT may be
    empty). Errors never repeat the secret."""
    parts = text.rsplit(":", 4)
    if len(parts) != 5 or not parts[0]:
        raise click.ClickException("--oscore: expected ENDPOINT:SENDER:RECIPIENT:SECRET:SALT")
    endpoint, *fields = parts
    names = ("sender id", "recipient id", "master secret", "master salt")
    values: list[bytes] = []
    for name, field_text in zip(names, fields, strict=True):
        try:
            values.append(bytes.fromhex(field_text))
        except ValueError:
            raise click.ClickException(f"--oscore {endpoint}: the {name} is not hex") from None
    sender, recipient, secret, salt = values
    if not secret:
        raise click.ClickException(f"--oscore {endpoint}: the master secret is empty")
    try:
        return SecurityInfo.oscore_context(endpoint, sender, recipient, secret, master_salt=salt)
    except ValueError as exc:
        raise click.ClickException(f"--oscore {endpoint}: {exc}") from None


def _read(path: str, option: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise click.ClickException(f"{option}: cannot read {path}: {exc.strerror or exc}") from None


def parse_rpk(text: str) -> SecurityInfo:
    """``ENDPOINT:PEMFILE`` (the last ``:`` separates them)."""
    endpoint, sep, path = text.rpartition(":")
    if not sep or not endpoint or not path:
        raise click.ClickException("--rpk: expected ENDPOINT:PEMFILE")
    try:
        spki = public_key_spki(_read(path, "--rpk"))
    except ValueError as exc:
        raise click.ClickException(f"--rpk {endpoint}: {path}: {exc}") from None
    return SecurityInfo.rpk(endpoint, spki)


@dataclass(slots=True)
class DtlsOptions:
    """The DTLS options of ``lwm2m server`` / ``lwm2m bootstrap-server`` (files not read yet)."""

    entries: list[SecurityInfo] = field(default_factory=list)
    """Security entries from ``--psk`` / ``--rpk`` (or a bootstrap TOML file)."""
    security_store: str | None = None
    """A :func:`parse_store` result: a SQLite path or a Redis URL; None: memory."""
    trust_anchors: Sequence[str] = ()
    cert: str | None = None
    key: str | None = None
    allow_plain: bool = False

    @property
    def enabled(self) -> bool:
        """A security store is needed (DTLS or OSCORE clients)."""
        return bool(any(e.identity is not None for e in self.entries) or self.dtls)

    @property
    def dtls(self) -> bool:
        """``coaps://`` is served: DTLS clients, a security file or server credentials (OSCORE
        clients alone run over ``coap://``)."""
        return bool(
            any(e.identity is not None and e.mode != "oscore" for e in self.entries)
            or self.security_store
            or self.trust_anchors
            or self.cert
            or self.key
        )


async def open_security_store(spec: str) -> SecurityStore:
    """The SQLite (path) or Redis (URL) security store ``spec`` names (as ``parse_store``
    returned it); a one-line ClickException when it cannot be opened."""
    try:
        if is_redis_url(spec):
            store: SecurityStore = await _redis("--security-store").RedisSecurityStore.open(spec)
        else:
            store = await SqliteSecurityStore.open(spec)
    except click.ClickException:
        raise
    except Exception as exc:  # OSError, sqlite3.Error, redis errors, StoreError: one line
        raise click.ClickException(f"--security-store: cannot open {_where(spec)}: {exc}") from None
    return store


async def build_security(
    options: DtlsOptions,
) -> tuple[SecurityStore, SecurityLayer | None, bool, str]:
    """Open the security store, add the entries, build the ``coaps://`` layer (None when only
    OSCORE clients are configured: they run over ``coap://``).

    Returns the store (close it when done), the layer, whether NoSec clients without an entry
    may register, and a one-line description. Errors are one-line ClickExceptions.
    """
    signing_key = None
    chain: tuple[x509.Certificate, ...] = ()
    anchors: list[x509.Certificate] = []
    try:
        if options.key is not None:
            signing_key = SoftwareSigningKey(load_private_key(_read(options.key, "--key"), "--key"))
        if options.cert is not None:
            chain = load_certificates(_read(options.cert, "--cert"), "--cert")
        for path in options.trust_anchors:
            anchors.extend(load_certificates(_read(path, "--trust-anchor"), "--trust-anchor"))
    except Lwm2mError as exc:
        raise click.ClickException(str(exc)) from None
    if chain and signing_key is None:
        raise click.ClickException("--cert needs --key (the certificate's private key)")
    if anchors and signing_key is None:
        raise click.ClickException("--trust-anchor (X.509 clients) needs the server's --key")
    if any(e.mode == "rpk" for e in options.entries) and signing_key is None:
        raise click.ClickException("RPK clients (--rpk) need the server's --key")
    store: SecurityStore
    if options.security_store is None:
        store = MemorySecurityStore()
    else:
        store = await open_security_store(options.security_store)
    try:
        for entry in options.entries:
            await store.put(entry)
        infos = await store.all()
    except ValueError as exc:  # NonUniqueSecurityInfo: names endpoints and identities only
        await store.close()
        raise click.ClickException(f"security entries: {exc}") from None
    plain_entries = any(info.identity is None for info in infos)
    counts = {m: sum(1 for i in infos if i.mode == m) for m in ("psk", "rpk", "x509", "oscore")}
    oscore = f"OSCORE {counts['oscore']}"
    if not options.dtls:
        return store, None, options.allow_plain, oscore
    layer = dtls_layer_from_store(
        store,
        signing_key=signing_key,
        certificate_chain=chain,
        trust_anchors=anchors,
        # OSCORE clients run over coap:// on the same socket
        allow_plain=options.allow_plain or plain_entries or counts["oscore"] > 0,
    )
    parts = [f"PSK {counts['psk']}", f"RPK {counts['rpk']}"]
    if anchors:
        parts.append(f"X.509 ({len(anchors)} trust anchors)")
    if options.allow_plain:
        parts.append("plain CoAP too")
    elif plain_entries:
        parts.append("NoSec entries")
    described = "DTLS: " + ", ".join(parts)
    if counts["oscore"]:
        described += f"; {oscore} (coap://)"
    return store, layer, options.allow_plain, described


def bind_failed(bind: tuple[str, int], exc: OSError) -> click.ClickException:
    """The one-line message when a command cannot bind its socket (address in use, ...)."""
    return click.ClickException(f"cannot bind {bind[0]}:{bind[1]}: {exc.strerror or exc}")


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT / SIGTERM; a second one ends the process at once with exit
    status 130 and ``Aborted!`` on stderr (the clean-up, a De-register waiting for a server
    that is gone, say, is abandoned; stores commit per operation, so nothing is half-written).
    A KeyboardInterrupt raised wherever the loop happened to be would sometimes end in a
    traceback instead."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def handler(signum: signal.Signals) -> None:
        if stop.is_set():
            sys.stdout.flush()
            sys.stderr.write("Aborted!\n")
            sys.stderr.flush()
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler, sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Unix
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class _Observer:
    """``--observe``: observes the given paths on each client once it registered."""

    def __init__(self, server: LwM2MServer, paths: tuple[Path, ...], console: Console) -> None:
        self.server = server
        self.paths = paths
        self.console = console
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, event: ServerEvent) -> None:
        if isinstance(event, Registered) and self.paths:
            task = asyncio.get_running_loop().create_task(
                self._observe(event.registration.endpoint)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _observe(self, endpoint: str) -> None:
        for path in self.paths:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    handle = await self.server.observe(endpoint, path)
            except (RequestFailed, Lwm2mError, TimeoutError) as exc:
                self.console.print(
                    info_line("observe-failed", endpoint, str(path), str(exc), style="red")
                )
                continue
            response = handle.response
            shown = ""
            if response is not None and response.content is not None:
                shown = " " + node_inline(path, response.content)
            elif response is not None and response.composite is not None:
                shown = " " + ", ".join(node_inline(p, n) for p, n in response.composite.items())
            status = response_text(response) if response is not None else "-"
            self.console.print(info_line("observing", endpoint, str(path), status + shown))

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class HttpApi:
    """The REST API served by uvicorn inside the running event loop (``--http``)."""

    def __init__(self, server: Any, task: asyncio.Task[None], address: tuple[str, int]) -> None:
        self._server = server
        self._task = task
        self.address = address
        """The bound TCP address (port 0 resolved)."""

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task


def _web_missing() -> click.ClickException:
    return click.ClickException(
        "--http: the REST API needs FastAPI and uvicorn: pip install 'lwm2m[web]'"
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_api_tokens(
    path: str | None, bind: tuple[str, int] | None, no_auth: bool
) -> ApiTokens | None:
    """The REST API's bearer tokens from ``--http-token-file``, or None; refuses to serve
    device management without authentication beyond loopback unless ``--http-no-auth`` says so.
    """
    if bind is None:
        if path is not None or no_auth:
            raise click.UsageError("--http-token-file and --http-no-auth go with --http")
        return None
    if path is not None and no_auth:
        raise click.UsageError("give --http-token-file or --http-no-auth, not both")
    if path is None:
        if not no_auth and not is_loopback(bind[0]):
            raise click.UsageError(
                f"--http {bind[0]}:{bind[1]} is not a loopback address: give "
                "--http-token-file to require a bearer token, or --http-no-auth when a proxy "
                "in front authenticates"
            )
        return None
    try:
        from lwm2m.api import ApiTokens
    except ImportError:
        raise _web_missing() from None
    try:
        return ApiTokens.from_file(path)
    except ValueError as exc:
        raise click.ClickException(f"--http-token-file: {exc}") from None


async def start_http(
    server: LwM2MServer,
    security_store: SecurityStore | None,
    bind: tuple[str, int],
    tokens: ApiTokens | None = None,
) -> HttpApi:
    """Serve :func:`lwm2m.api.create_app` on ``bind`` (with ``tokens``: each request needs one
    of them); a one-line error when the ``web`` extra is missing or the address cannot be bound.
    The socket is bound here, not by uvicorn (which would exit the process on a failed bind)."""
    try:
        import uvicorn

        from lwm2m.api import create_app
    except ImportError:
        raise _web_missing() from None

    class Embedded(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # SIGINT and SIGTERM are the command's (stop_on_signals), not uvicorn's

    host, port = bind
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise click.ClickException(
            f"--http: cannot serve on {host}:{port}: {exc.strerror or exc}"
        ) from None
    bound = listener.getsockname()
    # On loopback, only the loopback names may appear in Host: a web page whose DNS name was
    # re-bound to 127.0.0.1 (DNS rebinding) cannot reach the API through the operator's browser.
    app = create_app(
        server,
        security_store=security_store,
        allowed_hosts=["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else None,
        tokens=tokens,
    )
    http = Embedded(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(http.serve(sockets=[listener]))
    task.add_done_callback(lambda _: listener.close())
    return HttpApi(http, task, (str(bound[0]), int(bound[1])))


async def run_server(
    bind: tuple[str, int],
    *,
    store_path: str | None,
    registry: ModelRegistry,
    observe: tuple[Path, ...],
    console: Console,
    stop: asyncio.Event | None = None,
    dtls: DtlsOptions | None = None,
    http: tuple[str, int] | None = None,
    http_tokens: ApiTokens | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGINT / SIGTERM when ``stop`` is None); with ``http``,
    the REST API (:mod:`lwm2m.api`) on that TCP address too, in the same event loop (with
    ``http_tokens``, each API request needs one of them)."""
    stop = stop if stop is not None else asyncio.Event()
    security_store: SecurityStore | None = None
    layer: SecurityLayer | None = None
    allow_plain = True
    described = ""
    if dtls is not None and dtls.enabled:
        security_store, layer, allow_plain, described = await build_security(dtls)
    try:
        store = await open_store(store_path)
    except BaseException:
        if security_store is not None:
            await security_store.close()
        raise
    server = LwM2MServer(
        store=store,
        registry=registry,
        security_store=security_store,
        security=layer,
        allow_plain=allow_plain,
    )
    observer = _Observer(server, observe, console)
    api: HttpApi | None = None
    server.add_listener(lambda event: console.print(server_event_line(event)))
    server.add_listener(SecureComponentReader(server.read, server.events.publish))
    server.add_listener(observer)
    try:
        with stop_on_signals(stop):
            try:
                await server.start(bind)
            except OSError as exc:
                raise bind_failed(bind, exc) from None
            host, port = server.local_address
            kept = len(await server.registrations())
            scheme = "coap" if layer is None else "coaps"
            console.print(
                f"LwM2M server listening on {scheme}://{host}:{port} "
                f"(store: {describe_store(store_path)}"
                f"{f', {kept} registrations restored' if kept else ''}"
                f"{'; ' + described if described else ''}) — Ctrl-C to stop",
                markup=False,
            )
            if http is not None:
                api = await start_http(server, security_store, http, http_tokens)
                api_host, api_port = api.address
                auth = (
                    f"bearer token required, {len(http_tokens)} known"
                    if http_tokens is not None
                    else "no authentication"
                )
                console.print(
                    f"REST API on http://{api_host}:{api_port}/api "
                    f"(OpenAPI: /openapi.json, events: /api/events; {auth})",
                    markup=False,
                )
            await stop.wait()
            console.print("stopping", markup=False)
    finally:
        if api is not None:
            await api.stop()
        await observer.close()
        await server.stop()
        if store is not None:
            await store.close()
        if security_store is not None:
            await security_store.close()
    console.print("server stopped", markup=False)


def _paths(values: tuple[str, ...]) -> tuple[Path, ...]:
    out = []
    for text in values:
        try:
            out.append(Path.parse(text))
        except Lwm2mError as exc:
            raise click.ClickException(f"--observe: {exc}") from None
    return tuple(out)


def load_registry(ddf: tuple[str, ...]) -> ModelRegistry:
    """The bundled definitions plus ``--ddf`` files or folders (one-line errors)."""
    registry = default_registry()
    register_secure_component_object(registry)  # LwM2M-SCS-2: object 33000 is read on register
    for path in ddf:
        try:
            registry.load(path)
        except OSError as exc:
            raise click.ClickException(f"--ddf: cannot read {path}: {exc.strerror}") from None
    return registry


def dtls_options(function: Any) -> Any:
    """The DTLS options shared by ``server`` and ``bootstrap-server`` (server key, trust)."""
    for decorator in reversed(
        (
            click.option(
                "--key",
                "key",
                metavar="PEM",
                help="The server's own P-256 private key (RPK and X.509 clients need it).",
            ),
            click.option(
                "--cert",
                "cert",
                metavar="PEM",
                help="The server's certificate chain, leaf first (with --key: X.509).",
            ),
            click.option(
                "--trust-anchor",
                "trust_anchors",
                multiple=True,
                metavar="PEM",
                help="Accept X.509 clients whose chain validates against this CA (repeatable).",
            ),
            click.option(
                "--allow-plain",
                is_flag=True,
                help="With DTLS: serve NoSec (coap://) clients on the same socket too.",
            ),
        )
    ):
        function = decorator(function)
    return function


@click.command("server")
@click.option(
    "--bind",
    default=None,
    help="UDP address to serve on, HOST:PORT (port 0: any free port). "
    "[default: 0.0.0.0:5683, or 0.0.0.0:5684 with DTLS]",
)
@click.option(
    "--store",
    default="memory",
    show_default=True,
    help="Registration store: memory, sqlite:PATH (survives restarts), or a Redis URL "
    "redis://HOST:PORT/DB (survives restarts; several servers may share it).",
)
@click.option(
    "--observe",
    "observe",
    multiple=True,
    metavar="PATH",
    help="Observe PATH (e.g. /3/0/9) on every client that registers (repeatable).",
)
@click.option(
    "--ddf",
    "ddf",
    multiple=True,
    type=click.Path(),
    help="Extra DDF XML file or folder for application objects (repeatable).",
)
@click.option(
    "--psk",
    "psks",
    multiple=True,
    metavar="ENDPOINT:IDENTITY:HEXKEY",
    help="A DTLS-PSK client (repeatable; empty IDENTITY: the endpoint name).",
)
@click.option(
    "--rpk",
    "rpks",
    multiple=True,
    metavar="ENDPOINT:PEMFILE",
    help="A DTLS-RPK client and its public key (repeatable; needs --key).",
)
@click.option(
    "--oscore",
    "oscores",
    multiple=True,
    metavar="ENDPOINT:SENDER:RECIPIENT:SECRET:SALT",
    help="An OSCORE client over coap:// (repeatable; hex, as in its /21; SALT may be empty).",
)
@click.option(
    "--security-store",
    default="memory",
    show_default=True,
    help="Where DTLS and OSCORE clients are kept: memory, sqlite:PATH or a Redis URL "
    "(entries are added).",
)
@click.option(
    "--http",
    default=None,
    metavar="HOST:PORT",
    help="Also serve the REST API (JSON, OpenAPI, server-sent events) on this TCP address; "
    "needs the web extra.",
)
@click.option(
    "--http-token-file",
    default=None,
    metavar="FILE",
    help="Require 'Authorization: Bearer <token>' on the REST API, with a token of FILE "
    "(one per line, # comments).",
)
@click.option(
    "--http-no-auth",
    is_flag=True,
    help="Serve the REST API without authentication on a non-loopback address "
    "(a proxy in front authenticates).",
)
@dtls_options
def server_command(
    bind: str | None,
    store: str,
    observe: tuple[str, ...],
    ddf: tuple[str, ...],
    psks: tuple[str, ...],
    rpks: tuple[str, ...],
    oscores: tuple[str, ...],
    security_store: str,
    key: str | None,
    cert: str | None,
    trust_anchors: tuple[str, ...],
    allow_plain: bool,
    http: str | None,
    http_token_file: str | None,
    http_no_auth: bool,
) -> None:
    """Run an LwM2M server and print what the clients do (Ctrl-C stops it)."""
    given = parse_address(bind) if bind is not None else None
    http_bind = parse_address(http, "--http") if http is not None else None
    http_tokens = load_api_tokens(http_token_file, http_bind, http_no_auth)
    entries = [parse_psk(t) for t in psks] + [parse_rpk(t) for t in rpks]
    entries += [parse_oscore(t) for t in oscores]
    seen: set[str] = set()
    for entry in entries:  # a store holds one entry per endpoint: a second would replace it
        if entry.endpoint in seen:
            raise click.BadParameter(
                f"endpoint {entry.endpoint!r} is given twice "
                "(one --psk/--rpk/--oscore per endpoint)",
                param_hint="--psk/--rpk/--oscore",
            )
        seen.add(entry.endpoint)
    dtls = DtlsOptions(
        entries=entries,
        security_store=parse_store(security_store, "--security-store"),
        trust_anchors=trust_anchors,
        cert=cert,
        key=key,
        allow_plain=allow_plain,
    )
    address = given or parse_address("0.0.0.0:5684" if dtls.dtls else "0.0.0.0:5683")
    store_path = parse_store(store)
    paths = _paths(observe)
    registry = load_registry(ddf)
    asyncio.run(
        run_server(
            address,
            store_path=store_path,
            registry=registry,
            observe=paths,
            console=make_console(),
            dtls=dtls,
            http=http_bind,
            http_tokens=http_tokens,
        )
    )
