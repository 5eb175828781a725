"""The ``pcsc:`` Secure Component backend: smart cards (UICC, eUICC, eSE) through PC/SC.

Sans-IO layers, each tested without a reader:

* :mod:`~lwm2m.secure.pcsc.apdu` — command/response APDUs and status words (ISO/IEC 7816-4 §5);
* :mod:`~lwm2m.secure.pcsc.iso7816` — SELECT, READ BINARY/RECORD, MANAGE CHANNEL, GET RESPONSE
  chaining (ISO/IEC 7816-4 §7-§11, ETSI TS 102 221);
* :mod:`~lwm2m.secure.pcsc.ber` — BER-TLV (ISO/IEC 7816-4 §6.3);
* :mod:`~lwm2m.secure.pcsc.pkcs15` — EF.DIR, EF.ODF, EF.DODF (PKCS #15 / ISO/IEC 7816-15);
* :mod:`~lwm2m.secure.pcsc.bootstrap_file` — EF LwM2M_Bootstrap (LwM2M-TS-Core Appendix G);
* :mod:`~lwm2m.secure.pcsc.scp03` — GlobalPlatform SCP03 (GP Card Spec 2.3 Amd D; Core App. H);
* :mod:`~lwm2m.secure.pcsc.iotsafe` — the GSMA IoT SAFE applet command set (IoT.05);
* :mod:`~lwm2m.secure.pcsc.card` — the smartcard-bootstrap and identification procedures over
  any ``Transmit`` callable;
* :mod:`~lwm2m.secure.pcsc.uri` — ``pcsc:`` URIs (reader, ATR pattern, AID, PIN, SCP03 keys);
* :mod:`~lwm2m.secure.pcsc.directory` — the on-card map from credential labels to containers;
* :mod:`~lwm2m.secure.pcsc.session` — the card session (applet channel, PIN1, caches) that the
  components of a process share;
* :mod:`~lwm2m.secure.pcsc.component` — :class:`PcscComponent`, the backend object, and
  :func:`open_uri`, which :func:`lwm2m.secure.open_component` calls for ``pcsc:`` URIs.

Only :mod:`~lwm2m.secure.pcsc.transport` imports pyscard; it is loaded on demand
(:func:`open_uri`), so this package imports without pyscard installed.
"""

from lwm2m.secure.pcsc.apdu import CommandApdu, ResponseApdu, StatusWord
from lwm2m.secure.pcsc.bootstrap_file import (
    BootstrapData,
    BootstrapObject,
    Layout,
    build_bootstrap_file,
    parse_bootstrap_file,
)
from lwm2m.secure.pcsc.card import (
    Card,
    CardIdentification,
    SmartcardBootstrap,
    read_identification,
    read_smartcard_bootstrap,
)
from lwm2m.secure.pcsc.component import (
    KeyNotFound,
    PcscComponent,
    PcscKeyHandle,
    PcscPskHandle,
    open_uri,
)
from lwm2m.secure.pcsc.errors import (
    ApduError,
    BootstrapFileError,
    CardDataError,
    CardMemoryFull,
    CardNotPresent,
    CardRemoved,
    CommandNotSupported,
    ConditionsNotSatisfied,
    IotSafeError,
    ObjectNotFound,
    PcscError,
    PcscUnavailable,
    Pkcs15Error,
    ReaderNotFound,
    Scp03Error,
    SecurityStatusNotSatisfied,
    StatusWordError,
    TransportError,
)
from lwm2m.secure.pcsc.scp03 import Scp03Host, StaticKeys
from lwm2m.secure.pcsc.uri import PcscUri, parse_pcsc_uri

__all__ = [
    "ApduError",
    "BootstrapData",
    "BootstrapFileError",
    "BootstrapObject",
    "Card",
    "CardDataError",
    "CardIdentification",
    "CardMemoryFull",
    "CardNotPresent",
    "CardRemoved",
    "CommandApdu",
    "CommandNotSupported",
    "ConditionsNotSatisfied",
    "IotSafeError",
    "KeyNotFound",
    "Layout",
    "ObjectNotFound",
    "PcscComponent",
    "PcscError",
    "PcscKeyHandle",
    "PcscPskHandle",
    "PcscUnavailable",
    "PcscUri",
    "Pkcs15Error",
    "ReaderNotFound",
    "ResponseApdu",
    "Scp03Error",
    "Scp03Host",
    "SecurityStatusNotSatisfied",
    "SmartcardBootstrap",
    "StaticKeys",
    "StatusWord",
    "StatusWordError",
    "TransportError",
    "build_bootstrap_file",
    "open_uri",
    "parse_bootstrap_file",
    "parse_pcsc_uri",
    "read_identification",
    "read_smartcard_bootstrap",
]
