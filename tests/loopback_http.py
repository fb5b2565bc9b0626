"""A raw HTTP/1.1 server on loopback for webhook tests: it records what it receives and
answers with exactly the bytes a test gives it (a gzip bomb, a redirect, a plain 200)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class LoopbackServer:
    """A raw HTTP/1.1 server on 127.0.0.1 that records requests and sends a canned answer."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            self.requests.append((head, await reader.readexactly(length)))
            writer.write(self.answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up on purpose (it read enough)
        finally:
            writer.close()

    def header(self, index: int, name: bytes) -> bytes:
        """A header of the `index`-th request received."""
        head = self.requests[index][0]
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        raise KeyError(name)


@asynccontextmanager
async def serving(
    answer: bytes, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[LoopbackServer]:
    """A LoopbackServer listening (with TLS if `ssl_context` is given) while in the block."""
    server = LoopbackServer(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


def http_answer(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
