"""Throwaway certificates for local tests and labs, made with the `openssl` command."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class TlsPaths:
    """PEM files: a CA, a server pair (for 127.0.0.1) and a client pair, all signed by the CA."""

    ca: str
    server_cert: str
    server_key: str
    cert: str
    key: str


def make_tls(directory: str) -> TlsPaths:
    """A fresh CA and certificates for 127.0.0.1 (server) and a client, made with openssl."""
    def path(name: str) -> str:
        return os.path.join(directory, name)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=shoal-test-ca",
        "-keyout", path("ca.key"), "-out", path("ca.pem"))
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                            ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=shoal-test-{name}",
            "-keyout", path(f"{name}.key"), "-out", path(f"{name}.csr"))
        with open(path(f"{name}.ext"), "w") as ext:
            ext.write(extension + "\n")
        run("x509", "-req", "-in", path(f"{name}.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-days", "1", "-extfile", path(f"{name}.ext"), "-out", path(f"{name}.pem"))
    return TlsPaths(path("ca.pem"), path("server.pem"), path("server.key"), path("client.pem"), path("client.key"))
