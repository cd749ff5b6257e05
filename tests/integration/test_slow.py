"""Slow remote servers slow nothing else (SPEC.md "Programs": "a remote
server that takes a second to answer slows nothing else"). Each test runs
warmbenchd against one slow real server while a prober thread asks
/healthz every 20 ms on a fresh connection:
  - SMTP: aiosmtpd answering each final dot after 300 ms (smtpd.py
    --delay-ms), 4 connections, 40 messages;
  - HTTP: the ATS receiver answering each webhook after 2 s
    (ats_receiver.py --delay-ms), 6 handoffs;
  - IMAP: Dovecot behind slowproxy.py, which holds each server -> client
    chunk 500 ms; a reply dropped in the Maildir is read and recorded.
    Then the same with the tagged OK of each answer held another 500 ms
    (slowproxy.py --split-last-line): libcurl's IMAP DONE phase waits for
    it with a blocking poll, which is why the mailbox's transfers run in a
    worker thread (lib/loop/curl_thread.c); on the loop it stalled /healthz
    0.5 s per fetch.
And the worker-thread adapter alone (tests/drivers/drv_curl_thread): a
transfer held 1 s by a local server while a 10 ms timer ticks, cancel and
free mid-transfer.
The bound on /healthz (MAX_HEALTHZ_S) is generous for a loaded 2-core CI
machine: what it catches is a loop stalled for a whole remote round trip."""
import collections
import http.client
import json
import os
import subprocess
import threading
import time
import unittest

import harness
import imapd
from daemon_util import Daemon, Smtpd, wait_until
from harness import WbTestCase, write

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
OPEN_WINDOW = {"days": ALL_DAYS, "start": "00:00", "end": "24:00", "timezone": "UTC"}
MAX_HEALTHZ_S = 0.25
ATS_SECRET = "ats-shared-secret-42"


def sequence(after="0s"):
    return {"id": "nurture", "sender": "ana", "audience": {"tags_any": ["backend"]},
            "window": OPEN_WINDOW, "links": {"apply": "https://example.com/jobs/backend"},
            "steps": [{"after": after, "subject": "{{first_name|Hi}}, about backend",
                       "text": "intro.txt", "html": "intro.html"}],
            "stop_on": ["reply", "unsubscribe", "bounce"], "handoff_on": []}


class Prober(threading.Thread):
    """GET path on 127.0.0.1:port every interval seconds, a new connection
    each time (Connection: close). Keeps (start, seconds, status or error)
    per request; a request that takes longer than `timeout` counts as an
    error of that length."""

    def __init__(self, port, path="/healthz", interval=0.02, timeout=10):
        super().__init__(daemon=True)
        self.port, self.path, self.interval, self.timeout = port, path, interval, timeout
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            status = None
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                c.request("GET", self.path, headers={"Connection": "close"})
                r = c.getresponse()
                r.read()
                status = r.status
                c.close()
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
            dt = time.monotonic() - t0
            self.samples.append((t0, dt, status))
            self.halt.wait(max(0.0, self.interval - dt))

    def stop(self):
        self.halt.set()
        self.join(self.timeout + 5)

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] <= t1]

    @staticmethod
    def summary(samples):
        lat = sorted(s[1] for s in samples)
        if not lat:
            return "no samples"
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
        statuses = collections.Counter(s[2] for s in samples)
        return ("%d samples, p50 %.1f ms, p99 %.1f ms, max %.1f ms, statuses %s"
                % (len(lat), 1000 * pick(0.5), 1000 * pick(0.99), 1000 * lat[-1], dict(statuses)))


class SlowCase(WbTestCase):
    def setUp(self):
        super().setUp()
        self.daemons = []
        self.probers = []
        self.helpers = []  # objects with a stop() or cleanup()
        self.addCleanup(self._finish)

    def _finish(self):
        problems = []
        try:
            for p in self.probers:
                p.stop()
            for d in self.daemons:
                if d.proc is None:
                    continue
                try:
                    rc = d.stop() if d.alive() else d.returncode
                except AssertionError as e:  # did not stop: killed
                    problems.append(str(e))
                    continue
                if rc != 0:
                    problems.append(f"warmbenchd exited {rc} on SIGTERM:\n{d.text()[-4000:]}")
                if d.sanitizer_report():
                    problems.append("sanitizer report:\n" + d.text()[-8000:])
        finally:
            for h in reversed(self.helpers):
                (getattr(h, "cleanup", None) or h.stop)()
        if problems:
            self.fail("\n\n".join(problems))

    def configure(self, smtp_url, connections=4, after="0s", **over):
        self.http_port = harness.free_port()
        return self.config(
            sequences=[sequence(after)],
            http={"listen": "127.0.0.1:%d" % self.http_port,
                  "public_url": "http://127.0.0.1:%d" % self.http_port},
            smtp={"url": smtp_url, "tls": "off", "connections": connections, "timeout_s": 30,
                  "retry_base_s": 1}, **over)

    def world(self, n, enroll=True):
        """migrate, import n candidates (p000@example.org...), enroll them."""
        self.wb("migrate", check=0)
        lines = ["email,first_name,last_name,timezone,tags,consent"]
        lines += ["p%03d@example.org,P%d,Last,UTC,backend,opt_in" % (i, i) for i in range(n)]
        self.wb("import", write(os.path.join(self.tmp, "pool.csv"), "\n".join(lines) + "\n"),
                check=0)
        if enroll:
            self.wb("enroll", "nurture", check=0)

    def smtpd(self, *args):
        s = Smtpd(*args)
        self.helpers.append(s)
        return s.start()

    def daemon(self):
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "warmbenchd-%d.log" % len(self.daemons)))
        self.daemons.append(d)
        return d.start()

    def prober(self):
        p = Prober(self.http_port)
        self.probers.append(p)
        p.start()
        wait_until(lambda: p.samples, 10, "a first /healthz answer")
        return p

    def assert_fast(self, prober, t0, t1, what):
        """Every /healthz asked between t0 and t1 answered 200 within
        MAX_HEALTHZ_S; at least 20 of them."""
        s = prober.between(t0, t1)
        text = "%s: /healthz %s" % (what, Prober.summary(s))
        print("\n  " + text, end=" ", flush=True)
        slow = [(round(t - t0, 2), round(dt, 3), st) for t, dt, st in s
                if st != 200 or dt >= MAX_HEALTHZ_S]
        self.assertEqual(slow, [], "%s; answers not 200 or not within %.0f ms "
                         "(start s, seconds, status): %s"
                         % (text, 1000 * MAX_HEALTHZ_S, slow[:20]))
        self.assertGreaterEqual(len(s), 20, text)

    def sent(self):
        return int(self.scalar("SELECT count(*) FROM messages WHERE state = 'sent'"))

    def test_slow_smtp(self):
        """40 messages to a server that answers each final dot after 300 ms,
        over 4 connections: the transfers overlap, each message arrives
        once, and /healthz answers at once throughout."""
        n, conns, delay = 40, 4, 0.3
        s = self.smtpd("--delay-ms", str(int(delay * 1000)))
        self.configure(s.url, connections=conns)
        self.world(n, enroll=False)
        # Enrolled (due at once) only when the daemon and the prober run:
        # the send starts at a known time.
        d = self.daemon()
        p = self.prober()
        t0 = time.monotonic()
        self.wb("enroll", "nurture", check=0)
        wait_until(lambda: s.count() >= n, 60,
                   "%d messages at smtpd (stats %s)" % (n, s.stats()), interval=0.05)
        t1 = time.monotonic()
        wait_until(lambda: self.sent() >= n, 30, "%d rows sent" % n, interval=0.1)
        time.sleep(0.5)  # anything sent twice would arrive now
        self.assert_fast(p, t0, t1, "slow SMTP (%.1f s for %d messages)" % (t1 - t0, n))
        elapsed = t1 - t0
        # One at a time it takes n * delay (12 s); four at once n / 4 * delay (3 s).
        self.assertLess(elapsed, 0.6 * n * delay,
                        "%d messages took %.1f s: not concurrent (stats %s)"
                        % (n, elapsed, s.stats()))
        self.assertGreaterEqual(s.stats()["max_in_data"], 2,
                                "transfers never overlapped: %s" % s.stats())
        msgs = s.messages()
        self.assertEqual(len(msgs), n, s.stats())
        mids = collections.Counter(m["msg"]["Message-ID"].strip("<>") for m in msgs)
        self.assertEqual([k for k, v in mids.items() if v > 1], [], "a Message-ID twice")
        rcpts = collections.Counter(m["rcpt_tos"][0] for m in msgs)
        self.assertEqual(sorted(rcpts), ["p%03d@example.org" % i for i in range(n)])
        rows = dict(self.sql("SELECT message_id, state FROM messages"))
        self.assertEqual(set(rows), set(mids))
        self.assertEqual(set(rows.values()), {"sent"})
        self.assertEqual(d.stop(), 0)

    def test_slow_ats_webhook(self):
        """6 handoffs to an ATS that answers each webhook after 2 s: all are
        delivered, signed, and /healthz answers at once meanwhile."""
        n, delay = 6, 2.0
        s = self.smtpd()
        out = os.path.join(self.tmp, "ats-requests.jsonl")
        mode = write(os.path.join(self.tmp, "ats-mode.json"), '{"status": 200}')
        secret = write(os.path.join(self.tmp, "ats.key"), ATS_SECRET + "\n", 0o600)
        port = harness.free_port()
        ats = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "ats_receiver.py"), "--port", str(port),
             "--secret-file", secret, "--out", out, "--mode", mode,
             "--delay-ms", str(int(delay * 1000))], stdout=subprocess.PIPE, text=True)
        self.procs.append(ats)
        self.assertEqual(ats.stdout.readline().strip(), "READY", "ats_receiver did not start")
        self.configure(s.url, after="7d",
                       ats={"webhook_url": "http://127.0.0.1:%d/hooks/warmbench" % port,
                            "secret_file": "ats.key", "max_attempts": 3, "retry_base_s": 30})
        self.hand_off_while_probing(n, 60, "slow ATS")
        with open(out) as f:
            reqs = [json.loads(line) for line in f if line.strip()]
        self.assertEqual(len(reqs), n, reqs)
        self.assertTrue(all(r["sig_ok"] for r in reqs), reqs)
        emails = sorted(json.loads(r["body"])["candidate"]["email"] for r in reqs)
        self.assertEqual(emails, ["p%03d@example.org" % i for i in range(n)])
        self.assertEqual(self.scalar("SELECT count(*) FROM handoffs WHERE attempts <> 1"), "0")

    def test_slow_native_ats(self):
        """4 handoffs through the Greenhouse adapter to a vendor behind a link
        that holds each answer 500 ms (token, lookup, create, application,
        note: five calls each): all are delivered, each person created once,
        and /healthz answers at once meanwhile, as for the generic webhook."""
        import test_ats_native as tan
        n = 4
        s = self.smtpd()
        vendor = tan.Vendor(self.tmp)
        self.addCleanup(vendor.stop)
        proxy_port = harness.free_port()
        proxy = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "slowproxy.py"), "--port", str(proxy_port),
             "--target", "127.0.0.1:%d" % vendor.port, "--delay-ms", "500"],
            stdout=subprocess.PIPE, text=True)
        self.procs.append(proxy)
        self.assertEqual(proxy.stdout.readline().strip(), "READY", "slowproxy did not start")
        base = "http://127.0.0.1:%d" % proxy_port
        write(os.path.join(self.tmp, "gh.secret"), tan.CLIENT_SECRET + "\n", 0o600)
        self.configure(s.url, after="7d", ats={
            "kind": "greenhouse",
            "api": {"token_url": base + "/token", "client_id": tan.CLIENT_ID,
                    "client_secret_file": "gh.secret", "user_id": tan.USER, "base_url": base},
            "job_id": tan.JOB, "max_attempts": 3, "retry_base_s": 30})
        self.hand_off_while_probing(n, 90, "slow Greenhouse")
        self.assertEqual(self.scalar("SELECT count(*) FROM handoffs WHERE attempts <> 1"), "0")
        self.assertEqual(self.scalar("SELECT count(DISTINCT ats_id) FROM candidate_ats"), str(n))

    def hand_off_while_probing(self, n, timeout, what):
        """n people handed off by hand, with the daemon running: every
        handoff delivered within timeout, /healthz fast throughout."""
        self.world(n)
        self.daemon()
        p = self.prober()
        t0 = time.monotonic()
        for i in range(n):
            self.wb("handoff", "p%03d@example.org" % i, "--sequence", "nurture", check=0)
        wait_until(lambda: self.scalar("SELECT count(*) FROM handoffs "
                                       "WHERE state = 'delivered'") == str(n), timeout,
                   "%d handoffs delivered (%s)"
                   % (n, self.sql("SELECT state, count(*) FROM handoffs GROUP BY state")),
                   interval=0.1)
        t1 = time.monotonic()
        self.assert_fast(p, t0, t1, "%s (%.1f s for %d handoffs)" % (what, t1 - t0, n))

    def test_slow_imap(self):
        """Dovecot behind a proxy holding each answer 500 ms: polls go on, a
        reply is recorded, and /healthz answers at once throughout."""
        self.slow_imap()

    def test_slow_imap_tagged_ok_late(self):
        """The same, the proxy also holding the last line of each answer
        (the tagged OK after a FETCH literal) another 500 ms: libcurl's
        imap_done waits for it with a blocking poll, in the mailbox's worker
        thread, not on the loop."""
        self.slow_imap("--split-last-line")

    def slow_imap(self, *proxy_args):
        s = self.smtpd()
        imap = imapd.Dovecot().start()
        self.helpers.append(imap)
        proxy_port = harness.free_port()
        pstats = os.path.join(self.tmp, "proxy-stats.json")
        proxy = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "slowproxy.py"), "--port", str(proxy_port),
             "--target", "127.0.0.1:%d" % imap.port, "--delay-ms", "500", "--stats", pstats]
            + list(proxy_args),
            stdout=subprocess.PIPE, text=True)
        self.procs.append(proxy)
        self.assertEqual(proxy.stdout.readline().strip(), "READY", "slowproxy did not start")

        def polls():
            try:
                with open(pstats) as f:
                    return json.load(f)["connections"]
            except (OSError, ValueError):
                return 0
        write(os.path.join(self.tmp, "imap.pw"), imap.password + "\n", 0o600)
        self.configure(s.url, mailbox={"url": "imap://127.0.0.1:%d/INBOX" % proxy_port,
                                       "username": imap.user, "password_file": "imap.pw",
                                       "poll_s": 1, "tls": "off"})
        self.world(2)
        self.daemon()
        p = self.prober()
        t0 = time.monotonic()
        wait_until(lambda: s.count() >= 2, 30, "2 messages at smtpd")
        first = next(m["msg"] for m in s.messages() if m["rcpt_tos"] == ["p000@example.org"])
        wait_until(lambda: polls() >= 2, 30, "two IMAP polls through the proxy")
        imap.deliver(imapd.message(
            [("From", "P0 <p000@example.org>"), ("To", "ana@example.com"),
             ("Subject", "Re: " + str(first["Subject"])),
             ("In-Reply-To", first["Message-ID"]), ("References", first["Message-ID"]),
             ("Message-ID", "<reply-1@example.org>")],
            "Sounds good, I am interested. Let's talk on Thursday.\n"))
        reply = ("SELECT count(*) FROM events v JOIN candidates c ON c.id = v.candidate_id"
                 " WHERE v.type = 'reply' AND c.email = 'p000@example.org'")
        wait_until(lambda: self.scalar(reply) == "1", 60,
                   "the reply recorded (proxy connections %d, last_uid %s)"
                   % (polls(), self.scalar("SELECT max(last_uid) FROM mailbox_state")),
                   interval=0.2)
        # Polls go on after it: two more through the proxy.
        n = polls()
        wait_until(lambda: polls() >= n + 2, 30, "two more polls after the reply")
        t1 = time.monotonic()
        self.assert_fast(p, t0, t1, "slow IMAP (%d polls)" % polls())
        self.assertEqual(self.scalar(reply), "1")
        self.assertEqual(self.scalar("SELECT detail->>'intent' FROM events WHERE type = 'reply'"),
                         "interested")
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE type = 'reply'"), "1")


class CurlThreadCase(unittest.TestCase):
    DRV = os.path.join(harness.BUILD, "tests", "drv_curl_thread")

    def test_curl_thread_driver(self):
        """wb_curl_thread against a server holding its answers: the loop
        ticks every 10 ms throughout, `done` runs once from the loop,
        cancel and free mid-transfer return within ~1 s, uv_run ends by
        itself (the driver checks, one line each)."""
        p = subprocess.run([self.DRV], capture_output=True, text=True, timeout=90)
        out = p.stdout + p.stderr
        gap = [line for line in p.stdout.splitlines() if "kept ticking" in line]
        print("\n  " + (gap[0] if gap else "no tick line"), end=" ", flush=True)
        self.assertEqual(p.returncode, 0, out)
        self.assertEqual(p.stdout.splitlines()[-1:], ["OK"], out)
        self.assertNotIn("FAIL", p.stdout, out)
        self.assertNotIn("Sanitizer", out, out)


if __name__ == "__main__":
    unittest.main()
