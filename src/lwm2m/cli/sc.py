"""``lwm2m sc`` — manage a Secure Component: ``info``, ``keygen``, ``import-psk``, ``list``,
``delete``.

Every command takes ``--secure-component URI`` (or the ``LWM2M_SECURE_COMPONENT`` environment
variable): ``soft:PATH?passphrase-env=VAR`` or an RFC 7512 ``pkcs11:`` URI (see
:mod:`lwm2m.secure.uri`). Output says loudly when the component is software and not secure
hardware. Secrets are never printed and never taken as command-line arguments: ``import-psk``
reads the PSK from a file, standard input or a named environment variable and prints only the
identity. Errors are one line on stderr with exit status 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m.errors import Lwm2mError
from lwm2m.model.path import Path
from lwm2m.secure.csr import build_csr, csr_pem
from lwm2m.secure.interfaces import (
    ComponentInfo,
    CredentialInfo,
    CredentialKind,
    PinRequired,
    SecureComponent,
    identity_text,
)
from lwm2m.secure.object import SECURE_COMPONENT_OBJECT_ID
from lwm2m.secure.redact import redact_uri
from lwm2m.secure.uri import ENV_SECURE_COMPONENT, missing_modules, open_component, scheme_of

__all__ = ["sc"]

F = TypeVar("F", bound=Callable[..., Any])

NOT_SECURE_HARDWARE = "WARNING: software component, not secure hardware."


class _ScGroup(click.Group):
    """Turns any :class:`Lwm2mError` into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Lwm2mError as exc:
            raise click.ClickException(_one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    hint = ""
    if "backend needs the Python module" in text:
        missing = {k: v for k, v in missing_modules().items() if v}
        hint = f" (missing: {missing})" if missing else ""
    return text + hint


def _component_option(func: F) -> F:
    decorated: F = click.option(
        "--secure-component",
        "uri",
        envvar=ENV_SECURE_COMPONENT,
        metavar="URI",
        help=f"soft:PATH?passphrase-env=VAR, pkcs11:… (RFC 7512) or pcsc:reader=…; "
        f"env {ENV_SECURE_COMPONENT}.",
    )(func)
    return decorated


def _interactive() -> bool:
    """Whether a PIN or passphrase may be prompted for."""
    return sys.stdin.isatty()


@contextmanager
def _opened(uri: str | None, *, create: bool = False) -> Iterator[SecureComponent]:
    if not uri:
        raise click.UsageError(
            f"no Secure Component: give --secure-component URI or set {ENV_SECURE_COMPONENT}"
        )
    try:
        component = open_component(uri, create=create)
    except PinRequired:
        if not _interactive():
            raise
        secret = click.prompt(
            "Passphrase" if scheme_of(uri) == "soft" else "PIN", hide_input=True, err=True
        )
        if scheme_of(uri) == "soft":
            component = open_component(uri, create=create, passphrase=secret)
        else:
            component = open_component(uri, create=create, pin=secret)
        del secret
    with component:
        yield component


def _header(info: ComponentInfo) -> None:
    click.echo(f"Secure Component: {info.description}")
    if not info.secure_hardware:
        click.echo(NOT_SECURE_HARDWARE)


@click.group(cls=_ScGroup)
def sc() -> None:
    """Secure Component: credentials in a Secure Element, TEE, HSM — or, for development,
    an encrypted file (software, not secure hardware)."""


# -- info ----------------------------------------------------------------------------------------


def _info_json(info: ComponentInfo) -> dict[str, Any]:
    return {
        "type": info.type.label,
        "secure_hardware": info.secure_hardware,
        "backend": info.backend,
        "label": info.label,
        "manufacturer": info.manufacturer,
        "model": info.model,
        "serial_number": info.serial_number,
        "platform_version": info.platform_version,
        "firmware_version": info.firmware_version,
        "identifiers": [str(i) for i in info.identifiers],
        "services": list(info.services),
        "dloa": [
            {
                "registrar": d.registrar,
                "platform_id": d.platform_id,
                "application_id": d.application_id,
            }
            for d in info.dloa
        ],
        "object_id": SECURE_COMPONENT_OBJECT_ID,
    }


@sc.command()
@_component_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(uri: str | None, as_json: bool) -> None:
    """Identification data of the component (LwM2M-SCS-2)."""
    with _opened(uri) as component:
        data = component.info()
    if as_json:
        click.echo(json.dumps(_info_json(data), indent=2))
        return
    _header(data)
    rows = [
        ("type", data.type.label),
        (
            "secure hardware",
            "yes" if data.secure_hardware else "no (software, not secure hardware)",
        ),
        ("backend", data.backend),
        ("label", data.label),
        ("manufacturer", data.manufacturer),
        ("model", data.model),
        ("serial number", data.serial_number),
        ("platform version", data.platform_version),
        ("firmware version", data.firmware_version),
        ("identifiers", ", ".join(str(i) for i in data.identifiers)),
        ("services", ", ".join(data.services)),
        (
            "DLOA",
            "; ".join(
                f"{d.registrar} platform={d.platform_id}"
                + (f" application={d.application_id}" if d.application_id else "")
                for d in data.dloa
            )
            or "none",
        ),
        ("LwM2M object", f"/{SECURE_COMPONENT_OBJECT_ID} Secure Component"),
    ]
    for name, value in rows:
        if value:
            click.echo(f"  {name + ':':<18}{value}")


# -- keygen --------------------------------------------------------------------------------------


def _public_key_text(public: ec.EllipticCurvePublicKey) -> list[str]:
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    numbers = public.public_numbers()
    return [
        "Public key (SubjectPublicKeyInfo, PEM):",
        pem.rstrip("\n"),
        "Public key for RPK mode (/0/x/3; SubjectPublicKeyInfo DER, hex):",
        spki.hex(),
        f"  x: {numbers.x:064x}",
        f"  y: {numbers.y:064x}",
    ]


@sc.command()
@_component_option
@click.option("--label", required=True, help="Label of the new key pair.")
@click.option("--subject", help="Also make a PKCS#10 CSR with this subject (RFC 4514: CN=…,O=…).")
@click.option("--dns", multiple=True, help="subjectAltName DNS name for the CSR (repeatable).")
@click.option(
    "--san-uri", multiple=True, help="subjectAltName URI for the CSR, e.g. urn:imei:… (repeatable)."
)
@click.option(
    "--csr-out", type=click.Path(dir_okay=False, writable=True), help="Write the CSR here."
)
def keygen(
    uri: str | None,
    label: str,
    subject: str | None,
    dns: tuple[str, ...],
    san_uri: tuple[str, ...],
    csr_out: str | None,
) -> None:
    """Generate a P-256 key pair inside the component; print its public key (and a CSR)."""
    if (dns or san_uri or csr_out) and not subject:
        raise click.UsageError("--dns, --san-uri and --csr-out need --subject")
    name: x509.Name | None = None
    if subject:
        try:
            name = x509.Name.from_rfc4514_string(subject)
        except ValueError as exc:  # its message is often empty
            reason = f": {exc}" if str(exc) else ""
            raise click.UsageError(
                f"--subject: {subject!r} is not an RFC 4514 name such as 'CN=urn:dev:1,O=Acme'"
                f"{reason}"
            ) from None
    if csr_out:  # before the key pair is made: a CSR that cannot be written fails first
        _check_writable(csr_out, "--csr-out")
    with _opened(uri, create=True) as component:
        _header(component.info())
        key = component.generate_key(label)
        click.echo(f"Generated P-256 key pair {label!r} inside the component.")
        for line in _public_key_text(key.public_key()):
            click.echo(line)
        if name is None:
            return
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.UniformResourceIdentifier(u) for u in san_uri]
        extensions = [x509.SubjectAlternativeName(names)] if names else []
        pem = csr_pem(build_csr(key, name, extensions))
    if csr_out:
        try:
            with open(csr_out, "w", encoding="ascii") as file:
                file.write(pem)
        except OSError as exc:
            raise click.ClickException(
                f"--csr-out: cannot write {csr_out}: {exc.strerror or exc} "
                f"(the key pair {label!r} was made and kept)"
            ) from None
        click.echo(f"Certification request (PKCS#10, signed inside the component) -> {csr_out}")
    else:
        click.echo("Certification request (PKCS#10, signed inside the component):")
        click.echo(pem.rstrip("\n"))


def _check_writable(path: str, option: str) -> None:
    """Fail (one line) when ``path`` cannot be written: its folder is missing, is not a
    folder or is read-only (click's ``writable`` checks only a file that exists)."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        reason = "Not a directory" if os.path.exists(folder) else "No such file or directory"
        raise click.ClickException(f"{option}: cannot write {path}: {reason}")
    if not os.path.exists(path) and not os.access(folder, os.W_OK):
        raise click.ClickException(f"{option}: cannot write {path}: Permission denied")


# -- import-psk ----------------------------------------------------------------------------------


def _read_psk(psk_file: BinaryIO | None, psk_format: str, psk_hex_env: str | None) -> bytes:
    if (psk_file is None) == (psk_hex_env is None):
        raise click.UsageError("give the PSK with exactly one of --psk-file and --psk-hex-env")
    if psk_hex_env is not None:
        text = os.environ.get(psk_hex_env)
        if text is None:
            raise click.UsageError(f"environment variable {psk_hex_env} is not set")
        raw, psk_format = text.encode(), "hex"
    else:
        assert psk_file is not None
        raw = psk_file.read()
    if psk_format == "hex":
        try:
            psk = bytes.fromhex(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise click.UsageError("the PSK is not hexadecimal (use --psk-format raw)") from None
    else:
        psk = raw
    if not psk:
        raise click.UsageError("the PSK is empty")
    return psk


@sc.command("import-psk")
@_component_option
@click.option("--identity", help="PSK identity (UTF-8 text).")
@click.option("--identity-hex", help="PSK identity as hex.")
@click.option("--label", help="Label of the stored PSK (default: psk:<identity hex>).")
@click.option(
    "--psk-file",
    type=click.File("rb"),
    help="Read the PSK from this file ('-' for standard input).",
)
@click.option(
    "--psk-format",
    type=click.Choice(["hex", "raw"]),
    default="hex",
    show_default=True,
    help="How --psk-file holds the PSK: hex text or raw bytes.",
)
@click.option("--psk-hex-env", metavar="VAR", help="Read the PSK (hex) from this env variable.")
@click.option("--replace", is_flag=True, help="Replace an existing PSK with the same label.")
def import_psk(
    uri: str | None,
    identity: str | None,
    identity_hex: str | None,
    label: str | None,
    psk_file: BinaryIO | None,
    psk_format: str,
    psk_hex_env: str | None,
    replace: bool,
) -> None:
    """Store a PSK in the component (the only time the host sees it); prints the identity."""
    if (identity is None) == (identity_hex is None):
        raise click.UsageError("give exactly one of --identity and --identity-hex")
    if identity is not None:
        ident = identity.encode()
    else:
        try:
            ident = bytes.fromhex(identity_hex or "")
        except ValueError:
            raise click.UsageError("--identity-hex is not hexadecimal") from None
    if not ident:
        raise click.UsageError("the PSK identity is empty")
    psk = _read_psk(psk_file, psk_format, psk_hex_env)
    with _opened(uri, create=True) as component:
        _header(component.info())
        handle = component.import_psk(ident, psk, label=label, replace=replace)
        del psk
        click.echo(f"Imported PSK for identity {identity_text(ident)} as {handle.label!r}.")


# -- list / delete -------------------------------------------------------------------------------


def _details(cred: CredentialInfo) -> str:
    match cred.kind:
        case CredentialKind.KEY_PAIR:
            assert cred.public_key is not None
            spki = cred.public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return f"P-256, public key sha256:{hashlib.sha256(spki).hexdigest()[:16]}"
        case CredentialKind.PSK:
            assert cred.identity is not None
            return f"identity {identity_text(cred.identity)}"
        case CredentialKind.SECRET_DATA:
            if cred.oscore:  # derived from inside, never read back
                return f"OSCORE Master Secret, {cred.size} bytes (HKDF in the component)"
            return f"{cred.size} bytes"


@sc.command("list")
@_component_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(uri: str | None, as_json: bool) -> None:
    """Credentials (never their secrets) and stored object instances."""
    with _opened(uri) as component:
        data = component.info()
        creds = component.credentials()
        instances = component.list_instances()
    if as_json:
        doc = {
            "secure_hardware": data.secure_hardware,
            "credentials": [
                {"label": c.label, "kind": c.kind.value, "details": _details(c)} for c in creds
            ],
            "instances": [f"/{o}/{i}" for o, i in instances],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    _header(data)
    if creds:
        width = max(len(c.label) for c in creds)
        for cred in creds:
            click.echo(f"  {cred.label:<{width}}  {cred.kind.value:<11}  {_details(cred)}")
    else:
        click.echo("  no credentials")
    shown = ", ".join(f"/{o}/{i}" for o, i in instances) or "none"
    click.echo(f"Object instances: {shown}")


@sc.command()
@_component_option
@click.option("--label", help="Delete the credential with this label.")
@click.option("--instance", "instance_path", metavar="/OID/IID", help="Delete a stored instance.")
def delete(uri: str | None, label: str | None, instance_path: str | None) -> None:
    """Delete a credential or a stored object instance."""
    if (label is None) == (instance_path is None):
        raise click.UsageError("give exactly one of --label and --instance")
    path: Path | None = None
    if instance_path is not None:
        path = Path.parse(instance_path)
        if not path.is_object_instance:
            raise click.UsageError("--instance must be an object instance path /OID/IID")
    with _opened(uri) as component:
        if path is not None:
            oid, iid = path.object_id, path.object_instance_id
            assert oid is not None
            assert iid is not None
            found = component.delete_instance(oid, iid)
            what = f"object instance {path}"
        else:
            assert label is not None
            found = component.delete(label)
            what = f"credential {label!r}"
    if not found:
        raise click.ClickException(f"no {what} in {redact_uri(uri or '')}")
    click.echo(f"Deleted {what}.")
