"""A TCP proxy on loopback that a test can cut and restore: a database outage without stopping the shared server.

with TcpProxy("127.0.0.1", 5432) as proxy:   # proxy.port forwards to 127.0.0.1:5432
    proxy.cut()        # every open connection is reset and new ones are refused, as when the server stops
    proxy.restore()    # connections are accepted and forwarded again

LoopbackProxy is the plumbing it shares with HoldingProxy (holding_proxy.py): an event loop in a thread of its own,
a listener on a free loopback port, and a connection to the target for each client.
"""

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Self

from tests.support.live_server import free_port


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies what `reader` receives to `writer` until the reader ends, then closes `writer`."""
    with contextlib.suppress(Exception):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


class LoopbackProxy:
    thread_name = "loopback-proxy"

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.thread_name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        self.port = free_port()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _call(self, coroutine: Coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port, reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _connect(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        await self._forward(client_reader, client_writer, server_reader, server_writer)

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                       server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter) -> None:  # fmt: skip
        """Carries one client's connection to the target and back, until either side closes."""
        raise NotImplementedError


class TcpProxy(LoopbackProxy):
    thread_name = "tcp-proxy"

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self._writers: set[asyncio.StreamWriter] = set()

    def cut(self) -> None:
        self._call(self._close())

    def restore(self) -> None:
        self._call(self._listen())

    async def _close(self) -> None:
        await super()._close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()  # a reset, as a stopped server's kernel would send
        self._writers.clear()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                       server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self._writers.update((client_writer, server_writer))
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        self._writers.difference_update((client_writer, server_writer))
