"""kill -9 at a random point of a 2,000-message send, five times (issue 12,
"Crash loss and recovery"): never a duplicate, at most 2 x connections
messages `unknown`, everything else delivered within 10 s of the restart,
and `warmbench messages --unknown` lists, then deliberately resends, what
the crash left unknown. Postfix's smtp-sink takes the mail (fast enough
that the daemon, not the server, sets the pace), dumping each message to
a file."""
import collections
import glob
import os
import random
import re
import subprocess
import time

import harness
from daemon_util import wait_until
from test_daemon import DaemonCase

SMTP_SINK = "/usr/sbin/smtp-sink"
CONNECTIONS = 4
MESSAGES = 2000


class Sink:
    """smtp-sink on a free port, every message dumped to DIR/<n>.<hex>."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "sink-%d" % time.monotonic_ns())
        os.makedirs(self.dir)
        self.port = harness.free_port()
        self.url = "smtp://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-d", os.path.join(self.dir, "%M."), "-u", "root",
             "127.0.0.1:%d" % self.port, "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, 10, "smtp-sink listening")

    def _listening(self):
        import socket
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def count(self):
        return len(os.listdir(self.dir))

    def message_ids(self):
        ids = []
        for path in glob.glob(os.path.join(self.dir, "*")):
            with open(path, "rb") as f:
                m = re.search(rb"^Message-ID: <([^>]+)>", f.read(), re.M)
            ids.append(m.group(1).decode() if m else None)
        return ids

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class CrashLoopTest(DaemonCase):
    def fresh_database(self, k):
        self.base_db = getattr(self, "base_db", self.dbname)
        self.dbname = "%s_%d" % (self.base_db[:55], k)
        self.db = self.pg.createdb(self.dbname)

    def one_crash(self, rng, k):
        sink = Sink(self.tmp)
        self.addCleanup(sink.stop)
        self.fresh_database(k)
        self.setup_world(sink, MESSAGES, connections=CONNECTIONS, timeout_s=5)
        d = self.daemon()
        at = rng.randint(MESSAGES // 20, MESSAGES * 19 // 20)
        wait_until(lambda: sink.count() >= at, 60, "%d messages at the sink" % at,
                   interval=0.02)
        d.kill9()
        # Sending with no staged outcome: what the daemon never heard back about.
        in_flight = {r[0] for r in self.sql(
            "SELECT id FROM messages WHERE state = 'sending' AND out_outcome IS NULL")}
        self.assertLessEqual(len(in_flight), 2 * CONNECTIONS,
                             "crash %d at %d: more marked than the wire holds" % (k, at))
        t0 = time.monotonic()
        d2 = self.daemon()
        wait_until(lambda: self.count("state IN ('sent', 'unknown')") == MESSAGES, 30,
                   "every message sent or unknown (%s)" % self.states(), interval=0.05)
        took = time.monotonic() - t0
        self.assertLessEqual(took, 10.0, "crash %d at %d: the rest took %.1f s" % (k, at, took))
        d2.stop()
        unknown = {r[0] for r in self.sql("SELECT id FROM messages WHERE state = 'unknown'")}
        self.assertLessEqual(unknown, in_flight, "unknown but not in flight at the kill")
        mids = sink.message_ids()
        dup = [m for m, n in collections.Counter(mids).items() if n > 1]
        self.assertEqual(dup, [], "crash %d at %d: delivered twice" % (k, at))
        sent = {r[0] for r in self.sql("SELECT message_id FROM messages WHERE state = 'sent'")}
        self.assertEqual(sent - set(mids), set(), "marked sent, never received")
        self.assertEqual(len(sent), MESSAGES - len(unknown))
        return len(unknown), at, took

    def test_kill_9_five_times(self):
        seed = int(os.environ.get("WB_CRASH_SEED", time.time_ns() % 100000))
        rng = random.Random(seed)
        figures = [self.one_crash(rng, k) for k in range(5)]
        print("\n  crash loop (seed %d): unknown/killed-at/restart-to-done %s"
              % (seed, ", ".join("%d/%d/%.1fs" % f for f in figures)))

    def test_unknown_listed_and_requeued_on_purpose(self):
        sink = Sink(self.tmp)
        self.addCleanup(sink.stop)
        self.setup_world(sink, 300, connections=CONNECTIONS, timeout_s=5)
        d = self.daemon()
        wait_until(lambda: sink.count() >= 100, 60, "100 messages at the sink", interval=0.02)
        d.kill9()
        d2 = self.daemon()
        wait_until(lambda: self.count("state IN ('sent', 'unknown')") == 300, 30,
                   "every message sent or unknown", interval=0.05)
        unknown = sorted(int(r[0]) for r in
                         self.sql("SELECT id FROM messages WHERE state = 'unknown'"))
        out = self.wb("messages", "--unknown", check=0).stdout
        self.assertIn("%d message(s) with an unknown outcome" % len(unknown), out)
        for i in unknown:
            self.assertRegex(out, r"(?m)^%d\s+p\d{3}@example\.org\s+nurture\s+1 " % i)
        self.assertEqual(self.wb("messages", "--requeue", "1").returncode, 64)
        self.assertEqual(self.wb("messages", "--unknown", "--requeue", "x1").returncode, 64)
        sent_one = self.scalar("SELECT id FROM messages WHERE state = 'sent' LIMIT 1")
        p = self.wb("messages", "--unknown", "--requeue", sent_one, check=65)
        self.assertIn("not unknown (sent)", p.stdout)
        if not unknown:
            d2.stop()
            self.skipTest("the kill left nothing unknown this time")
        before = sink.count()
        p = self.wb("messages", "--unknown", "--all", check=0)
        self.assertIn("requeued %d message(s)" % len(unknown), p.stdout)
        self.assertIn("may get it twice", p.stdout)
        wait_until(lambda: self.count("state = 'sent'") == 300, 30, "the requeued sent")
        d2.stop()
        self.assertEqual(sink.count() - before, len(unknown))
        self.assertIn("0 message(s) with an unknown outcome",
                      self.wb("messages", "--unknown", check=0).stdout)
