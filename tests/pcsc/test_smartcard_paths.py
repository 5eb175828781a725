"""Error paths of the smartcard bootstrap I/O (:mod:`lwm2m.io.smartcard`): a card removed, a
reader missing, status words other than 9000, malformed responses and files. Each reading is a
:class:`CardAbsent` or :class:`CardUnreadable` naming the failure, never a raw exception, and no
message or repr carries the card's secrets.

The card is the VSE card OS in memory behind a real :class:`PcscComponent` (no pcscd), with
faults injected into its APDU transmit; the reader-missing case goes through pcscd (started by
``vse.pcsc_env``; missing pieces fail under CI=true).
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Callable
from typing import Any

import pytest

from lwm2m.cli.vse import nodes_from_description
from lwm2m.client import ClientConfig
from lwm2m.client.smartcard import CardAbsent, CardCheck, CardData, CardUnreadable
from lwm2m.errors import Lwm2mError
from lwm2m.io import smartcard as io_smartcard
from lwm2m.io.smartcard import (
    CardBoundStore,
    SmartcardMonitor,
    open_smartcard_client,
    read_card,
)
from lwm2m.secure import ComponentNotFound
from lwm2m.secure.pcsc import PcscComponent
from lwm2m.secure.pcsc.bootstrap_file import build_bootstrap_file
from lwm2m.secure.pcsc.errors import (
    BootstrapFileError,
    CardNotPresent,
    CardRemoved,
    Pkcs15Error,
    ReaderNotFound,
    StatusWordError,
    TransportError,
)
from lwm2m.vse.state import VseState
from lwm2m.vse.uicc import VirtualUicc
from vse.pcsc_env import pcsc_env_dir, pcscd  # the fixtures start pcscd for the session

__all__ = ["pcsc_env_dir", "pcscd"]

PSK = bytes.fromhex("5ec7e75ec7e75ec7e75ec7e75ec7e75e")

DESCRIPTION = """
layout = "1.1"

[[security]]
uri = "coaps://127.0.0.1:5684"
short_server_id = 101
mode = "psk"
psk_identity = "card-ep"
psk_key = "hex:{psk}"

[[server]]
short_server_id = 101
lifetime = 300
binding = "U"
"""


def bootstrap_file() -> bytes:
    layout, objects = nodes_from_description(tomllib.loads(DESCRIPTION.format(psk=PSK.hex())))
    return build_bootstrap_file(objects, layout=layout)


class FaultyCard:
    """The VSE card OS; ``fault`` rewrites the answer to a command (or raises)."""

    def __init__(self, content: bytes | None = None) -> None:
        state = VseState.default()
        state.pkcs15.bootstrap = (bootstrap_file() if content is None else content).hex()
        self.card = VirtualUicc(state)
        self.fault: Callable[[bytes, bytes], bytes] | None = None
        self.commands: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.commands.append(apdu)
        answer = self.card.process(apdu)
        return answer if self.fault is None else self.fault(apdu, answer)


def component(card: FaultyCard) -> PcscComponent:
    return PcscComponent(card.transmit)


def is_read_binary(apdu: bytes) -> bool:
    return apdu[1] == 0xB0


def is_select(apdu: bytes) -> bool:
    return apdu[1] == 0xA4


# -- the card works -----------------------------------------------------------------------------


def test_a_good_card_reads_and_hides_its_psk() -> None:
    card = FaultyCard()
    reading = read_card(component(card))
    assert isinstance(reading, CardData)
    assert [node.id for node in reading.objects] == [0, 1]
    assert PSK.hex() not in repr(reading)
    assert PSK.hex() not in repr(reading).lower()
    assert read_card(component(card)) == reading  # same file, same digest


# -- card removed -------------------------------------------------------------------------------


def test_card_removed_during_the_read_is_absent() -> None:
    card = FaultyCard()
    comp = component(card)

    def pulled(apdu: bytes, answer: bytes) -> bytes:
        if is_read_binary(apdu):
            raise CardRemoved("the card was reset")
        return answer

    card.fault = pulled
    reading = read_card(comp)
    assert isinstance(reading, CardAbsent)
    assert reading.reason.startswith("card removed: ")
    assert "the card was reset" in reading.reason
    assert not comp.card_present()
    # later readings: the session is over, still absent, without talking to the card
    sent = len(card.commands)
    assert isinstance(read_card(comp), CardAbsent)
    assert len(card.commands) == sent


def test_transport_failure_with_the_card_gone_is_absent() -> None:
    card = FaultyCard()
    comp = component(card)

    def reader_gone(apdu: bytes, answer: bytes) -> bytes:
        raise TransportError("SCardTransmit: the reader was unplugged")

    card.fault = reader_gone
    reading = read_card(comp)
    assert isinstance(reading, CardAbsent)
    assert "unplugged" in reading.reason


class ScriptedCard:
    """A :class:`~lwm2m.io.smartcard.BootstrapCard` whose calls raise what the test says."""

    def __init__(
        self,
        *,
        present: bool | BaseException = True,
        read: BaseException | None = None,
        present_after: bool | BaseException | None = None,
    ) -> None:
        self.present = present
        self.read = read
        self.present_after = present_after
        self.present_calls = 0

    def card_present(self) -> bool:
        self.present_calls += 1
        answer = self.present if self.present_calls == 1 else self.present_after
        if isinstance(answer, BaseException):
            raise answer
        return bool(answer)

    def read_bootstrap(self, *, scp03_keys: Any = None, registry: Any = None) -> Any:
        assert self.read is not None
        raise self.read


@pytest.mark.parametrize(
    ("card", "kind", "text"),
    [
        (ScriptedCard(present=False), CardAbsent, "not present"),
        (ScriptedCard(present=CardNotPresent("no card in reader 0")), CardAbsent, "no card"),
        (ScriptedCard(read=CardNotPresent("no card")), CardAbsent, "card removed: no card"),
        # a transport failure while the card stays: unreadable, named
        (
            ScriptedCard(read=TransportError("T=1 protocol error"), present_after=True),
            CardUnreadable,
            "TransportError: T=1 protocol error",
        ),
        # ... and when asking whether it is there fails too: absent
        (
            ScriptedCard(
                read=TransportError("pcscd went away"),
                present_after=TransportError("pcscd went away"),
            ),
            CardAbsent,
            "pcscd went away",
        ),
    ],
)
def test_absent_and_transport_outcomes(card: ScriptedCard, kind: type, text: str) -> None:
    reading = read_card(card)
    assert isinstance(reading, kind)
    assert text in reading.reason  # type: ignore[union-attr]


# -- status words and malformed answers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sw", "name"),
    [(b"\x6a\x82", "6A82"), (b"\x69\x82", "6982"), (b"\x6f\x00", "6F00")],
)
def test_status_word_other_than_9000_is_unreadable_and_named(sw: bytes, name: str) -> None:
    card = FaultyCard()
    comp = component(card)
    card.fault = lambda apdu, answer: sw if is_read_binary(apdu) else answer
    reading = read_card(comp)
    assert isinstance(reading, CardUnreadable)
    assert name in reading.reason
    assert reading.reason.split(":")[0] in {
        cls.__name__ for cls in _subclasses(StatusWordError)
    } | {"StatusWordError"}
    assert comp.card_present()  # refused, not removed


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


@pytest.mark.parametrize(
    "answer",
    [b"", b"\x90", b"\x61"],  # no status word, half of one, a lone SW1
    ids=["empty", "one-byte", "sw1-only"],
)
def test_malformed_response_apdu_is_a_clear_error(answer: bytes) -> None:
    card = FaultyCard()
    comp = component(card)
    card.fault = lambda apdu, real: answer if is_read_binary(apdu) else real
    reading = read_card(comp)  # never a raw exception
    assert isinstance(reading, CardUnreadable | CardAbsent)
    assert reading.reason


def test_truncated_bootstrap_file_is_unreadable_and_names_the_structure() -> None:
    content = bootstrap_file()
    card = FaultyCard(content[: len(content) // 2])
    reading = read_card(component(card))
    assert isinstance(reading, CardUnreadable)
    assert reading.reason.startswith(f"{BootstrapFileError.__name__}: EF LwM2M_Bootstrap")
    assert PSK.hex() not in reading.reason.lower()


def test_corrupt_odf_is_unreadable_and_names_pkcs15() -> None:
    card = FaultyCard()
    comp = component(card)
    reads: list[bytes] = []

    def corrupt_odf(apdu: bytes, answer: bytes) -> bytes:
        if not is_read_binary(apdu):
            return answer
        reads.append(apdu)
        if len(reads) == 2:  # EF.DIR, then EF.ODF (Appendix G.2)
            return b"\xa7\x05\x30" + answer[-2:]  # a truncated dataObjects entry, then 9000
        return answer

    card.fault = corrupt_odf
    reading = read_card(comp)
    assert isinstance(reading, CardUnreadable)
    assert reading.reason.startswith(f"{Pkcs15Error.__name__}: PKCS#15")


def test_an_unexpected_exception_of_a_card_is_not_turned_into_a_reading() -> None:
    """Only the project's errors are mapped; a bug in a card implementation propagates."""
    card = ScriptedCard(read=ZeroDivisionError("bug"))
    with pytest.raises(ZeroDivisionError):
        read_card(card)


def test_every_mapped_error_is_an_lwm2m_error() -> None:
    for cls in (CardRemoved, CardNotPresent, TransportError, StatusWordError, BootstrapFileError):
        assert issubclass(cls, Lwm2mError)
    assert issubclass(ReaderNotFound, ComponentNotFound)


# -- the monitor ----------------------------------------------------------------------------------


def test_card_bound_store_repr_and_detach() -> None:
    from lwm2m.client.objects.base import MemoryInstanceStore

    inner = MemoryInstanceStore()
    store = CardBoundStore(inner)
    assert repr(store) == f"<CardBoundStore detached=False inner={inner!r}>"
    store.detach()
    assert "detached=True" in repr(store)
    assert store.list(0) == []


async def test_monitor_load_of_a_malformed_card_warns_and_keeps_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    content = bootstrap_file()
    monitor = SmartcardMonitor(component(FaultyCard(content[:7])))
    with caplog.at_level(logging.WARNING, logger="lwm2m.io.smartcard"):
        source = await monitor.load()
    assert isinstance(source.reading, CardUnreadable)
    assert "smartcard bootstrap data rejected" in caplog.text
    assert "EF LwM2M_Bootstrap" in caplog.text
    assert PSK.hex() not in caplog.text.lower()


async def test_monitor_read_runs_in_a_thread_and_maps_removal() -> None:
    card = FaultyCard()
    comp = component(card)
    monitor = SmartcardMonitor(comp)
    first = await monitor.read()
    assert isinstance(first, CardData)

    def pulled(apdu: bytes, answer: bytes) -> bytes:
        raise CardRemoved("card pulled")

    card.fault = pulled
    second = await monitor.read()
    assert isinstance(second, CardAbsent)
    assert monitor.source.check(second) is CardCheck.UNCHANGED  # never applied: nothing to remove


# -- open_smartcard_client ------------------------------------------------------------------------


class ClosableCard:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


async def test_open_smartcard_client_closes_a_component_it_opened_when_setup_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = ClosableCard()
    monkeypatch.setattr(io_smartcard, "open_component", lambda uri: opened)

    def refuse(component: Any) -> Any:
        raise ComponentNotFound("the card has no instance store")

    monkeypatch.setattr(io_smartcard, "SecureInstanceStore", refuse)
    with pytest.raises(ComponentNotFound, match="no instance store"):
        await open_smartcard_client(ClientConfig(endpoint="card-ep"), "pcsc:reader=X")
    assert opened.closed


async def test_open_smartcard_client_leaves_a_given_component_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = ClosableCard()

    def refuse(component: Any) -> Any:
        raise ComponentNotFound("the card has no instance store")

    monkeypatch.setattr(io_smartcard, "SecureInstanceStore", refuse)
    with pytest.raises(ComponentNotFound):
        await open_smartcard_client(ClientConfig(endpoint="card-ep"), given)  # type: ignore[arg-type]
    assert not given.closed


def test_reader_missing_through_pcscd(pcscd: None) -> None:
    """A ``pcsc:`` URI naming no reader: ReaderNotFound (an Lwm2mError naming the reader)."""
    uri = "pcsc:reader=No%20Such%20Reader;timeout=1"
    with pytest.raises(ReaderNotFound) as info:
        asyncio.run(open_smartcard_client(ClientConfig(endpoint="card-ep"), uri))
    assert "No Such Reader" in str(info.value)
