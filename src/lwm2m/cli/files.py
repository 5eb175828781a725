"""Reading the text and TOML files the commands are given (``client --config``,
``bootstrap-server --config``, ``sc write-bootstrap``): every problem is one line that names
the file, and no line repeats what the file holds.

- :func:`read_text` — ``cannot read PATH: <reason>`` (missing, a folder, no permission) and
  ``PATH: not UTF-8 text (...)`` as :class:`click.ClickException`;
- :func:`read_toml` — the same, and ``PATH: not valid TOML (<position>)`` as the caller's
  error type (the client's :class:`~lwm2m.client.config.ConfigError`, say).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import click

__all__ = ["read_text", "read_toml"]


def read_text(path: str) -> str:
    """The UTF-8 text of ``path``."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def read_toml(
    path: str, error: Callable[[str], Exception] = click.ClickException
) -> dict[str, Any]:
    """The TOML document of ``path``; a syntax error is ``error(message)``."""
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc})") from None
