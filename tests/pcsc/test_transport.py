"""PC/SC error mapping of the transport (the only pyscard user), against a stand-in for
``smartcard.scard`` so every PC/SC failure mode is reached without pcscd."""

from __future__ import annotations

from typing import Any

import pytest

from lwm2m.secure import (
    ComponentNotFound,
    ComponentUnavailable,
    InvalidSecureComponentUri,
    PinRequired,
)
from lwm2m.secure.pcsc import transport as transport_module
from lwm2m.secure.pcsc.errors import (
    CardNotPresent,
    CardRemoved,
    PcscUnavailable,
    ReaderNotFound,
    TransportError,
)
from lwm2m.secure.pcsc.transport import PcscTransport, list_readers, missing_modules
from lwm2m.secure.pcsc.uri import PcscUri, atr_matcher, parse_pcsc_uri

scard = pytest.importorskip("smartcard.scard")


class FakeScard:
    """Constants from pyscard, behaviour scripted per test."""

    def __init__(self, **behaviour: Any) -> None:
        for name in dir(scard):
            if name.startswith("SCARD_"):
                setattr(self, name, getattr(scard, name))
        self.readers = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
        #: ATR of the card in each reader (absent: no card).
        self.cards: dict[str, list[int]] = {name: [0x3B, 0x00] for name in self.readers}
        self.status_change_result = scard.SCARD_S_SUCCESS
        self.status_result = scard.SCARD_S_SUCCESS
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
        return self.status_result, "r", 0, 0, [0x3B, 0x00]

    def SCardGetStatusChange(
        self, ctx: str, timeout: int, states: list[tuple[str, int]]
    ) -> tuple[int, list[tuple[str, int, list[int]]]]:
        assert timeout == 0  # never waits
        out = []
        for name, _state in states:
            atr = self.cards.get(name)
            present = scard.SCARD_STATE_PRESENT if atr is not None else scard.SCARD_STATE_EMPTY
            out.append((name, present | scard.SCARD_STATE_CHANGED, atr or []))
        return self.status_change_result, out

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


def test_first_reader_with_a_card(fake: FakeScard) -> None:
    del fake.cards["Virtual PCD 00 00"]
    t = PcscTransport()
    t.connect()
    assert t.reader == "Virtual PCD 00 01"
    t.close()
    fake.cards.clear()
    with pytest.raises(CardNotPresent, match="no card in any of the readers"):
        PcscTransport().connect()
    fake.cards["Virtual PCD 00 01"] = [0x3B, 0x00]
    t = PcscTransport("Virtual PCD")  # a part of several names: the one holding a card
    t.connect()
    assert t.reader == "Virtual PCD 00 01"
    t.close()
    fake.status_change_result = scard.SCARD_F_INTERNAL_ERROR
    with pytest.raises(TransportError, match="reader states"):
        PcscTransport().connect()


def test_reader_by_atr(fake: FakeScard) -> None:
    fake.cards["Virtual PCD 00 01"] = [0x3B, 0x9F, 0x96, 0x80]
    t = PcscTransport(atr=atr_matcher("3B9F*"), atr_text="'3B9F*'")
    t.connect()
    assert t.reader == "Virtual PCD 00 01"
    t.close()
    with pytest.raises(CardNotPresent, match=r"ATR matching '3B8F\*'"):
        PcscTransport(atr=atr_matcher("3B8F*"), atr_text="'3B8F*'").connect()
    # a reader name and an ATR pattern together: both must hold
    with pytest.raises(CardNotPresent):
        PcscTransport("00 00", atr=atr_matcher("3B9F*")).connect()


def test_present(fake: FakeScard) -> None:
    t = PcscTransport("00 00")
    assert not t.present()  # not connected
    t.connect()
    assert t.present()
    fake.status_result = scard.SCARD_W_REMOVED_CARD
    assert not t.present()
    fake.status_result = scard.SCARD_W_RESET_CARD
    assert t.present()  # reset by someone else: still there

    def boom(card: str) -> None:
        raise RuntimeError("handle gone")

    fake.SCardStatus = boom  # type: ignore[method-assign,assignment]
    assert not t.present()
    t.close()


def test_errors_are_in_the_contract_tree(fake: FakeScard) -> None:
    fake.readers = []
    with pytest.raises(ComponentNotFound):
        PcscTransport().connect()
    fake.context_result = scard.SCARD_E_NO_SERVICE
    with pytest.raises(ComponentUnavailable):
        PcscTransport().connect()


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


def test_pcsc_uri_attributes(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    uri = PcscUri.parse(
        "PCSC:reader=1;atr=3B9F..*;type=eSE?aid=A000000559001001&pin-source=env:PIN"
        "&scp03-key-env=KEYS&scp03-kvn=31&peer=peer-key&timeout=2.5"
    )
    assert uri.reader == 1
    assert uri.atr_filter is not None
    assert uri.atr_filter(bytes.fromhex("3B9F9680"))
    assert uri.component_type.label == "eSE"
    assert uri.aid == bytes.fromhex("A000000559001001")
    assert (uri.peer, uri.timeout, uri.scp03_kvn) == ("peer-key", 2.5, 0x31)
    monkeypatch.setenv("PIN", "4321")
    assert uri.resolve_pin() == "4321"
    assert uri.resolve_pin("9999") == "9999"
    monkeypatch.setenv("KEYS", "404142434445464748494A4B4C4D4E4F")
    keys = uri.scp03_keys()
    assert keys is not None
    assert keys.kvn == 0x31
    assert keys.enc == keys.mac == keys.dek
    monkeypatch.setenv("KEYS", ":".join(["40" * 16, "41" * 16, "42" * 16]))
    keys = uri.scp03_keys()
    assert keys is not None
    assert keys.dek == bytes([0x42]) * 16
    for bad in ("4041", "40" * 16 + ":" + "41" * 16):
        monkeypatch.setenv("KEYS", bad)
        with pytest.raises(InvalidSecureComponentUri, match="KEYS"):
            uri.scp03_keys()
    monkeypatch.delenv("KEYS")
    with pytest.raises(PinRequired, match="KEYS"):
        uri.scp03_keys()
    monkeypatch.delenv("PIN")
    with pytest.raises(PinRequired, match="PIN"):
        uri.resolve_pin()
    pin_file = tmp_path / "pin"
    pin_file.write_text("2468\n")
    assert PcscUri.parse(f"pcsc:pin-source=file:{pin_file}").resolve_pin() == "2468"
    with pytest.raises(PinRequired, match="cannot read"):
        PcscUri.parse(f"pcsc:pin-source={tmp_path}/none").resolve_pin()
    assert PcscUri.parse("pcsc:").resolve_pin() is None
    assert PcscUri.parse("pcsc:").scp03_keys() is None
    shown = str(PcscUri.parse("pcsc:reader=Virtual%20PCD%2000%2000?pin-value=1234"))
    assert shown == "pcsc:reader=Virtual%20PCD%2000%2000;pin-value=REDACTED"
    assert "1234" not in repr(PcscUri.parse("pcsc:pin-value=1234"))
    assert PcscUri.parse("pcsc:pin-value=1234").resolve_pin() == "1234"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("pcsc:reader", "not name=value"),
        ("pcsc:colour=blue", "unknown pcsc: URI attribute 'colour'"),
        ("pcsc:reader=a;reader=b", "given twice"),
        ("pcsc:reader=", "reader needs"),
        ("pcsc:atr=3B9G", "atr must be"),
        ("pcsc:atr=3B9*F", "atr must be"),
        ("pcsc:aid=A000", "aid must be"),
        ("pcsc:type=tpm", "type must be"),
        ("pcsc:scp03-kvn=100", "scp03-kvn"),
        ("pcsc:timeout=-1", "timeout"),
        ("pcsc:timeout=x", "timeout"),
        ("pcsc:peer=" + "p" * 61, "peer"),
        ("pcsc:pin-source=", "pin-source needs"),
        ("pcsc:pin-value=1;pin-source=env:X", "not both"),
        ("pcsc:reader=%zz", "percent"),
        ("pcsc:reader=%ff", "UTF-8"),
    ],
)
def test_bad_pcsc_uris(uri: str, message: str) -> None:
    with pytest.raises(InvalidSecureComponentUri, match=message):
        PcscUri.parse(uri)


def test_atr_patterns() -> None:
    atr = bytes.fromhex("3B9F9680")
    assert atr_matcher("3B9F9680")(atr)
    assert atr_matcher("3b:9f:96:80")(atr)
    assert atr_matcher("3B9F.X80")(atr)
    assert atr_matcher("*")(atr)
    assert not atr_matcher("3B9F96")(atr)  # no '*': the whole ATR
    assert not atr_matcher("3B9F9681")(atr)
