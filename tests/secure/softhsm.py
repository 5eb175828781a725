"""A throw-away SoftHSM2 token directory for tests and benchmarks.

SoftHSM2 reads ``SOFTHSM2_CONF`` (a config naming its token directory) when the PKCS#11 module is
initialised, and lists only the tokens that existed then. So: create the directory, the config
and *every* token first (:meth:`SoftHsm.create`), point ``SOFTHSM2_CONF`` at it, and only then
let python-pkcs11 load the module. Used by ``tests/secure/conftest.py`` and ``bench/secure.py``;
``scripts/softhsm-env.sh`` does the same from a shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

__all__ = ["MODULE_CANDIDATES", "SoftHsm", "find_module", "find_util"]

#: Where Debian, Ubuntu and Fedora install the SoftHSM2 PKCS#11 module.
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
SO_PIN = "12345678"
USER_PIN = "1234"


def find_module() -> str | None:
    """The SoftHSM2 module path (``SOFTHSM2_MODULE`` overrides), or None."""
    override = os.environ.get("SOFTHSM2_MODULE")
    if override:
        return override if os.path.isfile(override) else None
    return next((p for p in MODULE_CANDIDATES if os.path.isfile(p)), None)


def find_util() -> str | None:
    """``softhsm2-util``, or None."""
    return shutil.which("softhsm2-util")


@dataclass
class SoftHsm:
    """A SoftHSM2 configuration in ``root`` with tokens made by :meth:`add_token`."""

    root: Path
    module: str
    util: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "softhsm2.conf"

    @classmethod
    def create(cls, root: Path, labels: tuple[str, ...] = ()) -> SoftHsm:
        """Write the config under ``root`` and initialise a token per label (user PIN 1234)."""
        module, util = find_module(), find_util()
        if module is None or util is None:
            raise FileNotFoundError("SoftHSM2 is not installed (Debian package softhsm2)")
        (root / "tokens").mkdir(parents=True, exist_ok=True)
        hsm = cls(root, module, util)
        hsm.conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
        )
        for label in labels:
            hsm.add_token(label)
        return hsm

    def add_token(self, label: str, pin: str = USER_PIN) -> None:
        """Initialise a token (before the module is loaded in this process; see above)."""
        subprocess.run(
            [
                self.util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                pin,
            ],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            check=True,
            capture_output=True,
        )
        self.tokens[label] = pin

    def uri(self, label: str, *, pin: str | None = USER_PIN, extra: str = "") -> str:
        """An RFC 7512 URI of token ``label`` with this module (and ``pin-value`` if given)."""
        query = f"module-path={quote(self.module, safe='/')}"
        if pin is not None:
            query += f"&pin-value={quote(pin)}"
        return f"pkcs11:token={quote(label)}{extra}?{query}"
