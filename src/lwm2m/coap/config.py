"""Configuration of the CoAP engine: transmission parameters (RFC 7252 §4.8, §4.8.2) and bounds.

:class:`TransmissionParameters` holds the RFC 7252 §4.8 parameters and derives the §4.8.2 times
from them. :class:`CoapConfig` adds everything else the engine needs to bound its memory: the
duplicate cache, block-wise reassembly and caches, token length, Observe policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CoapConfig", "TransmissionParameters"]


@dataclass(frozen=True, slots=True)
class TransmissionParameters:
    """RFC 7252 §4.8 transmission parameters; defaults are the RFC's."""

    ack_timeout: float = 2.0
    """ACK_TIMEOUT: initial retransmission timeout of a Confirmable message, in seconds."""
    ack_random_factor: float = 1.5
    """ACK_RANDOM_FACTOR: the initial timeout is drawn from [ACK_TIMEOUT, ACK_TIMEOUT x this]."""
    max_retransmit: int = 4
    """MAX_RETRANSMIT: retransmissions before giving up (so MAX_RETRANSMIT+1 transmissions)."""
    nstart: int = 1
    """NSTART: outstanding interactions per peer (RFC 7252 §4.7)."""
    default_leisure: float = 5.0
    """DEFAULT_LEISURE (multicast responses; unused for unicast)."""
    probing_rate: float = 1.0
    """PROBING_RATE in bytes/second (not enforced; documented for completeness)."""
    max_latency: float = 100.0
    """MAX_LATENCY: the assumed maximum datagram transit time (RFC 7252 §4.8.2)."""

    def __post_init__(self) -> None:
        if self.ack_timeout <= 0 or self.ack_random_factor < 1:
            raise ValueError("ack_timeout must be > 0 and ack_random_factor >= 1")
        if self.max_retransmit < 0 or self.nstart < 1:
            raise ValueError("max_retransmit must be >= 0 and nstart >= 1")

    @property
    def max_transmit_span(self) -> float:
        """ACK_TIMEOUT x (2^MAX_RETRANSMIT - 1) x ACK_RANDOM_FACTOR (45 s by default)."""
        return self.ack_timeout * ((1 << self.max_retransmit) - 1) * self.ack_random_factor

    @property
    def max_transmit_wait(self) -> float:
        """ACK_TIMEOUT x (2^(MAX_RETRANSMIT+1) - 1) x ACK_RANDOM_FACTOR (93 s by default)."""
        return self.ack_timeout * ((2 << self.max_retransmit) - 1) * self.ack_random_factor

    @property
    def processing_delay(self) -> float:
        return self.ack_timeout

    @property
    def max_rtt(self) -> float:
        return 2 * self.max_latency + self.processing_delay

    @property
    def exchange_lifetime(self) -> float:
        """MAX_TRANSMIT_SPAN + 2 x MAX_LATENCY + PROCESSING_DELAY (247 s by default)."""
        return self.max_transmit_span + 2 * self.max_latency + self.processing_delay

    @property
    def non_lifetime(self) -> float:
        """MAX_TRANSMIT_SPAN + MAX_LATENCY (145 s by default)."""
        return self.max_transmit_span + self.max_latency


@dataclass(frozen=True, slots=True)
class CoapConfig:
    """Engine configuration.

    Every buffer that peers can fill has a bound here (duplicate cache, reassemblies, block
    cache); state created by local calls (requests, observations, queued sends) is bounded by the
    caller; a peer with no state left is forgotten about EXCHANGE_LIFETIME after its last datagram.
    """

    transmission: TransmissionParameters = field(default_factory=TransmissionParameters)
    """RFC 7252 §4.8 parameters."""
    token_length: int = 8
    """Length of generated tokens, 0-8 bytes (RFC 7252 §5.3.1; longer is harder to spoof). With
    0 a request gets the empty token unless another request to the same peer holds it; then it
    gets a random 4-byte token (the empty token is fine only while no other is in use with that
    destination)."""
    dedup_max_entries: int = 200_000
    """Hard cap on remembered exchanges (duplicate detection, RFC 7252 §4.5). Beyond it the
    oldest generation is evicted early and counted in ``stats.dedup_evicted``."""
    dedup_generations: int = 8
    """The duplicate cache is kept as this many generations of EXCHANGE_LIFETIME / n each."""
    empty_ack_delay: float = 0.5
    """If the application has not responded to a Confirmable request after this many seconds,
    the engine sends an empty ACK and the response becomes a separate one (RFC 7252 §5.2.2)."""
    response_timeout: float | None = None
    """How long a request waits for a separate (or NON) response after its ACK / transmission;
    None means MAX_TRANSMIT_WAIT (93 s)."""
    block_szx: int = 6
    """Largest block size exponent we send and accept, 0-6 (16-1024 bytes; RFC 7959 §2.2)."""
    request_block2_szx: int | None = None
    """If set, requests carry Block2(0, szx) up front: early negotiation of a smaller response
    block size (RFC 7959 §2.4)."""
    max_body_size: int = 1 << 20
    """Largest reassembled body (Block1 server side, Block2 client side); beyond it a server
    answers 4.13 with Size1 (RFC 7959 §2.9.3) and a client fails the request."""
    max_reassemblies: int = 64
    """Concurrent Block1 reassemblies; beyond it new ones get 5.03."""
    reassembly_timeout: float = 60.0
    """A Block1 reassembly with no new block for this long is dropped (later blocks get 4.08)."""
    block2_cache_entries: int = 256
    """Representations kept to serve later Block2 blocks without asking the application."""
    block2_cache_timeout: float = 60.0
    """Lifetime of such a representation."""
    notification_confirmable: bool = False
    """Send notifications as CON (True) or NON (False) unless the call says otherwise."""
    observe_con_interval: float = 86_400.0
    """A NON-by-default notifier sends a CON notification at least this often (RFC 7641 §4.5)."""

    def __post_init__(self) -> None:
        if not 0 <= self.token_length <= 8:
            raise ValueError("token_length must be 0..8")
        if not 0 <= self.block_szx <= 6:
            raise ValueError("block_szx must be 0..6")
        if self.request_block2_szx is not None and not 0 <= self.request_block2_szx <= 6:
            raise ValueError("request_block2_szx must be 0..6")
        if self.dedup_max_entries < self.dedup_generations or self.dedup_generations < 2:
            raise ValueError("dedup_generations must be >= 2 and <= dedup_max_entries")
