"""Deliverability guards (issue 16, SPEC "Deliverability") against the real
daemon, PostgreSQL and SMTP servers: a sender whose hard-bounce rate passes
its guard is paused within a batch of outcomes while the other goes on,
`resume` lets its queue go out once; warm-up holds each day's limit at
start + step x n."""
import json
import os
import time
import urllib.request

import harness
from daemon_util import Daemon, Smtpd, wait_until

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "00:00", "end": "24:00", "timezone": "UTC"}


def sequence(sid, sender, tag):
    return {"id": sid, "sender": sender, "audience": {"tags_any": [tag]}, "window": WINDOW,
            "links": {"apply": "https://example.com/jobs/backend"},
            "stop_on": ["reply", "unsubscribe", "bounce"],
            "steps": [{"after": "0s", "subject": "Hello {{first_name}}",
                       "text": "intro.txt", "html": "intro.html"}]}


class GuardTest(harness.WbTestCase):
    def setup_two(self, senders, n_each, smtp_args=None):
        self.smtp = {}
        cfg_senders = {}
        for name in ("ana", "ben"):
            s = Smtpd(*(smtp_args or {}).get(name, [])).start()
            self.addCleanup(s.cleanup)
            self.smtp[name] = s
            cfg_senders[name] = dict({"from": "%s <%s@example.com>" % (name.title(), name),
                                      "daily_limit": 0, "min_interval_s": 0,
                                      "smtp": {"url": s.url, "connections": 2}},
                                     **senders.get(name, {}))
        self.http = harness.free_port()
        self.config(sequences=[sequence("for-ana", "ana", "a"), sequence("for-ben", "ben", "b")],
                    http={"listen": "127.0.0.1:%d" % self.http,
                          "public_url": "http://127.0.0.1:%d" % self.http},
                    senders=cfg_senders)
        self.wb("migrate", check=0)
        rows = ["email,first_name,tags,consent"]
        for name, tag in (("ana", "a"), ("ben", "b")):
            for i in range(n_each):
                # Every tenth of ana's people has left the company.
                who = "bad" if name == "ana" and i % 10 == 9 else name
                rows.append("%s-%03d@corp.example,P%d,%s,opt_in" % (who, i, i, tag))
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"), "\n".join(rows) + "\n"),
                check=0)

    def start(self, log="d.log"):
        self.wb("enroll", "for-ana", check=0)
        self.wb("enroll", "for-ben", check=0)
        self.d = Daemon(self.cfg_path, os.path.join(self.tmp, log)).start()
        self.addCleanup(lambda: self.d.alive() and self.d.stop())

    def senders(self):
        out = json.loads(self.wb("senders", "--json", check=0).stdout)
        return {r["sender"]: r for r in (out["senders"] if isinstance(out, dict) else out)}

    def test_bounce_rate_pauses_sender_resume_sends_rest_once(self):
        guard = {"guard": {"min_sample": 50, "max_bounce_rate": 0.05}}
        self.setup_two({"ana": guard, "ben": guard}, 300,
                       {"ana": ["--reject-rcpt-regex", "^bad-", "--reject-code", "550",
                                "--reject-status", "5.1.1"]})
        self.start()
        wait_until(lambda: self.scalar("SELECT paused_reason FROM sender_guard "
                                       "WHERE sender = 'ana'") is not None, 60, "ana paused")
        wait_until(lambda: self.smtp["ben"].count() >= 300, 60, "ben goes on to the end")
        time.sleep(1.5)  # what was on the wire lands; nothing new is claimed for ana
        reason = self.scalar("SELECT paused_reason FROM sender_guard WHERE sender = 'ana'")
        self.assertIn("hard-bounce rate", reason)
        reached = int(self.scalar("SELECT sent FROM sender_stats WHERE sender = 'ana'"))
        # Paused within a batch of outcomes after the 50th mail: far from all 300.
        self.assertGreaterEqual(reached, 50)
        self.assertLess(reached, 200, reached)
        self.assertIn("sender ana paused by its guard", self.d.text())
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http) as r:
            metrics = r.read().decode()
        self.assertIn('warmbench_sender_paused{sender="ana",reason="hard-bounce rate', metrics)
        st = self.senders()
        self.assertEqual(st["ana"]["state"], "paused")
        self.assertEqual(st["ben"]["state"], "ok")
        self.assertIsNone(self.scalar("SELECT paused_reason FROM sender_guard WHERE sender = 'ben'"))

        # The list is cleaned (the server stops refusing); resume sends the rest once.
        first = self.smtp["ana"]
        first.stop()
        self.smtp["ana"] = Smtpd(port=first.port).start()
        self.addCleanup(self.smtp["ana"].cleanup)
        out = self.wb("resume", "--sender", "ana", check=0).stdout
        self.assertIn("resumed", out)
        wait_until(lambda: self.scalar("SELECT count(*) FROM messages WHERE sender = 'ana' "
                                       "AND state IN ('sent', 'failed')") == "300", 60,
                   "ana's queue after resume")
        bounced = int(self.scalar("SELECT count(*) FROM messages WHERE sender = 'ana' "
                                  "AND state = 'failed'"))
        ids = [m["msg"]["Message-ID"] for m in first.messages() + self.smtp["ana"].messages()]
        self.assertEqual(len(ids), len(set(ids)), "a message went twice")
        self.assertEqual(len(ids) + bounced, 300)
        self.assertIsNone(self.scalar("SELECT paused_reason FROM sender_guard WHERE sender = 'ana'"))
        self.assertEqual(self.wb("resume", "--sender", "ana", check=0).stdout.strip(),
                         "sender ana was not paused")
        self.wb("resume", "--sender", "nobody", check=64)

    def test_warmup_day_limits(self):
        warm = {"warmup": {"start": 20, "step": 10}}
        self.setup_two({"ana": warm, "ben": warm}, 60)
        self.wb("migrate", check=0)
        # ana first sent yesterday: her second day (n = 1) allows 30; ben's first day 20.
        self.sql("INSERT INTO sender_stats (sender, day, sent) "
                 "VALUES ('ana', (now() AT TIME ZONE 'UTC')::date - 1, 20)")
        self.start()
        wait_until(lambda: self.smtp["ana"].count() >= 30 and self.smtp["ben"].count() >= 20, 40,
                   "the day's mail")
        time.sleep(2)  # nothing more goes today
        self.assertEqual(self.smtp["ana"].count(), 30)
        self.assertEqual(self.smtp["ben"].count(), 20)
        st = self.senders()
        self.assertEqual((st["ana"]["state"], st["ana"]["limit_today"]), ("warming_up", 30))
        self.assertEqual((st["ben"]["state"], st["ben"]["limit_today"]), ("warming_up", 20))


if __name__ == "__main__":
    import unittest
    unittest.main()
