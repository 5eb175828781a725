"""RFC 8613 Appendix C test vectors, in both directions.

Values transcribed from RFC 8613 Appendix C (C.1-C.8) and cross-checked against the test suites
of two other implementations (aiocoap's ``tests/test_oscore.py`` and an independent transcription
of the same appendix); all three agree, including the full protected message of C.6.

* C.1-C.3: the HKDF ``info`` inputs, Sender Key, Recipient Key, Common IV and the nonces for
  Partial IV 0, for client and server.
* C.4-C.6 (requests): our ``protect_request`` gives the exact protected bytes and every
  intermediate value (AAD, plaintext, nonce, option value); the server's ``unprotect_request`` of
  those bytes gives back the unprotected request.
* C.7-C.8 (responses): the server's ``protect_response`` gives the exact bytes; the client's
  ``unprotect_response`` gives back the unprotected response.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lwm2m.coap.message import Message, decode
from lwm2m.oscore import (
    AeadAlgorithm,
    OscoreOption,
    OscoreParameters,
    RequestBinding,
    SecurityContext,
    SoftwareMasterSecret,
    derive_key_material,
    unprotect_request,
)
from lwm2m.oscore.cose import aad, aead_nonce, encode_partial_iv, encode_plaintext, hkdf_info

h = bytes.fromhex

MASTER_SECRET = h("0102030405060708090a0b0c0d0e0f10")
MASTER_SALT = h("9e7ca92223786340")
ID_CONTEXT = h("37cbf3210017a2d3")
CCM = AeadAlgorithm.AES_CCM_16_64_128


@dataclass(frozen=True)
class Derivation:
    name: str
    master_salt: bytes
    id_context: bytes | None
    sender_id: bytes
    recipient_id: bytes
    info_sender_key: str
    info_recipient_key: str
    info_common_iv: str
    sender_key: str
    recipient_key: str
    common_iv: str
    sender_nonce: str
    recipient_nonce: str

    def parameters(self) -> OscoreParameters:
        return OscoreParameters(
            sender_id=self.sender_id,
            recipient_id=self.recipient_id,
            master_salt=self.master_salt,
            id_context=self.id_context,
        )


DERIVATIONS = [
    Derivation(
        "C.1.1",
        MASTER_SALT,
        None,
        b"",
        b"\x01",
        "8540f60a634b657910",
        "854101f60a634b657910",
        "8540f60a6249560d",
        "f0910ed7295e6ad4b54fc793154302ff",
        "ffb14e093c94c9cac9471648b4f98710",
        "4622d4dd6d944168eefb54987c",
        "4622d4dd6d944168eefb54987c",
        "4722d4dd6d944169eefb54987c",
    ),
    Derivation(
        "C.1.2",
        MASTER_SALT,
        None,
        b"\x01",
        b"",
        "854101f60a634b657910",
        "8540f60a634b657910",
        "8540f60a6249560d",
        "ffb14e093c94c9cac9471648b4f98710",
        "f0910ed7295e6ad4b54fc793154302ff",
        "4622d4dd6d944168eefb54987c",
        "4722d4dd6d944169eefb54987c",
        "4622d4dd6d944168eefb54987c",
    ),
    Derivation(
        "C.2.1",
        b"",
        None,
        b"\x00",
        b"\x01",
        "854100f60a634b657910",
        "854101f60a634b657910",
        "8540f60a6249560d",
        "321b26943253c7ffb6003b0b64d74041",
        "e57b5635815177cd679ab4bcec9d7dda",
        "be35ae297d2dace910c52e99f9",
        "bf35ae297d2dace910c52e99f9",
        "bf35ae297d2dace810c52e99f9",
    ),
    Derivation(
        "C.2.2",
        b"",
        None,
        b"\x01",
        b"\x00",
        "854101f60a634b657910",
        "854100f60a634b657910",
        "8540f60a6249560d",
        "e57b5635815177cd679ab4bcec9d7dda",
        "321b26943253c7ffb6003b0b64d74041",
        "be35ae297d2dace910c52e99f9",
        "bf35ae297d2dace810c52e99f9",
        "bf35ae297d2dace910c52e99f9",
    ),
    Derivation(
        "C.3.1",
        MASTER_SALT,
        ID_CONTEXT,
        b"",
        b"\x01",
        "85404837cbf3210017a2d30a634b657910",
        "8541014837cbf3210017a2d30a634b657910",
        "85404837cbf3210017a2d30a6249560d",
        "af2a1300a5e95788b356336eeecd2b92",
        "e39a0c7c77b43f03b4b39ab9a268699f",
        "2ca58fb85ff1b81c0b7181b85e",
        "2ca58fb85ff1b81c0b7181b85e",
        "2da58fb85ff1b81d0b7181b85e",
    ),
    Derivation(
        "C.3.2",
        MASTER_SALT,
        ID_CONTEXT,
        b"\x01",
        b"",
        "8541014837cbf3210017a2d30a634b657910",
        "85404837cbf3210017a2d30a634b657910",
        "85404837cbf3210017a2d30a6249560d",
        "e39a0c7c77b43f03b4b39ab9a268699f",
        "af2a1300a5e95788b356336eeecd2b92",
        "2ca58fb85ff1b81c0b7181b85e",
        "2da58fb85ff1b81d0b7181b85e",
        "2ca58fb85ff1b81c0b7181b85e",
    ),
]
BY_NAME = {d.name: d for d in DERIVATIONS}


@pytest.mark.parametrize("vector", DERIVATIONS, ids=lambda d: d.name)
def test_key_derivation(vector: Derivation) -> None:
    aead = AeadAlgorithm.AES_CCM_16_64_128
    assert hkdf_info(vector.sender_id, vector.id_context, aead, "Key", 16).hex() == (
        vector.info_sender_key
    )
    assert hkdf_info(vector.recipient_id, vector.id_context, aead, "Key", 16).hex() == (
        vector.info_recipient_key
    )
    assert hkdf_info(b"", vector.id_context, aead, "IV", 13).hex() == vector.info_common_iv
    keys = derive_key_material(SoftwareMasterSecret(MASTER_SECRET), vector.parameters())
    assert keys.sender_key.hex() == vector.sender_key
    assert keys.recipient_key.hex() == vector.recipient_key
    assert keys.common_iv.hex() == vector.common_iv
    assert aead_nonce(keys.common_iv, vector.sender_id, b"\x00").hex() == vector.sender_nonce
    assert aead_nonce(keys.common_iv, vector.recipient_id, b"\x00").hex() == (
        vector.recipient_nonce
    )


@dataclass(frozen=True)
class RequestVector:
    name: str
    context: str
    unprotected: str
    kid_context: bytes | None
    aad_array: str
    aad: str
    plaintext: str
    nonce: str
    option: str
    ciphertext: str
    protected: str


REQUESTS = [
    RequestVector(
        "C.4",
        "C.1.1",
        "44015d1f00003974396c6f63616c686f737483747631",
        None,
        "8501810a40411440",
        "8368456e63727970743040488501810a40411440",
        "01b3747631",
        "4622d4dd6d944168eefb549868",
        "0914",
        "612f1092f1776f1c1668b3825e",
        "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e",
    ),
    RequestVector(
        "C.5",
        "C.2.1",
        "440171c30000b932396c6f63616c686f737483747631",
        None,
        "8501810a4100411440",
        "8368456e63727970743040498501810a4100411440",
        "01b3747631",
        "bf35ae297d2dace910c52e99ed",
        "091400",
        "4ed339a5a379b0b8bc731fffb0",
        "440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0",
    ),
    RequestVector(
        "C.6",
        "C.3.1",
        "44012f8eef9bbf7a396c6f63616c686f737483747631",
        ID_CONTEXT,
        "8501810a40411440",
        "8368456e63727970743040488501810a40411440",
        "01b3747631",
        "2ca58fb85ff1b81c0b7181b84a",
        "19140837cbf3210017a2d3",
        "72cd7273fd331ac45cffbe55c3",
        "44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe55c3",
    ),
]


def context(name: str, sender_sequence_number: int = 0) -> SecurityContext:
    return SecurityContext(
        SoftwareMasterSecret(MASTER_SECRET),
        BY_NAME[name].parameters(),
        sender_sequence_number=sender_sequence_number,
    )


def server_name(client_name: str) -> str:
    return client_name[:-1] + "2"


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda v: v.name)
def test_request_intermediate_values(vector: RequestVector) -> None:
    derivation = BY_NAME[vector.context]
    piv = encode_partial_iv(20)
    assert piv == b"\x14"
    full_aad = aad(CCM, derivation.sender_id, piv)
    assert full_aad.hex() == vector.aad
    assert vector.aad_array in full_aad.hex()  # the external_aad wraps the aad_array
    unprotected = decode(h(vector.unprotected))
    inner = [o for o in unprotected.options if o[0] != 3]  # Uri-Host is Class U
    assert encode_plaintext(unprotected.code, inner, unprotected.payload).hex() == vector.plaintext
    keys = derive_key_material(SoftwareMasterSecret(MASTER_SECRET), derivation.parameters())
    assert aead_nonce(keys.common_iv, derivation.sender_id, piv).hex() == vector.nonce
    option = OscoreOption(piv, derivation.sender_id, vector.kid_context)
    assert option.encode().hex() == vector.option


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda v: v.name)
def test_request_protection(vector: RequestVector) -> None:
    client = context(vector.context, sender_sequence_number=20)
    protected, binding = client.protect_request(decode(h(vector.unprotected)))
    assert protected.encode().hex() == vector.protected
    assert protected.payload.hex() == vector.ciphertext
    assert client.sender_sequence_number == 21
    assert binding == RequestBinding(BY_NAME[vector.context].sender_id, b"\x14", vector.kid_context)


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda v: v.name)
def test_request_verification(vector: RequestVector) -> None:
    server = context(server_name(vector.context))
    seen: list[tuple[bytes, bytes | None]] = []

    def find(kid: bytes, kid_context: bytes | None) -> SecurityContext:
        seen.append((kid, kid_context))
        return server

    request, found, binding = unprotect_request(decode(h(vector.protected)), find)
    assert request == decode(h(vector.unprotected))
    assert request.encode().hex() == vector.unprotected
    assert found is server
    assert seen == [(BY_NAME[vector.context].sender_id, vector.kid_context)]
    assert binding == RequestBinding(BY_NAME[vector.context].sender_id, b"\x14", vector.kid_context)
    assert server.replay_window.highest == 20


UNPROTECTED_RESPONSE = "64455d1f00003974ff48656c6c6f20576f726c6421"
RESPONSE_PLAINTEXT = "45ff48656c6c6f20576f726c6421"
C7_PROTECTED = "64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106"
C8_PROTECTED = "64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e"


def test_response_intermediate_values() -> None:
    response = decode(h(UNPROTECTED_RESPONSE))
    plaintext = encode_plaintext(response.code, response.options, response.payload)
    assert plaintext.hex() == RESPONSE_PLAINTEXT
    assert aad(CCM, b"", b"\x14").hex() == "8368456e63727970743040488501810a40411440"
    common_iv = h("4622d4dd6d944168eefb54987c")
    assert aead_nonce(common_iv, b"", b"\x14").hex() == "4622d4dd6d944168eefb549868"  # C.7
    assert aead_nonce(common_iv, b"\x01", b"\x00").hex() == "4722d4dd6d944169eefb54987c"  # C.8
    assert OscoreOption().encode() == b""  # C.7
    assert OscoreOption(partial_iv=b"\x00").encode().hex() == "0100"  # C.8


def server_binding_for_c4() -> tuple[SecurityContext, RequestBinding]:
    server = context("C.1.2")
    _, _, binding = unprotect_request(decode(h(REQUESTS[0].protected)), lambda k, c: server)
    return server, binding


@pytest.mark.parametrize(
    ("name", "new_partial_iv", "expected"),
    [("C.7", False, C7_PROTECTED), ("C.8", True, C8_PROTECTED)],
)
def test_response_protection(name: str, new_partial_iv: bool, expected: str) -> None:
    server, binding = server_binding_for_c4()
    protected = server.protect_response(
        decode(h(UNPROTECTED_RESPONSE)), binding, new_partial_iv=new_partial_iv
    )
    assert protected.encode().hex() == expected
    assert server.sender_sequence_number == (1 if new_partial_iv else 0)


@pytest.mark.parametrize(
    ("name", "new_partial_iv", "expected"),
    [("C.7", False, C7_PROTECTED), ("C.8", True, C8_PROTECTED)],
)
def test_response_protection_from_a_stored_binding(
    name: str, new_partial_iv: bool, expected: str
) -> None:
    """The RFC gives the binding as request_kid = h'' and request_piv = h'14'."""
    server = context("C.1.2")
    binding = RequestBinding(kid=b"", piv=b"\x14", kid_context=None)
    protected = server.protect_response(
        decode(h(UNPROTECTED_RESPONSE)), binding, new_partial_iv=new_partial_iv
    )
    assert protected.encode().hex() == expected


@pytest.mark.parametrize(("name", "protected"), [("C.7", C7_PROTECTED), ("C.8", C8_PROTECTED)])
def test_response_verification(name: str, protected: str) -> None:
    client = context("C.1.1", sender_sequence_number=20)
    outer_request, binding = client.protect_request(decode(h(REQUESTS[0].unprotected)))
    assert outer_request.encode().hex() == REQUESTS[0].protected
    response = client.unprotect_response(decode(h(protected)), binding)
    assert response == decode(h(UNPROTECTED_RESPONSE))
    assert response.encode().hex() == UNPROTECTED_RESPONSE
    assert binding.responses_accepted == 1


def test_unprotected_request_matches_wire_bytes() -> None:
    """The unprotected C.4 request keeps header, token and Message ID of the outer message."""
    request = decode(h(REQUESTS[0].unprotected))
    assert request == Message(
        1, mtype=0, mid=0x5D1F, token=h("00003974"), options=[(3, b"localhost"), (11, b"tv1")]
    )
