"""A backlog of due steps that the claim finds outside their window (a
day's limit left them over, or no daemon ran overnight) is re-timed to the
window's next opening a claim batch at a time. The claim wakes the
claimers again (NOTIFY) when it re-timed rows, so the backlog is moved
within seconds rather than one batch per idle tick, and nothing is sent."""
import datetime
import os
import time

import harness
from daemon_util import Daemon, Smtpd, wait_until

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
N = 2000


class WindowDrainTest(harness.WbTestCase):
    def test_a_backlog_outside_its_window_is_retimed_at_once(self):
        today = datetime.datetime.now(datetime.timezone.utc).weekday()
        # Open every day but today (UTC): whatever is due now is outside.
        window = {"days": [d for i, d in enumerate(DAYS) if i != today],
                  "start": "00:00", "end": "24:00", "timezone": "UTC"}
        seq = dict(harness.DEFAULT_SEQUENCE, window=window)
        smtp = Smtpd().start()
        self.addCleanup(smtp.cleanup)
        # One connection: a claim batch of 64, so 2,000 rows take 32 claims.
        self.config(sequences=[seq],
                    smtp={"url": smtp.url, "tls": "off", "connections": 1, "timeout_s": 10,
                          "retry_base_s": 1})
        self.wb("migrate", check=0)
        rows = ["email,first_name,tags,consent"] + \
               ["d%04d@corp.example,D%d,backend,opt_in" % (i, i) for i in range(N)]
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"),
                                        "\n".join(rows) + "\n"), check=0)
        self.wb("enroll", seq["id"], check=0)
        # Left over from yesterday: due an hour ago, today's window closed.
        self.sql("UPDATE enrollments SET next_due_at = now() - interval '1 hour'")
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        t0 = time.time()
        wait_until(lambda: self.scalar("SELECT count(*) FROM enrollments "
                                       "WHERE next_due_at <= now()") == "0", 60,
                   "the backlog re-timed")
        took = time.time() - t0
        print("\n  window drain: %d due rows outside the window re-timed in %.1f s" % (N, took))
        self.assertLess(took, 12.0, "re-timed one batch per idle tick")
        self.assertEqual(smtp.count(), 0)
        self.assertEqual(self.scalar("SELECT count(*) FROM messages"), "0")
        tomorrow = (datetime.datetime.now(datetime.timezone.utc).date()
                    + datetime.timedelta(days=1)).isoformat()
        self.assertEqual(self.sql("SELECT DISTINCT to_char(next_due_at AT TIME ZONE 'UTC', "
                                  "'YYYY-MM-DD HH24:MI') FROM enrollments"),
                         [[tomorrow + " 00:00"]])
