"""TLS with half-closes (manager.api.tlslayer) on real sockets and real certificates: a FIN passes
both ways under the session, plain HTTP on the TLS port gets Go's answer, a silent client is cut."""
from __future__ import annotations

import asyncio
import ssl

import pytest

from lab.procs import free_port
from lab.tls import make_tls
from manager.api.tlslayer import TlsLayer, open_tls_connection
from shoal.tls import TlsConfig


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_tls(str(tmp_path_factory.mktemp("tls")))


class Echo(asyncio.Protocol):
    """Collects what arrives; on EOF answers it all back in upper case, then half-closes too."""

    def connection_made(self, transport):
        self.transport, self.data = transport, b""

    def data_received(self, data):
        self.data += data

    def eof_received(self):
        self.transport.write(self.data.upper())
        self.transport.write_eof()
        return True


async def serve(certs, verify=True, timeout=5.0):
    context = TlsConfig(certs.server_cert, certs.server_key, certs.ca, verify).server_context()
    port = free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: TlsLayer(context, Echo, server_side=True, handshake_timeout=timeout), "127.0.0.1", port)
    return server, port


def client_context(certs, cert=True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs.ca)
    if cert:
        context.load_cert_chain(certs.cert, certs.key)
    return context


async def test_a_half_close_passes_both_ways(certs):
    server, port = await serve(certs)
    async with server:
        reader, writer = await open_tls_connection("127.0.0.1", port, client_context(certs), 5)
        writer.write(b"stdin until eof")
        writer.write_eof()  # like the docker CLI when stdin ends: the output still comes back
        assert await asyncio.wait_for(reader.read(), 5) == b"STDIN UNTIL EOF"
        writer.close()


async def test_a_client_without_a_certificate_is_refused(certs):
    server, port = await serve(certs)
    async with server:
        try:  # with TLS 1.3 the refusal comes after the client's side of the handshake
            reader, writer = await open_tls_connection("127.0.0.1", port, client_context(certs, cert=False), 5)
            writer.write(b"x")
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 5)
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b""  # never served


async def test_a_server_from_another_ca_is_refused(certs, tmp_path):
    other = make_tls(str(tmp_path))
    server, port = await serve(certs)
    async with server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await open_tls_connection("127.0.0.1", port, client_context(other), 5)


async def test_plain_http_gets_gos_answer(certs):
    server, port = await serve(certs)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer == b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
        writer.close()


async def test_no_handshake_in_time_is_cut(certs):
    server, port = await serve(certs, timeout=0.3)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
