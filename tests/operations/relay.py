"""TCP relays in a process of their own: how test hosts in network namespaces reach the machine's services.

PostgreSQL, Redis and the fake provider listen on 127.0.0.1 of the machine, which a network namespace cannot
reach; a relay listens on the hosts' network (the bridge address) and forwards to them, as a router or a service
address would for hosts on a real network.

    python -m tests.operations.relay 10.77.3.1 127.0.0.1:5432 127.0.0.1:6379
    → prints one line of JSON once it listens: {"127.0.0.1:5432": 40123, "127.0.0.1:6379": 40124}
"""

import asyncio
import json
import signal
import sys

from tests.support.tcp_proxy import pipe


def forwarder(target_host: str, target_port: int):
    async def serve(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.transport.abort()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    return serve


async def main(listen_host: str, targets: list[str]) -> None:
    ports: dict[str, int] = {}
    servers = []
    for target in targets:
        host, _, port = target.rpartition(":")
        server = await asyncio.start_server(forwarder(host, int(port)), listen_host, 0, reuse_address=True)
        servers.append(server)
        ports[target] = server.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
