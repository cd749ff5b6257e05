"""Acceptance tests of the handoff delivery engine (SPEC.md "Handoff to the
ATS", "Commands" handoff/webhooks): tests/drivers/drv_handoff runs the
engine on curl_loop + pg_loop against ats_receiver.py, which checks every
signature and records every request."""
import collections
import json
import os
import signal
import subprocess
import time

import harness
from harness import WbTestCase, write
from daemon_util import SANITIZER_MARKS, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
DRV = os.path.join(harness.BUILD, "tests", "drv_handoff")
ATS_SECRET = "ats-shared-secret-42"


class Receiver:
    def __init__(self, tmp, secret_file):
        self.port = harness.free_port()
        self.out = os.path.join(tmp, "ats-requests.jsonl")
        self.mode_path = os.path.join(tmp, "ats-mode.json")
        self.set(status=200)
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "ats_receiver.py"), "--port", str(self.port),
             "--secret-file", secret_file, "--out", self.out, "--mode", self.mode_path],
            stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError("ats_receiver did not start")

    def set(self, **mode):
        tmp = self.mode_path + ".tmp"
        write(tmp, json.dumps(mode))
        os.replace(tmp, self.mode_path)

    def url(self):
        return "http://127.0.0.1:%d/hooks/warmbench" % self.port

    def requests(self):
        try:
            with open(self.out) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Driver:
    def __init__(self, cfg_path, log_path):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        self.proc = subprocess.Popen([DRV, "--config", cfg_path], stdout=subprocess.PIPE,
                                     stderr=self.log, env=env, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("drv_handoff did not start: %r\n%s" % (line, self.text()))

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=40):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


class HandoffCase(WbTestCase):
    def setUp(self):
        super().setUp()
        self.drivers = []
        self.addCleanup(self._finish)
        secret = write(os.path.join(self.tmp, "ats.key"), ATS_SECRET + "\n", 0o600)
        self.ats = Receiver(self.tmp, secret)
        self.addCleanup(self.ats.stop)

    def _finish(self):
        problems = []
        for d in self.drivers:
            if d.alive():
                rc = d.stop()
                if rc != 0:
                    problems.append("drv_handoff exited %d on SIGTERM:\n%s" % (rc, d.text()[-4000:]))
            text = d.text()
            if any(m in text for m in SANITIZER_MARKS):
                problems.append("sanitizer report:\n" + text[-8000:])
        if problems:
            self.fail("\n\n".join(problems))

    def world(self, n=1, max_attempts=12):
        self.config(ats={"webhook_url": self.ats.url(), "secret_file": "ats.key",
                         "max_attempts": max_attempts, "retry_base_s": 1})
        self.wb("migrate", check=0)
        lines = ["email,first_name,last_name,title,company,timezone,tags,consent,github"]
        lines += ["p%04d@example.org,P%d,Last,Engineer,Acme,UTC,backend;silver-medallist,opt_in,gh%d"
                  % (i, i, i) for i in range(n)]
        self.wb("import", write(os.path.join(self.tmp, "pool.csv"), "\n".join(lines) + "\n"),
                check=0)
        self.wb("enroll", "nurture", check=0)
        # Step 1 "sent" for everyone, as the scheduler would have stored it.
        self.sql("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender,"
                 " state, message_id, sent_at) SELECT e.id, e.candidate_id, e.sequence_id, 1,"
                 " 'ana', 'sent', 'm' || e.id || '@example.com', now()"
                 " FROM enrollments e")
        self.sql("INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step,"
                 " type, at) SELECT m.candidate_id, m.id, m.enrollment_id, m.sequence_id, 1,"
                 " 'sent', m.sent_at FROM messages m")

    def reply(self, email, intent="interested", machine_click=False):
        """Records a click (machine, when asked) and a reply, as the poller would."""
        mid = self.scalar("SELECT m.id FROM messages m JOIN candidates c ON c.id = m.candidate_id"
                          " WHERE c.email = '%s'" % email)
        types, machine, detail = ["reply"], ["false"], ['{"intent": "%s"}' % intent]
        if machine_click:
            types.insert(0, "click")
            machine.insert(0, "true")
            detail.insert(0, '{"link": "apply"}')
        n = len(types)
        self.sql("SELECT wb_record_events(ARRAY[%s]::bigint[], ARRAY[%s]::text[],"
                 " ARRAY[%s]::boolean[], ARRAY[%s]::jsonb[],"
                 " ARRAY[%s]::timestamptz[])"
                 % (",".join([mid] * n), ",".join("'%s'" % t for t in types),
                    ",".join(machine), ",".join("'%s'" % d for d in detail),
                    ",".join(["clock_timestamp()"] * n)))

    def driver(self):
        d = Driver(self.cfg_path, os.path.join(self.tmp, "drv-%d.log" % len(self.drivers)))
        self.drivers.append(d)
        return d

    def drv_cli(self, *args, check=0):
        p = subprocess.run([DRV, "--config", self.cfg_path] + list(args), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, check, p.stdout + p.stderr)
        return p.stdout

    def handoff(self, col="state"):
        return self.scalar("SELECT %s FROM handoffs ORDER BY id DESC LIMIT 1" % col)

    def wait_state(self, state, timeout=30):
        try:
            wait_until(lambda: self.handoff() == state, timeout, "handoff " + state)
        except AssertionError as e:
            logs = "\n".join(d.text()[-3000:] for d in self.drivers)
            rows = self.sql("SELECT state, attempts, last_status, last_error, next_attempt_at"
                            " FROM handoffs")
            raise AssertionError("%s\nrows %s\nrequests %s\nlogs:\n%s"
                                 % (e, rows, [r["answer"] for r in self.ats.requests()], logs))

    # --- tests ------------------------------------------------------------

    def test_reply_delivers_once_signed_with_timeline(self):
        self.world(n=2)
        self.driver()
        self.reply("p0001@example.org", machine_click=True)
        self.wait_state("delivered")
        time.sleep(0.5)
        reqs = self.ats.requests()
        self.assertEqual(len(reqs), 1, reqs)
        r = reqs[0]
        self.assertTrue(r["sig_ok"], r)
        self.assertEqual(r["path"], "/hooks/warmbench")
        h = r["headers"]
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertEqual(h["Idempotency-Key"], self.handoff("idempotency_key"))
        self.assertRegex(h["User-Agent"], r"^warmbench/\d")
        self.assertRegex(h["Warmbench-Signature"], r"^t=\d+,v1=[0-9a-f]{64}$")
        body = json.loads(r["body"])
        self.assertEqual(list(body), ["type", "id", "occurred_at", "reason", "sequence",
                                      "candidate", "engagement"])
        self.assertEqual(body["type"], "candidate.handoff")
        self.assertEqual(body["id"], h["Idempotency-Key"])
        self.assertEqual(body["reason"], "reply")
        self.assertEqual(body["sequence"], "nurture")
        self.assertRegex(body["occurred_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        c = body["candidate"]
        self.assertEqual(c["email"], "p0001@example.org")
        self.assertEqual((c["first_name"], c["last_name"], c["title"], c["company"]),
                         ("P1", "Last", "Engineer", "Acme"))
        self.assertEqual(sorted(c["tags"]), ["backend", "silver-medallist"])
        self.assertEqual(c["attrs"].get("github"), "gh1")
        types = [(e["type"], e["step"]) for e in body["engagement"]]
        # The machine click is not human engagement; the handoff itself is.
        self.assertEqual(types, [("enrolled", None), ("sent", 1), ("reply", 1), ("handoff", 1)])
        self.assertEqual(body["engagement"][2]["intent"], "interested")
        for e in body["engagement"]:
            self.assertRegex(e["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        row = self.sql("SELECT attempts, last_status, delivered_at IS NOT NULL, lease_owner"
                       " FROM handoffs")[0]
        self.assertEqual(row, ["1", "200", "t", ""])
        # A second reply hands nothing off again.
        self.reply("p0001@example.org")
        time.sleep(1.0)
        self.assertEqual(len(self.ats.requests()), 1)

    def test_outage_then_recovery_delivers_once(self):
        self.world()
        until = time.time() + 5
        self.ats.set(status=503, until=until)
        self.driver()
        self.reply("p0000@example.org")
        self.wait_state("delivered", timeout=40)
        time.sleep(0.5)
        reqs = self.ats.requests()
        self.assertGreaterEqual(len(reqs), 2)
        self.assertEqual({r["headers"]["Idempotency-Key"] for r in reqs},
                         {self.handoff("idempotency_key")})
        self.assertEqual([r["answer"] for r in reqs].count(200), 1)
        self.assertEqual(reqs[-1]["answer"], 200)
        self.assertGreaterEqual(reqs[-1]["t"], until)
        self.assertTrue(all(r["sig_ok"] for r in reqs))
        # Every retry sends the same body (only the signature's time changes).
        self.assertEqual(len({r["body"] for r in reqs}), 1)
        self.assertEqual(self.handoff("attempts"), str(len(reqs)))

    def test_retry_after_is_honoured(self):
        self.world()
        self.ats.set(status=503, count=1, retry_after="2")
        self.driver()
        self.reply("p0000@example.org")
        self.wait_state("delivered", timeout=20)
        reqs = self.ats.requests()
        self.assertEqual([r["answer"] for r in reqs], [503, 200])
        # retry_base_s is 1, so without Retry-After the gap would be under 1 s.
        self.assertGreaterEqual(reqs[1]["t"] - reqs[0]["t"], 2.0)

    def test_gives_up_after_max_attempts(self):
        self.world(max_attempts=3)
        self.ats.set(status=500, body="boom")
        self.driver()
        self.reply("p0000@example.org")
        self.wait_state("dead", timeout=30)
        self.assertEqual(len(self.ats.requests()), 3)
        self.assertEqual(self.sql("SELECT attempts, last_status, last_error FROM handoffs")[0],
                         ["3", "500", "boom"])

    def test_400_is_dead_at_once_then_retried_by_operator(self):
        self.world()
        self.ats.set(status=400, body="unknown field \xe9 \x01")
        self.driver()
        self.reply("p0000@example.org")
        self.wait_state("dead")
        time.sleep(1.0)
        self.assertEqual(len(self.ats.requests()), 1)
        row = self.sql("SELECT id, attempts, last_status, last_error FROM handoffs")[0]
        self.assertEqual(row[1:], ["1", "400", "unknown field \xe9  "])
        listing = self.drv_cli("webhooks", "--dead")
        lines = listing.splitlines()
        self.assertRegex(lines[0], r"^ID +EMAIL +SEQUENCE +REASON +STATE +ATTEMPTS +STATUS +"
                                   r"NEXT ATTEMPT +LAST ERROR$")
        self.assertEqual(lines[1].split()[:7],
                         [row[0], "p0000@example.org", "nurture", "reply", "dead", "1", "400"])
        self.ats.set(status=200)
        out = self.drv_cli("webhooks", "--retry", row[0])
        self.assertIn("queued again", out)
        self.wait_state("delivered", timeout=10)
        reqs = self.ats.requests()
        self.assertEqual(len(reqs), 2)
        self.assertEqual(reqs[0]["headers"]["Idempotency-Key"], reqs[1]["headers"]["Idempotency-Key"])
        self.assertEqual(self.handoff("attempts"), "1")
        self.assertEqual(self.drv_cli("webhooks", "--dead").strip(), "no dead handoffs")
        # Only dead ones can be retried; ids must look like ids.
        self.drv_cli("webhooks", "--retry", row[0], check=65)
        self.drv_cli("webhooks", "--retry", "12; DROP", check=64)

    def test_manual_handoff(self):
        self.world()
        out = self.wb("handoff", "P0000@example.org", "--sequence", "nurture", check=0).stdout
        self.assertIn("1 enrollment(s) ended", out)
        self.wb("handoff", "nobody@example.org", check=65)
        self.wb("handoff", "p0000@example.org", "--sequence", "no-such-seq", check=65)
        self.driver()
        self.wait_state("delivered")
        body = json.loads(self.ats.requests()[0]["body"])
        self.assertEqual((body["reason"], body["sequence"]), ("manual", "nurture"))
        self.assertEqual([e["type"] for e in body["engagement"]], ["enrolled", "sent", "handoff"])
        self.assertEqual(self.scalar("SELECT state FROM enrollments"), "handed_off")
        self.assertEqual(self.scalar("SELECT manual FROM handoffs"), "t")

    def test_crash_during_request_redelivers_same_key(self):
        self.world()
        self.ats.set(hang=120)
        d = self.driver()
        self.reply("p0000@example.org")
        wait_until(lambda: self.ats.requests(), 10, "the request to arrive")
        self.assertEqual(self.handoff(), "delivering")
        d.kill9()
        self.ats.set(status=200)
        self.driver()
        # The lease (60 s) is what a restart waits for; move it to now.
        time.sleep(1.0)
        self.assertEqual(self.handoff(), "delivering")
        self.sql("UPDATE handoffs SET lease_until = now() - interval '1 second'")
        self.sql("SELECT pg_notify('wb_handoffs', '')")
        self.wait_state("delivered", timeout=15)
        reqs = self.ats.requests()
        self.assertEqual([r["answer"] for r in reqs], ["hang", 200])
        self.assertEqual(reqs[0]["headers"]["Idempotency-Key"], reqs[1]["headers"]["Idempotency-Key"])
        self.assertEqual(reqs[0]["body"], reqs[1]["body"])

    def test_sigterm_waits_for_the_request_in_flight(self):
        self.world()
        self.ats.set(hang=2)
        d = self.driver()
        self.reply("p0000@example.org")
        wait_until(lambda: self.ats.requests(), 10, "the request to arrive")
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0, d.text())
        # It waited for the answer (none: the receiver closed after 2 s)...
        self.assertGreater(time.monotonic() - t0, 1.0)
        # ...and stored the outcome: a retry, lease released, same key kept.
        row = self.sql("SELECT state, attempts, lease_owner, last_status FROM handoffs")[0]
        self.assertEqual(row, ["pending", "1", "", ""])

    def test_two_drivers_thousand_handoffs_each_once(self):
        self.world(n=1000)
        self.driver()
        self.driver()
        self.sql("INSERT INTO handoffs (candidate_id, sequence_id, reason)"
                 " SELECT candidate_id, sequence_id, 'click:apply' FROM enrollments")
        wait_until(lambda: self.scalar("SELECT count(*) FROM handoffs WHERE state = 'delivered'")
                   == "1000", 60, "1000 delivered", interval=0.2)
        time.sleep(0.5)
        keys = collections.Counter(r["headers"]["Idempotency-Key"] for r in self.ats.requests())
        self.assertEqual(len(keys), 1000)
        self.assertEqual(max(keys.values()), 1, keys.most_common(3))
        owners = self.sql("SELECT count(DISTINCT lease_owner) FROM handoffs")
        self.assertEqual(owners, [["0"]])


if __name__ == "__main__":
    import unittest
    unittest.main()


class HandoffDaemonTest(WbTestCase):
    """The same path through the programs a user runs: warmbench handoff,
    warmbenchd delivering, warmbench webhooks listing."""

    def test_cli_and_daemon(self):
        from daemon_util import Daemon
        secret = write(os.path.join(self.tmp, "ats.key"), ATS_SECRET + "\n", 0o600)
        ats = Receiver(self.tmp, secret)
        self.addCleanup(ats.stop)
        ats.set(status=400, body="candidate exists")
        self.config(ats={"webhook_url": ats.url(), "secret_file": "ats.key",
                         "max_attempts": 3, "retry_base_s": 1})
        self.wb("migrate", check=0)
        pool = write(os.path.join(self.tmp, "pool.csv"),
                     "email,first_name,tags,consent\nada@example.org,Ada,backend,opt_in\n")
        self.wb("import", pool, check=0)
        self.wb("enroll", "nurture", check=0)
        self.wb("handoff", "ada@example.org", "--sequence", "nurture", check=0)
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        wait_until(lambda: self.scalar("SELECT state FROM handoffs") == "dead", 20, "dead")
        listed = self.wb("webhooks", "--dead", check=0).stdout
        self.assertIn("ada@example.org", listed)
        self.assertIn("400", listed)
        hid = self.scalar("SELECT id FROM handoffs")
        ats.set(status=200)
        self.wb("webhooks", "--retry", hid, check=0)
        wait_until(lambda: self.scalar("SELECT state FROM handoffs") == "delivered", 20,
                   "delivered")
        reqs = ats.requests()
        self.assertEqual(len(reqs), 2)
        self.assertTrue(all(r["sig_ok"] for r in reqs))
        self.assertEqual(reqs[0]["headers"]["Idempotency-Key"], reqs[1]["headers"]["Idempotency-Key"])
        self.assertEqual(d.stop(), 0)
        self.assertFalse(any(m in d.text() for m in SANITIZER_MARKS), d.text()[-4000:])
