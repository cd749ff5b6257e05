"""A delaying TCP proxy for the integration tests: a slow remote server.

Run with /usr/bin/python3:
    slowproxy.py --port P --target HOST:PORT [--delay-ms 500] [--up-delay-ms 0]
                 [--split-last-line]

Accepts on 127.0.0.1:P and opens one connection to the target per client.
Bytes go both ways unchanged and in order; each chunk the server sends is
held --delay-ms after it arrived before the client gets it (each chunk
its own delay from its arrival, not added up: the link is slow, not
narrow). --up-delay-ms does the same for client -> server. A side that
closes closes the other once what it sent is through.

--split-last-line: a server chunk of several lines goes in two parts, all
but its last line after --delay-ms and the last line after twice that: a
server whose answer to a command comes in a later packet than the data
it closes (IMAP's tagged OK after a FETCH literal).

Prints "READY" once listening; stops on SIGTERM. With --stats FILE, keeps
{"connections", "open"} there (JSON, rewritten as connections come and go).
"""
import argparse
import asyncio
import json
import os
import signal
import sys


class Stats:
    def __init__(self, path):
        self.path = path
        self.connections = 0
        self.open = 0

    def save(self):
        if not self.path:
            return
        with open(self.path + ".tmp", "w") as f:
            json.dump({"connections": self.connections, "open": self.open}, f)
        os.replace(self.path + ".tmp", self.path)


async def pump(reader, writer, delay, split=False):
    """Copies reader -> writer, each chunk delivered delay seconds after it
    was read (split: its last line delay seconds later again). A queue
    between the reading and the writing keeps chunks in order while later
    ones are already being read."""
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def read_side():
        try:
            while True:
                data = await reader.read(65536)
                cut = data.rfind(b"\n", 0, len(data) - 1) + 1 if split else 0
                if cut > 0:
                    await q.put((loop.time() + delay, data[:cut]))
                    await q.put((loop.time() + 2 * delay, data[cut:]))
                else:
                    await q.put((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await q.put((loop.time(), b""))

    async def write_side():
        try:
            while True:
                due, data = await q.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    r = asyncio.ensure_future(read_side())
    try:
        await write_side()
    finally:
        r.cancel()


async def handle(client_r, client_w, args, stats):
    host, port = args.target.rsplit(":", 1)
    try:
        server_r, server_w = await asyncio.open_connection(host, int(port))
    except OSError:
        client_w.close()
        return
    stats.connections += 1
    stats.open += 1
    stats.save()
    try:
        await asyncio.gather(pump(client_r, server_w, args.up_delay_ms / 1000.0),
                             pump(server_r, client_w, args.delay_ms / 1000.0,
                                  args.split_last_line))
    finally:
        for w in (client_w, server_w):
            w.close()
        stats.open -= 1
        stats.save()


async def serve(args):
    stats = Stats(args.stats)
    stats.save()
    server = await asyncio.start_server(lambda r, w: handle(r, w, args, stats),
                                        "127.0.0.1", args.port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    server.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target", required=True, help="HOST:PORT of the real server")
    p.add_argument("--delay-ms", type=int, default=500, help="server -> client, per chunk")
    p.add_argument("--up-delay-ms", type=int, default=0, help="client -> server, per chunk")
    p.add_argument("--split-last-line", action="store_true")
    p.add_argument("--stats", default=None)
    asyncio.run(serve(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
