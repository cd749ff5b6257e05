"""`make demo` (tests/demo.sh) end to end, as a newcomer runs it: every
step of the loop must happen (the demo exits non-zero otherwise), the
handoffs reach the ATS signed, the report is written, and nothing it
started is left running or on disk. Plus: the demo's stats check fails
when a step of the funnel counts nobody."""
import glob
import json
import os
import re
import subprocess
import tempfile
import shutil
import time
import unittest

import harness

DEMO = os.path.join(harness.ROOT, "tests", "demo.sh")
PEOPLE = os.path.join(harness.ROOT, "tests", "demo", "people.py")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return b"dovecot" in f.read()


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wbt-demo-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.out = os.path.join(self.tmp, "demo")

    def test_the_loop_runs_and_cleans_up(self):
        t0 = time.monotonic()
        p = subprocess.run([DEMO, harness.BUILD], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, WB_DEMO_DIR=self.out))
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stdout[-4000:] + p.stderr[-4000:])
        out = p.stdout
        for line in ["ok  zoe.martin@example.com handed off at the ATS, signature verified",
                     "ok  jose.garcia@example.net replied, intent interested",
                     "ok  kenji.sato@example.net hard bounce, sequence stopped",
                     "ok  mehmet.yilmaz@example.net complaint, suppressed",
                     "ok  emily.chen@example.org proxy open recorded as a machine open",
                     "ok  rui.santos@example.com mailed step 1",
                     "reply       data-passive-prospects step 1",
                     "== warmbench webhooks", "The whole loop ran in"]:
            self.assertIn(line, out)
        self.assertEqual(len(re.findall(r"ATS: handoff verified: ", out)), 2, out)
        self.assertNotIn("REFUSED", out)
        # Each handoff the ATS verified is a file with the contract's body.
        files = sorted(glob.glob(os.path.join(self.out, "ats", "[0-9][0-9][0-9].json")))
        bodies = [json.load(open(f)) for f in files]
        self.assertEqual(sorted((b["candidate"]["email"], b["reason"]) for b in bodies),
                         [("jose.garcia@example.net", "reply:interested"),
                          ("zoe.martin@example.com", "click:apply")])
        self.assertTrue(all(b["type"] == "candidate.handoff" for b in bodies))
        with open(os.path.join(self.out, "report.html")) as f:
            self.assertIn("Funnel per sequence", f.read())
        stats = json.load(open(os.path.join(self.out, "stats.json")))["sequences"]
        self.assertGreaterEqual(sum(s["handed_off"] for s in stats), 2)
        # Stopped everything: no pid file left, the cluster's and Dovecot's
        # folders gone, and those processes with them.
        self.assertEqual(glob.glob(os.path.join(self.out, "*.pid")), [])
        pg = re.search(r"starting PostgreSQL \((\S+)\)", out).group(1)
        self.assertFalse(os.path.exists(pg), pg)
        m = re.search(r"dovecot pid (\d+) dir (\S+)", open(os.path.join(self.out, "mailbox.log")).read())
        self.assertFalse(os.path.exists(m.group(2)))
        self.assertFalse(alive(int(m.group(1))), "Dovecot still runs")
        for proc in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(proc, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            self.assertNotIn(self.out.encode(), cmd, "still running: %s" % cmd)
            self.assertNotIn(pg.encode(), cmd, "still running: %s" % cmd)
        print("demo took %.1f s" % took)

    def test_stats_check_fails_on_a_missing_step(self):
        seq = {"id": "s", "sent": 5, "opened": 2, "clicked": 1, "replied": 0, "auto_replied": 1,
               "bounced": 1, "unsubscribed": 1, "handed_off": 1, "opened_machine": 1}
        path = os.path.join(self.tmp, "stats.json")
        with open(path, "w") as f:
            json.dump({"sequences": [seq]}, f)
        p = subprocess.run(["/usr/bin/python3", PEOPLE, "check", "--stats", path],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("DEMO FAILED: warmbench stats counts none of: replied", p.stderr)
        seq["replied"] = 1
        with open(path, "w") as f:
            json.dump({"sequences": [seq]}, f)
        p = subprocess.run(["/usr/bin/python3", PEOPLE, "check", "--stats", path],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
