"""A TLS endpoint in front of moto, for the cold-start bench's `--tls` mode.

moto speaks plain HTTP, so a function run against it never pays the TCP + TLS handshake that
every new Lambda sandbox pays to DynamoDB or EventBridge. This proxy terminates TLS with a
certificate for 127.0.0.1 and localhost, signed by a throwaway local CA, and keeps each client
connection alive as AWS endpoints do, while moto closes its connection after every answer: each
request goes to moto on a plain connection of its own (as without the proxy), and its answer goes
back on the client's kept-alive TLS connection.

The CA and the server certificate are minted into --dir (ca.pem, cert.pem, key.pem) when
missing or expiring; the functions trust ca.pem only through AWS_CA_BUNDLE.

    .venv/bin/python tools/bench/tls_proxy.py --upstream 127.0.0.1:5000 --dir .local/tls [--port 0]

prints one line, `listening https://127.0.0.1:PORT ca=DIR/ca.pem`, then serves until killed.
With --connections it also prints `connection N` as each client connection is accepted.
"""

import argparse
import asyncio
import datetime
import ipaddress
import os
import ssl
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Certificates are minted for this long and re-minted when less than a day is left.
VALIDITY = datetime.timedelta(days=30)
MARGIN = datetime.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256, as AWS endpoints' ECDSA certificates: the handshake costs what theirs costs.
    return ec.generate_private_key(ec.SECP256R1())


def mint(directory: Path) -> dict:
    """A fresh CA and a server certificate for 127.0.0.1 and localhost signed by it, written to
    `directory` (ca.pem, cert.pem, key.pem; the CA's key is not kept); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = _key(), _key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("coldstart-bench local CA"))
        .issuer_name(_name("coldstart-bench local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = files(directory)
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(paths["key"], 0o600)
    return paths


def files(directory: Path) -> dict:
    return {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}


def ensure(directory: Path) -> dict:
    """The CA and server certificate in `directory`, minted anew when one is missing,
    unreadable or expires within a day."""
    paths = files(directory)
    try:
        cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
        x509.load_pem_x509_certificate(paths["ca"].read_bytes())
        paths["key"].read_bytes()
        fresh = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > MARGIN
    except (OSError, ValueError):
        fresh = False
    return paths if fresh else mint(directory)


def server_context(paths: dict) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths["cert"], paths["key"])
    return context


class BadRequest(Exception):
    """A request the proxy cannot forward (no length it understands)."""


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The head of an HTTP message (through the blank line); b"" at a clean end of stream."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise BadRequest("connection closed inside a message head") from e
        return b""


def _headers(head: bytes) -> list:
    lines = head.decode("latin-1").split("\r\n")
    return [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]


def _with_headers(head: bytes, drop: set, add: list) -> bytes:
    lines = head.decode("latin-1").split("\r\n")
    kept = [lines[0]] + [
        line for line in lines[1:]
        if line and line.split(":", 1)[0].strip().lower() not in drop
    ]
    return ("\r\n".join(kept + [f"{k}: {v}" for k, v in add]) + "\r\n\r\n").encode("latin-1")


async def _forward(head: bytes, reader: asyncio.StreamReader, upstream: tuple) -> bytes:
    """Sends one request (its head and Content-Length body) to the upstream on a connection of
    its own, and returns the answer made fit for a kept-alive connection: moto answers every
    request with `Connection: close`, AWS keeps connections open, and the bench measures what a
    function pays on AWS."""
    fields = {k.lower(): v for k, v in _headers(head)}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        raise BadRequest("chunked request bodies are not supported")
    body = await reader.readexactly(int(fields.get("content-length", "0")))
    moto_reader, moto_writer = await asyncio.open_connection(*upstream)
    try:
        moto_writer.write(_with_headers(head, {"connection"}, [("Connection", "close")]) + body)
        await moto_writer.drain()
        answer = await moto_reader.read()
    finally:
        moto_writer.close()
    answer_head, _, answer_body = answer.partition(b"\r\n\r\n")
    answer_fields = {k.lower() for k, _ in _headers(answer_head + b"\r\n\r\n")}
    add = [("Connection", "keep-alive")]
    if "content-length" not in answer_fields and "transfer-encoding" not in answer_fields:
        add.append(("Content-Length", str(len(answer_body))))
    return _with_headers(answer_head + b"\r\n\r\n", {"connection", "keep-alive"}, add) + answer_body


async def serve(upstream: tuple, context: ssl.SSLContext, port: int = 0, on_connection=None):
    """Starts the proxy on 127.0.0.1:`port` (0: any free port) and returns the asyncio server.
    Each client connection is kept alive across requests; each request goes to the upstream
    on a new connection (as moto closes each one)."""

    async def handle(reader, writer):
        if on_connection is not None:
            on_connection()
        try:
            while head := await _read_head(reader):
                writer.write(await _forward(head, reader, upstream))
                await writer.drain()
        except (BadRequest, OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError) as e:
            print(f"tls_proxy: connection dropped: {e!r}", file=sys.stderr, flush=True)
        except asyncio.CancelledError:
            # The server is shutting down.
            pass
        finally:
            try:
                writer.close()
            except (OSError, ssl.SSLError, RuntimeError):
                pass

    return await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)


def parse_upstream(raw: str) -> tuple:
    """`host:port` or `http://host:port[/]` → (host, port)."""
    raw = raw.removeprefix("http://").rstrip("/")
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port or http://host:port, got {raw!r}")
    return host, int(port)


async def _main(args) -> None:
    paths = ensure(Path(args.dir))
    count = 0

    def on_connection():
        nonlocal count
        count += 1
        if args.connections:
            print(f"connection {count}", flush=True)

    server = await serve(parse_upstream(args.upstream), server_context(paths), args.port, on_connection)
    port = server.sockets[0].getsockname()[1]
    print(f"listening https://127.0.0.1:{port} ca={paths['ca']}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="moto's host:port or http://host:port")
    parser.add_argument("--dir", required=True, help="where the CA and certificate are kept")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--connections", action="store_true", help="print a line per connection")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
