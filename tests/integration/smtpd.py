"""A test SMTP server (aiosmtpd) for the integration tests.

Run with /usr/bin/python3 (Debian's python3-aiosmtpd):
    smtpd.py --port P --outdir DIR [--fail-rate R --fail-code 451 --fail-stage data]
             [--reject-rcpt-regex RE --reject-code 550 --reject-status 5.1.1] [--seed N]
             [--drop-after-data]  (hang up instead of answering the final dot)
             [--delay-ms N]  (wait N ms after the final dot before storing and answering)
             [--oauth-introspect URL]  (AUTH XOAUTH2 / OAUTHBEARER required; each bearer
                                        token is checked at URL, RFC 7662, e.g. oauthd.py)
             [--oauth-mechanisms XOAUTH2,OAUTHBEARER]  (the ones offered; curl 7.88
                                        takes OAUTHBEARER whenever it is offered)

Each accepted message is saved as DIR/NNNNNN.eml (raw bytes as received) and
DIR/NNNNNN.json ({"mail_from", "rcpt_tos", "peer"}). DIR/stats.json holds
{"connections", "max_concurrent", "messages", "refused", "max_in_data"},
rewritten atomically on every change; max_in_data is the most sessions
that were between the final dot and the answer at once (with --delay-ms:
how many transfers the client really had in flight together). With
--oauth-introspect, mail needs AUTH first, each message's .json also holds
"auth_user" (the user the token server named) and stats.json "auth_ok" and
"auth_failed". Prints "READY" once listening; stops on SIGTERM.
"""
import argparse
import asyncio
import base64
import json
import os
import random
import re
import signal
import sys
import urllib.parse
import urllib.request

from aiosmtpd.smtp import SMTP, AuthResult


class Stats:
    def __init__(self, outdir):
        self.outdir = outdir
        self.connections = 0
        self.open = 0
        self.max_concurrent = 0
        self.messages = 0
        self.refused = 0
        self.in_data = 0
        self.max_in_data = 0
        self.auth = None  # {"auth_ok": n, "auth_failed": n} with --oauth-introspect
        self.save()

    def save(self):
        path = os.path.join(self.outdir, "stats.json")
        with open(path + ".tmp", "w") as f:
            out = {"connections": self.connections, "max_concurrent": self.max_concurrent,
                   "messages": self.messages, "refused": self.refused,
                   "max_in_data": self.max_in_data}
            out.update(self.auth or {})
            json.dump(out, f)
        os.replace(path + ".tmp", path)


class Handler:
    def __init__(self, args, stats):
        self.args = args
        self.stats = stats
        self.rng = random.Random(args.seed)
        self.reject = re.compile(args.reject_rcpt_regex) if args.reject_rcpt_regex else None

    def _fail(self, stage):
        a = self.args
        if a.fail_rate <= 0 or a.fail_stage != stage or self.rng.random() >= a.fail_rate:
            return None
        self.stats.refused += 1
        self.stats.save()
        status = a.fail_status or ("4.3.0" if a.fail_code < 500 else "5.7.1")
        return f"{a.fail_code} {status} refused by the test server"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject.search(address):
            self.stats.refused += 1
            self.stats.save()
            return (f"{self.args.reject_code} {self.args.reject_status} <{address}>: "
                    "Recipient address rejected: User unknown")
        failed = self._fail("rcpt")
        if failed:
            return failed
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        s = self.stats
        s.in_data += 1
        if s.in_data > s.max_in_data:
            s.max_in_data = s.in_data
            s.save()
        try:
            if self.args.delay_ms > 0:
                await asyncio.sleep(self.args.delay_ms / 1000.0)
        finally:
            s.in_data -= 1
        if self.args.drop_after_data:
            server.transport.abort()
            return "250 2.0.0 unreachable: the connection is gone"
        failed = self._fail("data")
        if failed:
            return failed
        self.stats.messages += 1
        base = os.path.join(self.stats.outdir, "%06d" % self.stats.messages)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "peer": list(session.peer) if session.peer else None}
        if self.args.oauth_introspect:
            meta["auth_user"] = session.auth_data
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        self.stats.save()
        return "250 2.0.0 Ok: queued as %06d" % self.stats.messages


def introspect(url, token):
    """The user an RFC 7662 introspection endpoint names for token, or None."""
    body = urllib.parse.urlencode({"token": token}).encode()
    try:
        with urllib.request.urlopen(url, body, timeout=10) as r:
            info = json.load(r)
    except (OSError, ValueError):
        return None
    return info.get("username") if info.get("active") is True else None


def parse_xoauth2(raw):
    """user=U^Aauth=Bearer T^A^A -> (U, T)."""
    fields = dict(f.split("=", 1) for f in raw.split("\x01") if "=" in f)
    auth = fields.get("auth", "")
    return fields.get("user"), auth[7:] if auth.startswith("Bearer ") else None


def parse_oauthbearer(raw):
    """RFC 7628: n,a=U,^Ahost=...^Aauth=Bearer T^A^A -> (U, T)."""
    gs2, _, rest = raw.partition("\x01")
    user = next((p[2:] for p in gs2.split(",") if p.startswith("a=")), None)
    fields = dict(f.split("=", 1) for f in rest.split("\x01") if "=" in f)
    auth = fields.get("auth", "")
    return user, auth[7:] if auth.startswith("Bearer ") else None


class OAuthHandler(Handler):
    """Handler plus SASL XOAUTH2 and OAUTHBEARER: the token must be active
    at the introspection URL and name the user the client claims."""

    def __init__(self, args, stats):
        super().__init__(args, stats)
        stats.auth = {"auth_ok": 0, "auth_failed": 0}
        stats.save()

    async def _bearer(self, server, args, parse):
        if len(args) > 1:
            blob = args[1]
        else:
            got = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(got, bytes):
                return AuthResult(success=False, handled=True)
            blob = base64.b64encode(got).decode()
        try:
            user, token = parse(base64.b64decode(blob, validate=True).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return AuthResult(success=False, handled=False,
                              message="501 5.5.2 Cannot decode the response")
        loop = asyncio.get_running_loop()
        who = await loop.run_in_executor(None, introspect, self.args.oauth_introspect,
                                         token or "") if token else None
        ok = who is not None and user is not None and who.lower() == user.lower()
        self.stats.auth["auth_ok" if ok else "auth_failed"] += 1
        self.stats.save()
        if not ok:
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Username and Password not accepted")
        return AuthResult(success=True, auth_data=who)

    async def auth_XOAUTH2(self, server, args):
        return await self._bearer(server, args, parse_xoauth2)

    async def auth_OAUTHBEARER(self, server, args):
        return await self._bearer(server, args, parse_oauthbearer)


class CountingSMTP(SMTP):
    """Counts TCP connections, to show that the client reuses them."""

    def __init__(self, handler, stats, **kw):
        super().__init__(handler, **kw)
        self._stats = stats

    def connection_made(self, transport):
        s = self._stats
        s.connections += 1
        s.open += 1
        s.max_concurrent = max(s.max_concurrent, s.open)
        s.save()
        super().connection_made(transport)

    def connection_lost(self, exc):
        self._stats.open -= 1
        super().connection_lost(exc)


async def serve(args):
    os.makedirs(args.outdir, exist_ok=True)
    stats = Stats(args.outdir)
    handler = (OAuthHandler if args.oauth_introspect else Handler)(args, stats)
    # Loopback tests have no TLS: AUTH is offered in clear, and required.
    offered = set(args.oauth_mechanisms.upper().split(","))
    auth = dict(auth_require_tls=False, auth_required=True,
                auth_exclude_mechanism=[m for m in ("LOGIN", "PLAIN", "XOAUTH2", "OAUTHBEARER")
                                        if m not in offered]) if args.oauth_introspect else {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: CountingSMTP(handler, stats, hostname="smtpd.test", ident="warmbench test smtpd",
                             **auth),
        args.host, args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--fail-code", type=int, default=451)
    p.add_argument("--fail-status", default=None, help="enhanced status; default by class")
    p.add_argument("--fail-stage", choices=["rcpt", "data"], default="data")
    p.add_argument("--reject-rcpt-regex", default=None)
    p.add_argument("--reject-code", type=int, default=550)
    p.add_argument("--reject-status", default="5.1.1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--drop-after-data", action="store_true")
    p.add_argument("--delay-ms", type=int, default=0)
    p.add_argument("--oauth-introspect", default=None, metavar="URL")
    p.add_argument("--oauth-mechanisms", default="XOAUTH2,OAUTHBEARER")
    asyncio.run(serve(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
