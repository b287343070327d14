"""Throwaway TLS certificates for tests against real servers (``rediss://`` forms)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import attrs


@attrs.frozen
class TLSFiles:
    """A server certificate for 127.0.0.1, its key, and the CA that signed it."""

    cert_file: Path = attrs.field(converter=Path)
    key_file: Path = attrs.field(converter=Path)
    ca_file: Path = attrs.field(converter=Path)


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def make_certificates(folder: Path) -> TLSFiles:
    """A one-day CA and a server certificate for ``IP:127.0.0.1``, made with ``openssl`` in
    ``folder`` (raises ``FileNotFoundError`` when openssl is not installed)."""

    def run(*args: str) -> None:
        # Fixed arguments built here, never from input: S603/S607 do not apply.
        subprocess.run(  # noqa: S603
            ["openssl", *args],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=60,
        )

    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt, ext = (
        folder / "srv.key",
        folder / "srv.csr",
        folder / "srv.crt",
        folder / "ext.cnf",
    )
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", str(ca_key), "-out", str(ca_crt))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(crt))  # fmt: skip
    return TLSFiles(cert_file=crt, key_file=key, ca_file=ca_crt)
