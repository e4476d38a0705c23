"""A TCP proxy on loopback that forwards requests at once and holds the answers back until the test lets them go:
a store that has done the work but whose reply has not arrived yet.

with HoldingProxy("127.0.0.1", 6379) as proxy:   # proxy.port forwards to 127.0.0.1:6379
    proxy.hold()          # answers from the server wait in the proxy
    proxy.release()       # the held answers (and later ones) reach the client
"""

import asyncio
import contextlib
import socket
import threading


class HoldingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._open: asyncio.Event | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="holding-proxy", daemon=True)

    def start(self) -> "HoldingProxy":
        self._thread.start()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self.release()
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> "HoldingProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def hold(self) -> None:
        self._loop.call_soon_threadsafe(self._open.clear)
        self._call(asyncio.sleep(0))  # in effect once this returns

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._open.set)

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return

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
