"""``python -m lwm2m.vse --port 35963 --state vse.json``: run the virtual secure element."""

from __future__ import annotations

import argparse
import logging
import sys

from lwm2m.vse.server import VpcdUnreachable, run

log = logging.getLogger("lwm2m.vse")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lwm2m.vse", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="vpcd address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=35963, help="vpcd port (default 35963)")
    parser.add_argument("--state", required=True, help="state file (created if missing)")
    parser.add_argument("--ready-file", help="written once pcscd has read the ATR")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--fail-after", type=int, help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="vse: %(levelname)s %(message)s",
    )
    try:
        return run(
            state_path=args.state,
            host=args.host,
            port=args.port,
            connect_timeout=args.connect_timeout,
            ready_file=args.ready_file,
            fail_after=args.fail_after,
        )
    except VpcdUnreachable as exc:
        log.error("%s", exc)
        return 2
    except (ValueError, OSError) as exc:  # the state file
        log.error("state file %s: %s", args.state, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
