"""tools/bench/tls_proxy.py: the CA it mints is the only thing a client needs to trust it, it re-mints
only what is missing, and it keeps a client's connection alive across requests although the
upstream (like moto) closes its connection after every answer.

Run by tools/testing/test.sh (`make test`), or alone: .venv/bin/python -m unittest discover -s tools/testing/tests -p test_tls_proxy.py
"""

import asyncio
import http.client
import os
import ssl
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))

import tls_proxy  # noqa: E402


async def _echo_upstream():
    """An HTTP server like moto: it answers each request with its method, path and body, and
    closes the connection."""

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":")[1])
        body = await reader.readexactly(length)
        answer = b" ".join(head.split(b" ")[:2]) + b" " + body
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


class TlsProxyTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="tls-proxy-test-"))

    def test_a_trusting_client_sends_two_requests_on_one_kept_alive_connection(self):
        paths = tls_proxy.ensure(self.dir)
        connections = []

        async def scenario():
            upstream = await _echo_upstream()
            up_port = upstream.sockets[0].getsockname()[1]
            proxy = await tls_proxy.serve(
                ("127.0.0.1", up_port), tls_proxy.server_context(paths), 0,
                lambda: connections.append(1),
            )
            port = proxy.sockets[0].getsockname()[1]
            client = ssl.create_default_context(cafile=str(paths["ca"]))
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=client)
            answers = []
            for body in (b"one", b"two"):
                await asyncio.to_thread(connection.request, "POST", "/", body)
                response = await asyncio.to_thread(connection.getresponse)
                answers.append((response.getheader("Connection"), response.read()))
            connection.close()
            proxy.close()
            upstream.close()
            return answers

        self.assertEqual(
            asyncio.run(scenario()),
            [("keep-alive", b"POST / one"), ("keep-alive", b"POST / two")],
        )
        self.assertEqual(len(connections), 1, "two requests on one kept-alive connection")

    def test_a_client_that_does_not_trust_the_ca_fails_the_handshake(self):
        paths = tls_proxy.ensure(self.dir)

        async def scenario():
            upstream = await _echo_upstream()
            up_port = upstream.sockets[0].getsockname()[1]
            proxy = await tls_proxy.serve(("127.0.0.1", up_port), tls_proxy.server_context(paths))
            port = proxy.sockets[0].getsockname()[1]
            try:
                await asyncio.open_connection("127.0.0.1", port, ssl=ssl.create_default_context())
            finally:
                proxy.close()
                upstream.close()

        with self.assertRaises(ssl.SSLCertVerificationError):
            asyncio.run(scenario())

    def test_certificates_are_kept_while_valid_and_minted_again_when_one_is_missing(self):
        first = tls_proxy.ensure(self.dir)
        ca = first["ca"].read_bytes()
        self.assertEqual(tls_proxy.ensure(self.dir)["ca"].read_bytes(), ca, "kept while valid")
        first["cert"].unlink()
        again = tls_proxy.ensure(self.dir)
        self.assertTrue(again["cert"].exists())
        self.assertNotEqual(again["ca"].read_bytes(), ca, "a new CA signs the new certificate")
        self.assertEqual(os.stat(again["key"]).st_mode & 0o777, 0o600)

    def test_the_upstream_is_read_from_an_endpoint_url_or_host_and_port(self):
        self.assertEqual(tls_proxy.parse_upstream("http://127.0.0.1:5000/"), ("127.0.0.1", 5000))
        self.assertEqual(tls_proxy.parse_upstream("localhost:80"), ("localhost", 80))
        with self.assertRaises(ValueError):
            tls_proxy.parse_upstream("https://127.0.0.1")


if __name__ == "__main__":
    unittest.main()
