"""The soft: backend: the encrypted file, its failure modes and concurrent writers."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import cbor2
import pytest

from lwm2m.secure import (
    AuthenticationError,
    ComponentNotFound,
    ComponentUnavailable,
    KeyNotFound,
    PinIncorrect,
    PinRequired,
    StorageCorrupted,
    open_component,
)
from lwm2m.secure.soft import MAGIC, SoftComponent, tls12_prf

from .conftest import reference_prf

FAST = {"scrypt_log2_n": 10}


def make(path: Path, **kwargs: object) -> SoftComponent:
    options: dict[str, object] = {"passphrase": "pw", "create": True, **FAST, **kwargs}
    return SoftComponent(path, **options)  # type: ignore[arg-type]


def test_prf_matches_reference() -> None:
    for length in (12, 32, 48, 100):
        assert tls12_prf(b"secret", b"label", b"seed", length) == reference_prf(
            b"secret", b"label", b"seed", length
        )


def test_file_is_private_and_encrypted(tmp_path: Path) -> None:
    path = tmp_path / "sc.bin"
    with make(path) as component:
        component.put_secret("s", b"very-recognisable-secret")
        component.import_psk(b"identity-xyz", b"psk-bytes-0123456789")
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    assert b"very-recognisable-secret" not in data
    assert b"psk-bytes" not in data
    assert b"identity-xyz" not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "sc.bin.lock").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.bin", "sc.bin.lock"]  # no temp


def test_default_scrypt_cost_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "sc.bin"
    make(path, scrypt_log2_n=15).close()
    header_len = int.from_bytes(path.read_bytes()[8:10], "big")
    header = cbor2.loads(path.read_bytes()[10 : 10 + header_len])
    assert (header["kdf"], header["n"], header["r"], header["p"]) == ("scrypt", 15, 8, 1)
    with SoftComponent(path, passphrase="pw") as again:  # cost comes from the file
        assert again.credentials() == []


def test_open_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sc.bin"
    with pytest.raises(ComponentNotFound, match="no soft Secure Component"):
        SoftComponent(path, passphrase="pw")
    with pytest.raises(ComponentNotFound, match="folder"):
        make(tmp_path / "missing" / "sc.bin")
    with pytest.raises(PinRequired, match="passphrase-env"):
        SoftComponent(path)
    with pytest.raises(ValueError, match="not both"):
        SoftComponent(path, passphrase="pw", key=bytes(32))
    with pytest.raises(AuthenticationError, match="32 bytes"):
        SoftComponent(path, key=bytes(16))
    with pytest.raises(ValueError, match=r"10\.\.22"):
        SoftComponent(path, passphrase="pw", scrypt_log2_n=5)
    make(path).close()
    with pytest.raises(PinIncorrect, match="wrong passphrase"):
        SoftComponent(path, passphrase="wrong")
    with pytest.raises(PinIncorrect, match="protected by a passphrase"):
        SoftComponent(path, key=bytes(32))
    # URI forms
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    with pytest.raises(PinRequired, match="NO_SUCH_VAR"):
        open_component(f"soft:{path}?passphrase-env=NO_SUCH_VAR")
    with pytest.raises(PinRequired, match="NO_SUCH_VAR"):
        open_component(f"soft:{path}?key-env=NO_SUCH_VAR")
    monkeypatch.setenv("BAD_KEY", "abc")
    with pytest.raises(AuthenticationError, match="64 hex digits"):
        open_component(f"soft:{path}?key-env=BAD_KEY")
    monkeypatch.setenv("NOT_HEX", "zz" * 32)
    with pytest.raises(AuthenticationError, match="64 hex digits"):
        open_component(f"soft:{path}?key-env=NOT_HEX")


def test_raw_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sc.bin"
    monkeypatch.setenv("SC_KEY", os.urandom(32).hex())
    with open_component(f"soft:{path}?key-env=SC_KEY", create=True) as component:
        component.put_secret("s", b"x")
    with open_component(f"soft:{path}?key-env=SC_KEY") as component:
        assert component.get_secret("s") == b"x"
    with pytest.raises(PinIncorrect, match="protected by a raw key"):
        SoftComponent(path, passphrase="pw")
    monkeypatch.setenv("SC_KEY", os.urandom(32).hex())
    with pytest.raises(PinIncorrect, match="wrong key"):
        open_component(f"soft:{path}?key-env=SC_KEY")


@pytest.mark.parametrize(
    ("where", "expected", "match"),
    [
        (-1, StorageCorrupted, "integrity"),  # last ciphertext byte (the GCM tag)
        (40, StorageCorrupted, "damaged header"),  # inside the header (the salt)
        (0, StorageCorrupted, "not a soft Secure Component file"),  # the magic
    ],
)
def test_corrupted_file_is_reported_and_left_untouched(
    tmp_path: Path, where: int, expected: type[Exception], match: str
) -> None:
    path = tmp_path / "sc.bin"
    with make(path) as component:
        component.generate_key("k")
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(expected, match=match):
        make(path)
    assert path.read_bytes() == bytes(data)


def _framed(header: bytes) -> bytes:
    prefix = MAGIC + len(header).to_bytes(2, "big") + header
    return prefix + hashlib.sha256(prefix).digest()[:8]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        MAGIC,
        MAGIC + b"\x00\x03abc",
        _framed(b"\xff"),
        _framed(cbor2.dumps([1, 2])),
        _framed(
            cbor2.dumps({"kdf": "rot13", "salt": bytes(16), "check": bytes(16), "nonce": bytes(12)})
        ),
        _framed(
            cbor2.dumps(
                {
                    "kdf": "scrypt",
                    "salt": bytes(16),
                    "check": bytes(16),
                    "nonce": bytes(12),
                    "n": 30,
                    "r": 8,
                    "p": 1,
                }
            )
        ),
        _framed(cbor2.dumps({"kdf": "hkdf", "salt": b"", "check": bytes(16), "nonce": bytes(12)})),
    ],
)
def test_damaged_headers(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "sc.bin"
    path.write_bytes(data)
    with pytest.raises(StorageCorrupted):
        make(path)
    assert path.read_bytes() == data


def _reencrypt(component: SoftComponent, path: Path, plain: bytes) -> None:
    """Write ``plain`` as the file's content with the component's own keys."""
    nonce = os.urandom(12)
    header = cbor2.dumps({**component._keys.header, "nonce": nonce}, canonical=True)
    aad = _framed(header)
    path.write_bytes(aad + component._keys.aead.encrypt(nonce, plain, aad))


@pytest.mark.parametrize(
    "content",
    [
        {"v": 2, "id": "x", "creds": {}, "inst": {}},
        {"v": 1, "id": "x", "creds": {"k": ["key", b"short"]}, "inst": {}},
        {"v": 1, "id": "x", "creds": {"": ["data", b""]}, "inst": {}},
        {"v": 1, "id": "x", "creds": {}, "inst": {0: {70000: b""}}},
        {"v": 1, "id": "x", "creds": {}, "inst": {0: {1: "text"}}},
        {"v": 1, "id": "x"},
    ],
)
def test_damaged_content(tmp_path: Path, content: dict[str, object]) -> None:
    path = tmp_path / "sc.bin"
    component = make(path)
    _reencrypt(component, path, cbor2.dumps(content))
    with pytest.raises(StorageCorrupted, match="damaged content"):
        make(path)


def test_two_writers_do_not_lose_updates(tmp_path: Path) -> None:
    path = tmp_path / "sc.bin"
    first = make(path)
    second = make(path)
    first.put_secret("a", b"1")
    second.put_secret("b", b"2")  # re-reads the file before writing
    first.put_instance(0, 0, b"i")
    assert [c.label for c in second.credentials()] == ["a", "b"]
    assert second.get_instance(0, 0) == b"i"
    assert second.delete("a")
    with pytest.raises(KeyNotFound):
        first.get_secret("a")
    assert first.lookup(b"none") is None


def test_replaced_or_damaged_file_under_an_open_component(tmp_path: Path) -> None:
    path = tmp_path / "sc.bin"
    component = make(path)
    component.put_secret("a", b"1")
    path.unlink()
    with pytest.raises(ComponentNotFound, match="removed"):
        component.credentials()
    make(path).close()  # a different component at the same path
    with pytest.raises(StorageCorrupted, match="different component"):
        component.credentials()
    other = make(tmp_path / "other.bin")
    other.put_secret("x", b"y")
    data = bytearray(path.read_bytes())
    reader = make(path)
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StorageCorrupted, match="integrity"):
        reader.get_instance(0, 0)
    path.write_bytes(_framed(b"\xff\xff"))
    with pytest.raises(StorageCorrupted, match="header"):
        reader.get_instance(0, 0)


def test_failed_write_is_translated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sc.bin"
    component = make(path)
    component.put_secret("a", b"1")
    before = path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ComponentUnavailable, match="No space left"):
        component.put_secret("b", b"2")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [c.label for c in component.credentials()] == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.bin", "sc.bin.lock"]


def test_unreadable_file(tmp_path: Path) -> None:
    folder = tmp_path / "dir.bin"
    folder.mkdir()
    with pytest.raises(ComponentUnavailable, match="cannot read"):
        SoftComponent(folder, passphrase="pw")
    locked = tmp_path / "lockdir"
    locked.mkdir()
    (locked / "sc.bin.lock").mkdir()
    with pytest.raises(ComponentUnavailable, match="cannot lock"):
        make(locked / "sc.bin")
