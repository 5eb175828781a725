"""Remote administration of a Secure Element through the Secure Component object
(LwM2M-SCS-3: the component is managed through an LwM2M object with standard protocols;
LwM2M-SCS-6: GlobalPlatform SERAM, whose wire format is Amendment B's).

The server writes a remote APDU script (ETSI TS 102 226 expanded format, :mod:`lwm2m.secure.ram`)
to /33000/x/30 and executes /33000/x/32; the client relays its C-APDUs, unchanged apart from the
logical channel, to a *security domain* of the card and answers with the Response Scripting
Template. The client is a relay, as SERAM's Admin Agent is: the server and the card run their
own secure channel (SCP03) through it, across several scripts of one *admin session* (one
logical channel, kept until ``End Admin Session`` or the card goes away).

**What a relay must not do** is give the server the card's other applications: the IoT SAFE
applet signs and derives with the client's own credentials, and the UICC file system holds the
smartcard bootstrap file with its keys. So :func:`check_script` lets through only

* the GlobalPlatform command set of a security domain (:data:`GP_INSTRUCTIONS`: INITIALIZE
  UPDATE, EXTERNAL AUTHENTICATE, GET DATA, GET STATUS, STORE DATA, DELETE, INSTALL, LOAD,
  PUT KEY, SET STATUS, BEGIN/END R-MAC SESSION) in the GlobalPlatform class (CLA 80-9F: b8
  set, b7 and b6 clear, so secure messaging and chaining bits may be set). Class 80 alone is
  not enough: on a UICC it also carries ETSI TS 102 221's card-wide commands (TERMINAL
  PROFILE, FETCH, ENVELOPE, SUSPEND UICC …), and classes A0-BF lose a bit when moved to
  another channel;
* SELECT by DF name of the target security domain itself, plain (CLA 00) and first
  occurrence (P2 b2-b1 = 00),

written for the basic channel; everything else (another SELECT, MANAGE CHANNEL, VERIFY PIN,
READ BINARY, …) refuses the whole script before anything reaches the card.

The targets a client accepts are its own configuration (default: none, the service is off); the
GlobalPlatform Issuer Security Domain is :data:`ISD_AID`. A component refuses a target that is,
is a prefix of, or starts with the AID of an application holding the client's credentials (the
IoT SAFE applet, the PKCS #15 application of the bootstrap file), and after the SELECT it
requires the card to name exactly the target in its answer (a partial AID selects the first
application it prefixes). The session is the card's, not a server's: with several admin
servers, give only one of them access to /33000 (a secure channel one opened serves the next).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from lwm2m.secure.interfaces import SecureComponentError
from lwm2m.secure.ram import CommandScript, ResponseScript

if TYPE_CHECKING:
    from lwm2m.secure.pcsc.apdu import CommandApdu

__all__ = [
    "ISD_AID",
    "AdminScriptRefused",
    "AdminScripts",
    "AdminStatus",
    "TargetNotSelectable",
    "check_script",
    "parse_aid",
]

ISD_AID = bytes.fromhex("A000000151000000")
"""The GlobalPlatform Issuer Security Domain (GP Card Specification: RID A000000151)."""

GP_INSTRUCTIONS = frozenset({0x50, 0x82, 0xCA, 0xCB, 0xF2, 0xE2, 0xE4, 0xE6, 0xE8, 0xD8, 0xF0})
GP_INSTRUCTIONS |= {0x7A, 0x78}
"""The security-domain commands relayed (GP Card Specification 2.3.1 §11 and Amd D; with
BEGIN/END R-MAC SESSION). Not SCP11's PERFORM SECURITY OPERATION / MUTUAL AUTHENTICATE (2A,
82 with another meaning) nor INTERNAL AUTHENTICATE (88), whose class 80 codes clash with
UICC commands."""

_SELECT = 0xA4
_BY_DF_NAME = 0x04


class AdminScriptRefused(SecureComponentError, ValueError):
    """A script this client does not relay (the message names the command and why)."""


class TargetNotSelectable(SecureComponentError):
    """SELECT of the target security domain failed (Amendment B: unknown-application)."""


class AdminStatus(IntEnum):
    """/33000/x/34 Admin Status."""

    NONE = 0
    RUNNING = 1
    COMPLETED = 2
    STOPPED = 3
    UNKNOWN_APPLICATION = 4
    UNAVAILABLE = 5


@runtime_checkable
class AdminScripts(Protocol):
    """A component that runs remote APDU scripts on a security domain (the ``pcsc:`` one).

    Both calls may block on the card (run them off the event loop)."""

    def run_admin_script(self, script: CommandScript, aid: bytes) -> ResponseScript:
        """Run ``script`` on the admin session's channel to ``aid`` (opened and selected on
        first use or when ``aid`` changes).

        :raises AdminScriptRefused: :func:`check_script` refused it.
        :raises TargetNotSelectable: ``aid`` could not be selected (the session ended).
        :raises ComponentUnavailable: the card went away (the session ended).
        """
        ...

    def end_admin_session(self) -> None:
        """Close the admin session's channel, if any (idempotent)."""
        ...

    def check_admin_target(self, aid: bytes) -> None:
        """Refuse (:class:`AdminScriptRefused`) a target that is or overlaps an application
        holding the client's credentials."""
        ...


def parse_aid(text: str) -> bytes:
    """An AID from hexadecimal text (5 to 16 bytes, ISO/IEC 7816-4 §8.2.1.2).

    >>> parse_aid("a000000151000000").hex().upper()
    'A000000151000000'
    """
    try:
        aid = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"AID {text!r} is not hexadecimal") from None
    if not 5 <= len(aid) <= 16:
        raise ValueError(f"an AID has 5 to 16 bytes, not {len(aid)}")
    return aid


def check_script(script: CommandScript, target: bytes) -> tuple[CommandApdu, ...]:
    """The script's commands, decoded, when every one may be relayed to ``target``.

    :raises AdminScriptRefused: naming the first command that may not, and why.

    >>> script = CommandScript((bytes.fromhex("80CA9F7F00"),))
    >>> [c.ins for c in check_script(script, ISD_AID)]
    [202]
    >>> try:
    ...     check_script(CommandScript((bytes.fromhex("00B0000000"),)), ISD_AID)
    ... except AdminScriptRefused as exc:
    ...     print(str(exc)[:44])
    command 1 (00 B0 00 00): only GlobalPlatform
    """
    # Imported here: lwm2m.secure loads a backend only when it is used (the pcsc package).
    from lwm2m.secure.pcsc.apdu import CommandApdu
    from lwm2m.secure.pcsc.errors import PcscError

    commands = []
    for number, raw in enumerate(script.commands, 1):
        header = raw[:4].hex(" ").upper()
        try:
            command = CommandApdu.decode(raw)
        except PcscError as exc:
            raise AdminScriptRefused(f"command {number} ({header}): {exc}") from None
        if command.channel != 0:
            raise AdminScriptRefused(
                f"command {number} ({header}): scripts are written for the basic channel; "
                "the client chooses the logical channel"
            )
        if command.cla & 0xE0 == 0x80 and command.ins in GP_INSTRUCTIONS:
            commands.append(command)
            continue
        if command.ins == _SELECT:
            plain = command.cla == 0x00 and not command.p2 & 0x03
            if plain and command.p1 == _BY_DF_NAME and command.data == target:
                commands.append(command)
                continue
            raise AdminScriptRefused(
                f"command {number} ({header}): a script may select only its target "
                f"{target.hex().upper()} (CLA 00, P1 04, first occurrence)"
            )
        raise AdminScriptRefused(
            f"command {number} ({header}): only GlobalPlatform security-domain commands and "
            "SELECT of the target security domain are relayed"
        )
    return tuple(commands)
