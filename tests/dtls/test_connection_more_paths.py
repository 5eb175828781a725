"""More DTLS connection paths (RFC 6347 §4.1.2, §4.2.4): an unauthenticated epoch-0 alert
cannot end an established association."""

from __future__ import annotations

from lwm2m.dtls import AlertReceived, ApplicationData, ConnectionClosed
from lwm2m.dtls.constants import ContentType
from lwm2m.dtls.record import encode_record

from .helpers import Link, dtls_server, psk_client

FATAL, HANDSHAKE_FAILURE = 2, 40


def test_epoch_0_alert_cannot_close_an_established_connection() -> None:
    link = Link(psk_client(), dtls_server())
    link.run()
    before = len(link.client_events)
    forged = encode_record(ContentType.ALERT, 0xFEFD, 0, 500, bytes([FATAL, HANDSHAKE_FAILURE]))
    link.client.receive_datagram(forged, link.clock.now)
    link.pump()
    new = link.client_events[before:]
    assert not any(isinstance(e, AlertReceived | ConnectionClosed) for e in new)
    # the association still carries data both ways
    link.client.send(b"still up")
    link.pump()
    assert ApplicationData(b"still up") in link.server_events
