"""Throwaway certificates for labs and tests, made with the `openssl` command (keys 0600).

`make_tls(dir)`: a CA, a server pair for 127.0.0.1 and more addresses (also usable as a client certificate: the
manager's, which it shows both to its clients and to the engines) and a client pair.
`issue(dir, name, ip)`: one more server pair signed by that CA (an engine's, for its address).
`docker_cert_path(dir)`: ca.pem, cert.pem and key.pem (the client pair) under the names the docker
CLI, docker-compose and docker-py look for in DOCKER_CERT_PATH.
"""
from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass

from shoal.tls import TlsConfig

SERVER_USAGE = "extendedKeyUsage=serverAuth,clientAuth"


@dataclass(frozen=True)
class TlsPaths:
    """PEM files: a CA, a server pair (for 127.0.0.1) and a client pair, all signed by the CA."""

    ca: str
    server_cert: str
    server_key: str
    cert: str
    key: str


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _path(directory: str, name: str) -> str:
    return os.path.join(directory, name)


def _signed(directory: str, name: str, extensions: str) -> tuple[str, str]:
    """A new key and a certificate for it signed by the directory's CA: (cert, key) paths."""
    key, csr, ext, cert = (_path(directory, f"{name}.{suffix}") for suffix in ("key", "csr", "ext", "pem"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=shoal-{name}", "-keyout", key, "-out", csr)
    os.chmod(key, 0o600)
    with open(ext, "w") as handle:
        handle.write(extensions + "\n")
    _openssl("x509", "-req", "-in", csr, "-CA", _path(directory, "ca.pem"), "-CAkey", _path(directory, "ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert)
    os.remove(csr)
    os.remove(ext)
    return cert, key


def make_tls(directory: str, ips: tuple[str, ...] = ("127.0.0.1",)) -> TlsPaths:
    """A fresh CA in `directory`, a server pair for `ips` (and localhost) and a client pair."""
    os.makedirs(directory, exist_ok=True)
    ca_key = _path(directory, "ca.key")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=shoal-lab-ca",
             "-keyout", ca_key, "-out", _path(directory, "ca.pem"))
    os.chmod(ca_key, 0o600)
    names = ",".join([*(f"IP:{ip}" for ip in ips), "DNS:localhost"])
    _signed(directory, "server", f"subjectAltName={names}\n{SERVER_USAGE}")
    _signed(directory, "client", "extendedKeyUsage=clientAuth")
    return tls_paths(directory)


def tls_paths(directory: str) -> TlsPaths:
    """The files `make_tls` wrote in `directory`."""
    return TlsPaths(*(_path(directory, name) for name in ("ca.pem", "server.pem", "server.key", "client.pem",
                                                          "client.key")))


def client_context(paths: TlsPaths) -> ssl.SSLContext:
    """A verifying client context with the client pair (what the docker CLI does with --tlsverify)."""
    return TlsConfig(paths.cert, paths.key, paths.ca, verify=True).client_context()


def issue(directory: str, name: str, ip: str) -> tuple[str, str]:
    """A server pair for `ip` signed by the CA `make_tls` made in `directory`: (cert, key)."""
    return _signed(directory, name, f"subjectAltName=IP:{ip}\n{SERVER_USAGE}")


def docker_cert_path(directory: str) -> str:
    """`<directory>/docker` with the client pair as the docker tools name them; its path."""
    target = _path(directory, "docker")
    os.makedirs(target, exist_ok=True)
    for source, name in (("ca.pem", "ca.pem"), ("client.pem", "cert.pem"), ("client.key", "key.pem")):
        shutil.copyfile(_path(directory, source), _path(target, name))
    os.chmod(_path(target, "key.pem"), 0o600)
    return target


def tls_flags(paths: TlsPaths, client: bool) -> list[str]:
    """`--tlsverify ...` for `shoal manage` (the server pair) or `shoal join` (the client pair)."""
    cert, key = (paths.cert, paths.key) if client else (paths.server_cert, paths.server_key)
    return ["--tlsverify", "--tlscacert", paths.ca, "--tlscert", cert, "--tlskey", key]


def kv_flags(paths: TlsPaths) -> list[str]:
    """`--discovery-opt kv.*` for etcd over TLS (the client pair)."""
    options = (("kv.cacertfile", paths.ca), ("kv.certfile", paths.cert), ("kv.keyfile", paths.key))
    return [arg for key, value in options for arg in ("--discovery-opt", f"{key}={value}")]
