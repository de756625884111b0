"""TLS as classic Swarm has it: one config from `--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`,
`--tlskey`, used for the manager's listener (server side) and, as the client side, towards every
engine and the primary manager. The same flags check a TLS engine from `shoal join`.

With `--tlsverify` the CA is both the roots engines are checked against and the only issuer of
client certificates accepted; with `--tls` alone nothing is verified (encryption only). TLS >= 1.2.
"""
from __future__ import annotations

import argparse
import ssl
from dataclasses import dataclass

from shoal.flags import UsageError


@dataclass(frozen=True)
class TlsConfig:
    """Paths of the manager's certificate and key (used as server and as client certificate), and
    with `verify` the CA."""

    cert: str
    key: str
    ca: str | None = None
    verify: bool = False

    def server_context(self) -> ssl.SSLContext:
        """For the listener: with `verify`, a client must present a certificate from the CA."""
        context = self._context(ssl.PROTOCOL_TLS_SERVER)
        if self.verify:
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """Towards engines and managers: with `verify`, their certificates (and addresses) are checked."""
        context = self._context(ssl.PROTOCOL_TLS_CLIENT)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _context(self, protocol: int) -> ssl.SSLContext:
        context = ssl.SSLContext(protocol)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"Couldn't load X509 key pair ({self.cert}, {self.key}): {exc}. "
                             "Key encrypted?") from None
        if self.verify:
            try:
                context.load_verify_locations(self.ca)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"Couldn't read CA certificate: {exc}") from None
        return context


def add_tls_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """classic Swarm's five TLS flags; `what` says what they secure."""
    parser.add_argument("--tls", action="store_true", help=f"use TLS for {what}; implied by --tlsverify")
    parser.add_argument("--tlsverify", action="store_true", help=f"use TLS for {what} and verify the peer")
    parser.add_argument("--tlscacert", default=None, help="trust certs signed only by this CA")
    parser.add_argument("--tlscert", default=None, help="path to TLS certificate file")
    parser.add_argument("--tlskey", default=None, help="path to TLS key file")


def tls_from_flags(args: argparse.Namespace) -> TlsConfig | None:
    """The TLS config the flags ask for (None: plain TCP), checked with classic Swarm's rules and
    texts; the files are loaded once here so a bad one fails at start-up."""
    if args.tls or args.tlsverify:
        if not args.tlscert or not args.tlskey:
            raise UsageError("--tlscert and --tlskey must be provided when using --tls")
        if args.tlsverify and not args.tlscacert:
            raise UsageError("--tlscacert must be provided when using --tlsverify")
        config = TlsConfig(args.tlscert, args.tlskey, args.tlscacert if args.tlsverify else None,
                           args.tlsverify)
        config.server_context()
        config.client_context()
        return config
    if args.tlscert or args.tlskey or args.tlscacert:
        raise UsageError("--tlscert, --tlskey and --tlscacert require the use of either --tls or --tlsverify")
    return None
