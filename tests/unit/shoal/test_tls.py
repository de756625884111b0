"""The TLS flags: classic Swarm's rules and texts, and the contexts they make (real certificates)."""
from __future__ import annotations

import os
import ssl
import stat

import pytest

from lab.tls import make_tls
from manager.cmd import configure
from shoal.cli import build_parser
from shoal.flags import UsageError


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_tls(str(tmp_path_factory.mktemp("tls")))


def manage(*argv: str):
    return configure(build_parser().parse_args(["manage", *argv, "nodes://10.0.0.1:2376"]))


@pytest.mark.parametrize("argv, message", [
    (("--tls",), "--tlscert and --tlskey must be provided when using --tls"),
    (("--tlsverify", "--tlscert", "c.pem"), "--tlscert and --tlskey must be provided when using --tls"),
    (("--tlsverify", "--tlscert", "c.pem", "--tlskey", "k.pem"), "--tlscacert must be provided when using --tlsverify"),
    (("--tlscert", "c.pem", "--tlskey", "k.pem"),
     "--tlscert, --tlskey and --tlscacert require the use of either --tls or --tlsverify"),
    (("--tlscacert", "ca.pem"), "--tlscert, --tlskey and --tlscacert require the use of either --tls or --tlsverify"),
])
def test_classic_rules(argv, message):
    with pytest.raises(UsageError) as err:
        manage(*argv)
    assert str(err.value) == message


def test_unreadable_files_fail_at_start(certs, tmp_path):
    with pytest.raises(UsageError, match=r"^Couldn't load X509 key pair \(missing.pem, .*\): .*Key encrypted\?$"):
        manage("--tls", "--tlscert", "missing.pem", "--tlskey", certs.server_key)
    with pytest.raises(UsageError, match=r"^Couldn't read CA certificate: "):
        manage("--tlsverify", "--tlscacert", str(tmp_path / "none.pem"), "--tlscert", certs.server_cert,
               "--tlskey", certs.server_key)


def test_tlsverify_verifies_both_ways(certs):
    config = manage("--tlsverify", "--tlscacert", certs.ca, "--tlscert", certs.server_cert, "--tlskey", certs.server_key)
    server, client = config.tls.server_context(), config.tls.client_context()
    assert server.verify_mode == ssl.CERT_REQUIRED and client.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname
    assert server.minimum_version == client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config.engine.tls is not None and config.engine.tls.verify_mode == ssl.CERT_REQUIRED


def test_tls_alone_encrypts_without_verifying(certs):
    config = manage("--tls", "--tlscert", certs.server_cert, "--tlskey", certs.server_key)
    assert config.tls.server_context().verify_mode == ssl.CERT_NONE
    client = config.tls.client_context()
    assert (client.verify_mode, client.check_hostname) == (ssl.CERT_NONE, False)


def test_no_tls_flags_no_tls():
    config = manage()
    assert config.tls is None and config.engine.tls is None


def test_lab_keys_are_private(certs):
    for key in (certs.server_key, certs.key, os.path.join(os.path.dirname(certs.ca), "ca.key")):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
