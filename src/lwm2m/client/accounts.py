"""Server accounts: what the client derives from its Security (/0) and Server (/1) instances, and
the seams between accounts and connections (LwM2M-TS-Core 1.1 §5.2.x, Appendix E.1/E.2;
Transport §5 security, §8 "Endpoint Client Name" peer attribution).

- :class:`ServerAccount` — one /0 instance (and, for a DM server, its /1 instance with the same
  Short Server ID) read as a value: URI, mode, timers, registration settings. Secrets are not
  part of it; the transport obtains them through :class:`ConnectionSecurity` and the Security
  handler's ``credentials()`` (later a Secure Component).
- :class:`Peer` — who sent a request, as the adapter established it: the remote address and,
  over DTLS, the authenticated identity. The engine maps a peer to an account with
  :func:`match_account`.
- :class:`ConnectionSecurity` — the non-secret description of how to reach an account, handed to
  the adapter's connector. NoSec (mode 3) over ``coap://`` works today; the connector raises
  :class:`UnsupportedSecurityMode` for the modes the DTLS issue adds (0 PSK, 1 RPK,
  2 Certificate; 4 EST).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from lwm2m.client.objects.security import SecurityMode
from lwm2m.client.tree import ObjectTree
from lwm2m.errors import Lwm2mError, RequestError
from lwm2m.model.nodes import ObjectInstance, SingleResource
from lwm2m.model.values import ObjectLink, Value

__all__ = [
    "ConnectionSecurity",
    "Peer",
    "PeerCredential",
    "ServerAccount",
    "ServerUri",
    "UnsupportedSecurityMode",
    "match_account",
    "read_accounts",
]

DEFAULT_PORTS = {"coap": 5683, "coaps": 5684, "coap+tcp": 5683, "coaps+tcp": 5684}


class UnsupportedSecurityMode(Lwm2mError):
    """A server account needs a security mode this build cannot connect with yet."""


@dataclass(frozen=True, slots=True)
class ServerUri:
    """A parsed server URI (``coap://host:port``), RFC 7252 §6.

    >>> ServerUri.parse("coap://[::1]:5690").address
    ('::1', 5690)
    """

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ServerUri:
        """Parse ``coap[s][+tcp]://host[:port]``; ValueError when it is not one."""
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"unsupported URI scheme {parts.scheme!r}")
        host = parts.hostname
        if not host:
            raise ValueError("the server URI has no host")
        port = parts.port if parts.port is not None else DEFAULT_PORTS[scheme]
        return cls(scheme, host, port)

    @property
    def secure(self) -> bool:
        """``coaps`` (DTLS) or ``coaps+tcp`` (TLS)."""
        return self.scheme.startswith("coaps")

    def fits(self, mode: SecurityMode) -> bool:
        """Whether the scheme fits the security mode: ``coap`` for NoSec, ``coaps`` for the
        others."""
        return self.secure != (mode is SecurityMode.NO_SEC)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def is_ip_literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PeerCredential:
    """An authenticated identity (``kind``: ``psk``, ``rpk``, ``x509``, ``oscore``)."""

    kind: str
    value: bytes | str


@dataclass(frozen=True, slots=True)
class Peer:
    """The sender of a request, as attributed by the adapter."""

    address: Hashable
    """The remote transport address (``(host, port)`` for UDP)."""
    identity: PeerCredential | None = None
    """The identity authenticated by (D)TLS or OSCORE; None over plain UDP."""


@dataclass(frozen=True, slots=True)
class ConnectionSecurity:
    """How to open the connection of one account — no secret material."""

    security_instance_id: int
    uri: ServerUri
    mode: SecurityMode
    bootstrap: bool
    short_server_id: int | None = None
    oscore: ObjectLink | None = None

    def check_supported(
        self,
        supported: Sequence[SecurityMode] = (SecurityMode.NO_SEC,),
        *,
        oscore: bool = False,
    ) -> None:
        """Raise :class:`UnsupportedSecurityMode` unless the mode is one of ``supported`` and
        the scheme matches it (``coap`` for NoSec, ``coaps`` otherwise); an account with OSCORE
        (/0/x/17) needs ``oscore`` and NoSec (OSCORE over ``coap://``)."""
        if self.mode not in supported:
            raise UnsupportedSecurityMode(
                f"security mode {self.mode.name} ({int(self.mode)}) of {self.uri} is not "
                "supported yet: it needs the DTLS transport"
            )
        if self.oscore is not None and not oscore:
            raise UnsupportedSecurityMode(f"OSCORE for {self.uri} is not supported yet")
        if self.oscore is not None and self.mode is not SecurityMode.NO_SEC:
            raise UnsupportedSecurityMode(
                f"OSCORE for {self.uri} with security mode {self.mode.name}: only OSCORE over "
                "coap:// (mode NoSec) is supported"
            )
        if not self.uri.fits(self.mode):
            raise UnsupportedSecurityMode(
                f"{self.uri}: scheme {self.uri.scheme} does not match mode {self.mode.name}"
            )


@dataclass(frozen=True, slots=True)
class ServerAccount:
    """A server account: /0 instance ``security_instance_id`` plus the matching /1 instance."""

    security_instance_id: int
    uri: ServerUri
    bootstrap: bool
    security_mode: SecurityMode
    short_server_id: int | None = None
    server_instance_id: int | None = None
    hold_off: int = 0
    """/0/x/11 Client Hold Off Time (bootstrap account)."""
    account_timeout: int = 0
    """/0/x/12 Bootstrap-Server Account Timeout (0: never purged)."""
    oscore: ObjectLink | None = None
    lifetime: int = 86400
    default_pmin: int = 0
    default_pmax: int | None = None
    disable_timeout: int = 86400
    notification_storing: bool = True
    binding: str = "U"
    priority: int | None = None
    initial_delay: int = 0
    failure_block: bool = False
    bootstrap_on_failure: bool = True
    retry_count: int = 5
    retry_timer: int = 60
    sequence_delay: int = 86400
    sequence_retry_count: int = 1
    mute_send: bool = True

    @property
    def connection(self) -> ConnectionSecurity:
        return ConnectionSecurity(
            self.security_instance_id,
            self.uri,
            self.security_mode,
            self.bootstrap,
            self.short_server_id,
            self.oscore,
        )

    @property
    def binding_letters(self) -> str:
        """The 1.1 binding (``U``, ``T``, ``S``, ``N``; a 1.0 ``Q`` is removed)."""
        return "".join(c for c in self.binding if c != "Q") or "U"

    @property
    def queue_binding(self) -> bool:
        """A 1.0-style binding with ``Q`` asks for queue mode."""
        return "Q" in self.binding


def _single(instance: ObjectInstance, rid: int, default: Value = None) -> Value:
    resource = instance.resources.get(rid)
    return resource.value if isinstance(resource, SingleResource) else default


def _int(value: Value, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bool(value: Value, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def read_accounts(tree: ObjectTree) -> tuple[list[ServerAccount], list[str]]:
    """The accounts configured in the tree, and the problems that make an instance unusable
    (used by the Bootstrap-Finish consistency check)."""
    security = tree.get(0)
    server = tree.get(1)
    accounts: list[ServerAccount] = []
    problems: list[str] = []
    if security is None:
        return accounts, ["the client has no Security object"]
    servers: dict[int, tuple[int, ObjectInstance]] = {}
    if server is not None:
        for iid in server.instance_ids():
            try:
                instance = server.read(iid)
            except RequestError:
                continue
            ssid = _single(instance, 0)
            if not isinstance(ssid, int) or not 1 <= ssid <= 65534:
                problems.append(f"/1/{iid} has no valid Short Server ID")
                continue
            if ssid in servers:
                problems.append(f"/1/{iid}: Short Server ID {ssid} is used twice")
                continue
            servers[ssid] = (iid, instance)
    used: set[int] = set()
    for iid in security.instance_ids():
        try:
            instance = security.read(iid, [0, 1, 2, 10, 11, 12, 17])
        except RequestError:
            continue
        uri_text = _single(instance, 0)
        try:
            uri = ServerUri.parse(uri_text if isinstance(uri_text, str) else "")
        except ValueError as exc:
            problems.append(f"/0/{iid}: invalid server URI ({exc})")
            continue
        mode_value = _single(instance, 2)
        try:
            mode = SecurityMode(mode_value if isinstance(mode_value, int) else -1)
        except ValueError:
            problems.append(f"/0/{iid}: invalid security mode")
            continue
        is_bootstrap = _bool(_single(instance, 1), False)
        if not uri.fits(mode):
            problems.append(f"/0/{iid}: {uri.scheme} does not fit security mode {mode.name}")
        oscore = _single(instance, 17)
        common = {
            "security_instance_id": iid,
            "uri": uri,
            "security_mode": mode,
            "hold_off": _int(_single(instance, 11), 0),
            "account_timeout": _int(_single(instance, 12), 0),
            "oscore": oscore if isinstance(oscore, ObjectLink) and not oscore.is_null else None,
        }
        if is_bootstrap:
            accounts.append(ServerAccount(bootstrap=True, **common))  # type: ignore[arg-type]
            continue
        ssid = _single(instance, 10)
        if not isinstance(ssid, int) or not 1 <= ssid <= 65534:
            problems.append(f"/0/{iid} has no valid Short Server ID")
            continue
        if ssid in used:
            problems.append(f"/0/{iid}: Short Server ID {ssid} is used twice")
            continue
        used.add(ssid)
        match = servers.get(ssid)
        if match is None:
            problems.append(f"/0/{iid}: no /1 instance for Short Server ID {ssid}")
            continue
        accounts.append(_dm_account(common, ssid, *match))
    for ssid, (iid, _) in servers.items():
        if ssid not in used:
            problems.append(f"/1/{iid}: no /0 instance for Short Server ID {ssid}")
    if sum(1 for a in accounts if a.bootstrap) > 1:
        problems.append("more than one bootstrap server account")
    return accounts, problems


def _dm_account(
    common: dict[str, object], ssid: int, server_iid: int, instance: ObjectInstance
) -> ServerAccount:
    def value(rid: int) -> Value:
        return _single(instance, rid)

    binding = value(7)
    pmax = value(3)
    priority = value(13)
    return ServerAccount(
        bootstrap=False,
        short_server_id=ssid,
        server_instance_id=server_iid,
        lifetime=_int(value(1), 86400),
        default_pmin=_int(value(2), 0),
        default_pmax=pmax if isinstance(pmax, int) and pmax > 0 else None,
        disable_timeout=_int(value(5), 86400),
        notification_storing=_bool(value(6), True),
        binding=binding if isinstance(binding, str) and binding else "U",
        priority=priority if isinstance(priority, int) else None,
        initial_delay=_int(value(14), 0),
        failure_block=_bool(value(15), False),
        bootstrap_on_failure=_bool(value(16), True),
        retry_count=max(_int(value(17), 5), 1),
        retry_timer=_int(value(18), 60),
        sequence_delay=_int(value(19), 86400),
        sequence_retry_count=max(_int(value(20), 1), 1),
        mute_send=_bool(value(23), True),
        **common,  # type: ignore[arg-type]
    )


def match_account(
    accounts: Sequence[ServerAccount],
    peer: Peer,
    addresses: Mapping[int, Hashable],
    identities: Mapping[int, PeerCredential] | None = None,
) -> ServerAccount | None:
    """The account a request came from.

    The transport address must match (``addresses`` maps security instance ids to the address
    the adapter resolved for each account; accounts missing there use their URI's
    ``(host, port)``). When the peer carries an authenticated identity (DTLS, OSCORE) and the
    adapter recorded the identity authenticated for an account (``identities``), they must be
    equal too: a request over another session is not attributed to the account.
    """
    for account in accounts:
        key = account.security_instance_id
        address = addresses.get(key, account.uri.address)
        if address != peer.address and not _same_address(address, peer.address):
            continue
        expected = (identities or {}).get(key)
        if peer.identity is not None and expected is not None and expected != peer.identity:
            continue
        return account
    return None


def _same_address(a: Hashable, b: Hashable) -> bool:
    if not (isinstance(a, tuple) and isinstance(b, tuple)) or len(a) < 2 or len(b) < 2:
        return False
    if a[1] != b[1]:
        return False
    try:
        return ipaddress.ip_address(str(a[0])) == ipaddress.ip_address(str(b[0]))
    except ValueError:
        return False
