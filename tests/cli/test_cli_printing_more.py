"""Event lines the printing tests leave out: the Secure Component identification a server
prints after a Register, and a console whose reader went away."""

from __future__ import annotations

import os

from lwm2m.cli.printing import make_console, server_event_line
from lwm2m.server import events as se
from lwm2m.server.registration import ComponentIdentification

from .test_printing import plain, registration


def test_secure_component_identification_lines() -> None:
    reg = registration()
    software = ComponentIdentification(0, 0, False, "soft", identifiers=("soft-id:ab",))
    assert plain(server_event_line(se.ComponentIdentified(reg, (software,)))) == (
        "sc-identified  dev-1 /rd/abc /33000/0 software (soft) — software, not secure "
        "hardware; ids: soft-id:ab; dloa: -"
    )
    two = plain(server_event_line(se.ComponentIdentified(reg, (software, software))))
    assert two.count("/33000/0 software") == 2
    assert " | " in two
    assert plain(server_event_line(se.ComponentIdentified(reg, ()))) == (
        "sc-identified  dev-1 /rd/abc (could not be read)"
    )


def test_a_console_whose_reader_left_goes_quiet() -> None:
    """``lwm2m server | head``: once the pipe breaks, printing is silently dropped."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as file:
        console = make_console()
        console.file = file
        console.on_broken_pipe()
        assert console.quiet
        console.print("dropped")  # no exception, nothing written
        file.write("x")
        file.flush()  # the descriptor now points at /dev/null: no EPIPE either
