"""PC/SC error mapping of the transport (the only pyscard user), against a stand-in for
``smartcard.scard`` so every PC/SC failure mode is reached without pcscd."""

from __future__ import annotations

from typing import Any

import pytest

from lwm2m.secure.pcsc import transport as transport_module
from lwm2m.secure.pcsc.component import parse_pcsc_uri
from lwm2m.secure.pcsc.errors import (
    CardNotPresent,
    CardRemoved,
    PcscUnavailable,
    ReaderNotFound,
    TransportError,
)
from lwm2m.secure.pcsc.transport import PcscTransport, list_readers, missing_modules

scard = pytest.importorskip("smartcard.scard")


class FakeScard:
    """Constants from pyscard, behaviour scripted per test."""

    def __init__(self, **behaviour: Any) -> None:
        for name in dir(scard):
            if name.startswith("SCARD_"):
                setattr(self, name, getattr(scard, name))
        self.readers = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
        self.context_result = scard.SCARD_S_SUCCESS
        self.list_result = scard.SCARD_S_SUCCESS
        self.connect_results: list[int] = [scard.SCARD_S_SUCCESS]
        self.transmit_result: tuple[int, list[int]] = (scard.SCARD_S_SUCCESS, [0x90, 0x00])
        self.released = 0
        self.disconnected = 0
        self.__dict__.update(behaviour)

    def SCardEstablishContext(self, scope: int) -> tuple[int, str]:
        return self.context_result, "ctx"

    def SCardReleaseContext(self, ctx: str) -> int:
        self.released += 1
        return 0

    def SCardListReaders(self, ctx: str, groups: list[str]) -> tuple[int, list[str]]:
        return self.list_result, self.readers

    def SCardConnect(self, ctx: str, reader: str, share: int, proto: int) -> tuple[int, str, int]:
        result = (
            self.connect_results.pop(0)
            if len(self.connect_results) > 1
            else self.connect_results[0]
        )
        self.connected_reader = reader
        return result, "card", scard.SCARD_PROTOCOL_T1

    def SCardStatus(self, card: str) -> tuple[int, str, int, int, list[int]]:
        return scard.SCARD_S_SUCCESS, "r", 0, 0, [0x3B, 0x00]

    def SCardTransmit(self, card: str, proto: int, apdu: list[int]) -> tuple[int, list[int]]:
        return self.transmit_result

    def SCardReconnect(self, card: str, share: int, proto: int, init: int) -> tuple[int, int]:
        return scard.SCARD_S_SUCCESS, scard.SCARD_PROTOCOL_T1

    def SCardDisconnect(self, card: str, disposition: int) -> int:
        self.disconnected += 1
        return 0

    def SCardGetErrorMessage(self, hresult: int) -> str:
        return "fake error"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScard:
    stand_in = FakeScard()
    monkeypatch.setattr(transport_module, "_scard", stand_in)
    return stand_in


def test_connect_transmit_close(fake: FakeScard) -> None:
    with PcscTransport("00 01") as t:
        assert fake.connected_reader == "Virtual PCD 00 01"
        assert t.atr == b"\x3b\x00"
        assert t(b"\x00\xa4\x00\x00") == b"\x90\x00"
        t.reset()
        assert "connected" in repr(t)
    assert fake.disconnected == 1
    assert fake.released == 1
    t.close()  # idempotent
    with pytest.raises(TransportError, match="not connected"):
        t.transmit(b"\x00\xa4\x00\x00")
    with pytest.raises(TransportError, match="at least 4 bytes"):
        t.transmit(b"\x00")
    with pytest.raises(TransportError, match="not connected"):
        t.reset()


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, "Virtual PCD 00 00"),
        (1, "Virtual PCD 00 01"),
        ("Virtual PCD 00 01", "Virtual PCD 00 01"),
    ],
)
def test_reader_selection(fake: FakeScard, selector: str | int | None, expected: str) -> None:
    t = PcscTransport(selector)
    t.connect()
    assert t.reader == expected
    t.close()


@pytest.mark.parametrize("selector", [5, "Other reader"])
def test_unknown_reader(fake: FakeScard, selector: str | int) -> None:
    with pytest.raises(ReaderNotFound):
        PcscTransport(selector).connect()


def test_no_readers(fake: FakeScard) -> None:
    fake.readers = []
    with pytest.raises(ReaderNotFound):
        PcscTransport().connect()
    fake.list_result = scard.SCARD_E_NO_READERS_AVAILABLE
    assert list_readers() == []
    fake.list_result = scard.SCARD_F_INTERNAL_ERROR
    with pytest.raises(TransportError):
        list_readers()
    with pytest.raises(TransportError):
        PcscTransport().connect()


def test_pcscd_not_running(fake: FakeScard) -> None:
    fake.context_result = scard.SCARD_E_NO_SERVICE
    with pytest.raises(PcscUnavailable, match="pcscd"):
        PcscTransport().connect()
    with pytest.raises(PcscUnavailable):
        list_readers()


def test_wait_for_card(fake: FakeScard) -> None:
    fake.connect_results = [
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_S_SUCCESS,
    ]
    t = PcscTransport()
    t.connect(timeout=5, poll=0.001)
    t.close()
    fake.connect_results = [scard.SCARD_E_NO_SMARTCARD]
    with pytest.raises(CardNotPresent):
        PcscTransport().connect(timeout=0.01, poll=0.001)


@pytest.mark.parametrize(
    ("result", "error"),
    [
        ((scard.SCARD_W_REMOVED_CARD, []), CardRemoved),
        ((scard.SCARD_W_RESET_CARD, []), CardRemoved),
        ((scard.SCARD_S_SUCCESS, []), CardRemoved),
        ((scard.SCARD_E_SERVICE_STOPPED, []), PcscUnavailable),
        ((scard.SCARD_E_NOT_TRANSACTED, []), TransportError),
    ],
)
def test_transmit_errors(
    fake: FakeScard, result: tuple[int, list[int]], error: type[Exception]
) -> None:
    t = PcscTransport()
    t.connect()
    fake.transmit_result = result
    with pytest.raises(error):
        t.transmit(b"\x00\xb0\x00\x00\x10")
    t.close()


def test_transmit_raising(fake: FakeScard) -> None:
    t = PcscTransport()
    t.connect()

    def boom(*args: object) -> None:
        raise RuntimeError("handle gone")

    fake.SCardTransmit = boom  # type: ignore[method-assign,assignment]
    with pytest.raises(CardRemoved):
        t.transmit(b"\x00\xa4\x00\x00")


def test_without_pyscard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "_scard", None)
    assert missing_modules()
    assert "pyscard" in missing_modules()[0]
    with pytest.raises(PcscUnavailable, match="pyscard"):
        PcscTransport()


def test_pcsc_uri() -> None:
    assert parse_pcsc_uri("pcsc:").reader is None
    uri = parse_pcsc_uri("pcsc:?reader=Virtual%20PCD%2000%2001&aid=A0000005590010")
    assert uri.reader == "Virtual PCD 00 01"
    assert uri.aid == bytes.fromhex("A0000005590010")
    with pytest.raises(ValueError, match=r"."):
        parse_pcsc_uri("pkcs11:token=x")
