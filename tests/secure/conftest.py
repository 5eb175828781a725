"""Fixtures of the Secure Component tests: backends for the contract suite, a SoftHSM2 token
directory made for the session (``SOFTHSM2_CONF`` pointing at a temporary config), and pcscd
with a virtual secure element (the VSE of ``lwm2m.vse``) on the second vpcd reader for the
``pcsc:`` backend — every card exchange goes through pcscd and pyscard. Missing pcscd, vpcd or
pyscard skip the pcsc tests, and fail them under CI=true."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conftest import require
from lwm2m.secure import ComponentType, SecureComponent, missing_modules, open_component
from vse.pcsc_env import READER_1, RunningVse, open_transport, pcsc_env_dir, pcscd, start_vse

from .softhsm import SoftHsm, find_module, find_util

__all__ = ["pcsc_env_dir", "pcscd"]

#: Tokens initialised before the module is loaded (SoftHSM2 lists only tokens existing then).
TOKENS = ("contract", "second", "cli", "memscan", "bench")
PASSPHRASE = "correct horse battery staple"
PASSPHRASE_ENV = "LWM2M_TEST_SC_PASSPHRASE"
#: PIN1 of the test card (also one of the strings no repr may contain).
CARD_PIN = "1234"
CARD_PIN_ENV = "LWM2M_TEST_CARD_PIN"
#: The vpcd port of the contract card: ``Virtual PCD 00 01`` (tests/vse use ``00 00``).
CARD_PORT = 35964


def reference_prf(secret: bytes, label: bytes, seed: bytes, length: int = 48) -> bytes:
    """TLS 1.2 PRF, P_SHA256 (RFC 5246 §5), written independently of the code under test."""
    out, a = b"", label + seed
    while len(out) < length:
        a = hmac.new(secret, a, "sha256").digest()
        out += hmac.new(secret, a + label + seed, "sha256").digest()
    return out[:length]


def reference_master_secret(psk: bytes, label: bytes, seed: bytes) -> bytes:
    """RFC 4279 §2 premaster from ``psk``, then the RFC 5246 §8.1 / RFC 7627 §4 derivation."""
    n = len(psk).to_bytes(2, "big")
    return reference_prf(n + bytes(len(psk)) + n + psk, label, seed)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A SoftHSM2 with the :data:`TOKENS`; skips without SoftHSM2 (fails under CI=true)."""
    require(find_module() is not None and find_util() is not None, "SoftHSM2 (Debian softhsm2)")
    require(not missing_modules()["pkcs11"], "python-pkcs11 (pip install 'lwm2m[pkcs11]')")
    hsm = SoftHsm.create(tmp_path_factory.mktemp("softhsm"), TOKENS)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    import pkcs11

    loaded = pkcs11._loaded.get(hsm.module)  # loaded earlier in this process: re-read the config
    if loaded is not None:
        loaded.reinitialize()
    yield hsm
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def wipe(component: SecureComponent) -> None:
    for cred in component.credentials():
        component.delete(cred.label)
    for oid, iid in component.list_instances():
        component.delete_instance(oid, iid)


@dataclass
class Backend:
    """How a contract test opens (and reopens) the component under test."""

    name: str
    uri: str
    options: dict[str, Any] = field(default_factory=dict)
    opened: list[SecureComponent] = field(default_factory=list)
    component_type: ComponentType = ComponentType.SOFTWARE
    """What ``info().type`` reports (soft: and SoftHSM2 are software)."""
    secure_hardware: bool = False

    def open(self, **options: Any) -> SecureComponent:
        component = open_component(self.uri, **{**self.options, **options})
        self.opened.append(component)
        return component

    def wrong_secret(self) -> dict[str, Any]:
        """Options that open with a wrong passphrase / PIN."""
        return {"passphrase": "wrong"} if self.name == "soft" else {"pin": "9999"}


@pytest.fixture
def soft_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    backend = Backend(
        "soft",
        f"soft:{tmp_path}/component.sc?passphrase-env={PASSPHRASE_ENV}",
        {"create": True, "scrypt_log2_n": 10},
    )
    yield backend
    for component in backend.opened:
        component.close()


def _pkcs11_backend(softhsm: SoftHsm, token: str) -> Iterator[Backend]:
    backend = Backend("pkcs11", softhsm.uri(token))
    with backend.open() as component:
        wipe(component)
    backend.opened.clear()
    yield backend
    for component in backend.opened:
        component.close()


@pytest.fixture
def pkcs11_backend(softhsm: SoftHsm) -> Iterator[Backend]:
    yield from _pkcs11_backend(softhsm, "contract")


def blank_card() -> Any:
    """A fresh card: the VSE's identification data, PIN1 enabled, an IoT SAFE applet without
    containers (the component creates its own through the VSE administrative extension)."""
    from lwm2m.vse.state import VseState

    state = VseState()
    state.pin1 = CARD_PIN
    return state


def personalise(card: RunningVse, state: Any) -> None:
    """Re-personalise the card (state file) and reset it through PC/SC: the VSE re-reads its
    state at the reset, like a card re-personalised between two sessions."""
    from lwm2m.vse.state import save_state

    save_state(state, card.state_path)
    transport = open_transport(card.reader)
    try:
        transport.reset()
    finally:
        transport.close()


@pytest.fixture(scope="module")
def pcsc_card(pcscd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVse]:
    """A VSE on ``Virtual PCD 00 01`` for the module (served from a thread of this process)."""
    from lwm2m.vse.state import save_state

    path = tmp_path_factory.mktemp("pcsc-card") / "card.json"
    save_state(blank_card(), path)
    card = start_vse(path, CARD_PORT)
    try:
        yield card
    finally:
        card.stop()


def pcsc_uri(reader: str = READER_1, **query: str) -> str:
    attrs = "&".join(f"{k.replace('_', '-')}={v}" for k, v in query.items())
    return f"pcsc:reader={quote(reader)}" + (f"?{attrs}" if attrs else "")


@pytest.fixture
def pcsc_backend(pcsc_card: RunningVse, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The contract card, blank again for each test, opened by URI with PIN1 from the env."""
    personalise(pcsc_card, blank_card())
    monkeypatch.setenv(CARD_PIN_ENV, CARD_PIN)
    backend = Backend(
        "pcsc",
        pcsc_uri(pin_source=f"env:{CARD_PIN_ENV}"),
        component_type=ComponentType.UICC,
        secure_hardware=True,
    )
    yield backend
    for component in backend.opened:
        component.close()


@pytest.fixture(params=["soft", "pkcs11", "pcsc"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn: the contract suite runs against all of them."""
    fixture: Backend = request.getfixturevalue(f"{request.param}_backend")
    return fixture


@pytest.fixture
def component(backend: Backend) -> SecureComponent:
    return backend.open()
