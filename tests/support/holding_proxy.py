"""A TCP proxy on loopback that forwards requests at once and holds the answers back until the test lets them go:
a store that has done the work but whose reply has not arrived yet.

with HoldingProxy("127.0.0.1", 6379) as proxy:   # proxy.port forwards to 127.0.0.1:6379
    proxy.hold()          # answers from the server wait in the proxy
    proxy.release()       # the held answers (and later ones) reach the client
"""

import asyncio
import contextlib

from tests.support.tcp_proxy import LoopbackProxy


class HoldingProxy(LoopbackProxy):
    thread_name = "holding-proxy"

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__(target_host, target_port)
        self._open: asyncio.Event | None = None

    def stop(self) -> None:
        self.release()
        super().stop()

    def hold(self) -> None:
        self._loop.call_soon_threadsafe(self._open.clear)
        self._call(asyncio.sleep(0))  # in effect once this returns

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._open.set)

    async def _listen(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        await super()._listen()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                       server_reader: asyncio.StreamReader, server_writer: asyncio.StreamWriter) -> None:  # fmt: skip
        async def requests() -> None:
            while data := await client_reader.read(65536):
                server_writer.write(data)
                await server_writer.drain()

        async def answers() -> None:
            while data := await server_reader.read(65536):
                await self._open.wait()
                client_writer.write(data)
                await client_writer.drain()

        with contextlib.suppress(Exception):
            await asyncio.gather(requests(), answers())
        for writer in (client_writer, server_writer):
            with contextlib.suppress(Exception):
                writer.close()
