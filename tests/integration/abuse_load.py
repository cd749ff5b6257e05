"""Hostile HTTP load for test_abuse.py, run as its own process so that the
test's own probes (the legitimate unsubscribe, RSS and descriptor samples)
never wait behind it. One mode per run; prints one JSON line of figures.

  abuse_load.py slowloris PORT --sources K --per-source N --seconds S
      N connections from each of 127.0.0.2..(K+1) that send a request line,
      then one header line a second, never the blank line that ends them.
      Figures: opened, refused (connect failed or closed before a byte was
      answered), closed (by the server, with the seconds each had lived).
  abuse_load.py keepalive PORT --sources K --conns N --path P --rounds R
      N connections spread over K source addresses; each sends R requests
      one after another on the same connection (keep-alive); figures:
      connected, answers by status, errors.
  abuse_load.py flood PORT --conns C --requests N --path P --depth D
      N requests on C connections, D pipelined at a time on each; figures:
      answers by status, errors, seconds, requests/s.
"""
import argparse
import asyncio
import json
import resource
import sys
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def source(i):
    """127.0.0.2, 127.0.0.3, ...: every 127/8 address is this machine."""
    i += 2
    return "127.0.%d.%d" % (i // 250, i % 250 + 2) if i >= 250 else "127.0.0.%d" % i


async def connect(port, src):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))


class Answers:
    """Reads HTTP/1.1 answers off a stream: status line, headers, a
    Content-Length body (every answer here has one or none)."""

    def __init__(self, reader):
        self.r = reader

    async def one(self):
        head = await self.r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        n = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v)
        if n:
            await self.r.readexactly(n)
        return status


async def slowloris(a):
    opened = refused = 0
    lived = []
    why = {}
    stop_at = time.monotonic() + a.seconds

    async def one(src):
        nonlocal opened, refused
        try:
            r, w = await connect(a.port, src)
        except OSError as e:
            refused += 1
            why[e.strerror] = why.get(e.strerror, 0) + 1
            return
        t0 = time.monotonic()
        try:
            w.write(b"GET /o/x.gif HTTP/1.1\r\nHost: a\r\n")
            await w.drain()
            i = 0
            while time.monotonic() < stop_at:
                try:
                    data = await asyncio.wait_for(r.read(1024), 1.0)
                except asyncio.TimeoutError:
                    w.write(b"X-%d: %d\r\n" % (i, i))
                    await w.drain()
                    i += 1
                    continue
                if not data:  # closed by the server
                    break
            else:
                opened += 1
                w.close()
                return
        except OSError:
            pass
        opened += 1
        lived.append(round(time.monotonic() - t0, 2))
        w.close()

    tasks = [one(source(s)) for s in range(a.sources) for _ in range(a.per_source)]
    await asyncio.gather(*tasks)
    lived.sort()
    return {"opened": opened, "refused": refused, "closed": len(lived),
            "lived_min": lived[0] if lived else None, "lived_max": lived[-1] if lived else None,
            "closed_soon": sum(1 for x in lived if x < 1.0), "why": why}


async def keepalive(a):
    statuses = {}
    errors = connected = 0
    req = b"GET %s HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (X11) Firefox/120\r\n\r\n" % (
        a.path.encode())
    held = []

    async def one(i):
        nonlocal errors, connected
        try:
            r, w = await connect(a.port, source(i % a.sources))
        except OSError:
            errors += 1
            return
        connected += 1
        held.append(w)
        ans = Answers(r)
        try:
            for _ in range(a.rounds):
                w.write(req)
                st = await asyncio.wait_for(ans.one(), 30)
                statuses[st] = statuses.get(st, 0) + 1
                await asyncio.sleep(a.gap)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            errors += 1

    t0 = time.monotonic()
    # Connections are opened in waves so that the listen backlog is not the
    # limit being measured.
    tasks = []
    for i in range(a.conns):
        tasks.append(asyncio.ensure_future(one(i)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    for w in held:
        w.close()
    return {"connected": connected, "statuses": statuses, "errors": errors,
            "seconds": round(time.monotonic() - t0, 2)}


async def flood(a):
    statuses = {}
    errors = 0
    req = b"GET %s HTTP/1.1\r\nHost: a\r\nUser-Agent: Mozilla/5.0 (X11) Firefox/120\r\n\r\n" % (
        a.path.encode())
    per = a.requests // a.conns

    async def one(i):
        nonlocal errors
        try:
            r, w = await connect(a.port, source(i % 8))
            ans = Answers(r)
            left = per
            while left:
                n = min(a.depth, left)
                w.write(req * n)
                for _ in range(n):
                    st = await asyncio.wait_for(ans.one(), 30)
                    statuses[st] = statuses.get(st, 0) + 1
                left -= n
            w.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            errors += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(a.conns)))
    secs = time.monotonic() - t0
    done = sum(statuses.values())
    return {"statuses": statuses, "errors": errors, "seconds": round(secs, 2),
            "rps": round(done / secs) if secs else 0}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["slowloris", "keepalive", "flood"])
    p.add_argument("port", type=int)
    p.add_argument("--sources", type=int, default=8)
    p.add_argument("--per-source", type=int, default=100)
    p.add_argument("--seconds", type=float, default=12)
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--path", default="/healthz")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--gap", type=float, default=1.0)
    p.add_argument("--requests", type=int, default=10000)
    p.add_argument("--depth", type=int, default=50)
    a = p.parse_args()
    raise_nofile()
    out = asyncio.run({"slowloris": slowloris, "keepalive": keepalive, "flood": flood}[a.mode](a))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
