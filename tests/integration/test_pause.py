"""The sourcer's pause, resume and unenroll (issue 15, SPEC "The
sourcer's controls") against the real daemon, PostgreSQL and an SMTP
server: a sequence paused mid-send claims nothing new within a second and
resumes to send the rest once within its daily limit; a person's pause
holds their next step and resume keeps its planned time; unenroll ends
them."""
import os
import time

import harness
from daemon_util import Daemon, Smtpd, wait_until

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "00:00", "end": "24:00", "timezone": "UTC"}
SEQ = {"id": "nurture", "sender": "ana", "audience": {"tags_any": ["x"]}, "window": WINDOW,
       "links": {"apply": "https://example.com/jobs/backend"},
       "stop_on": ["reply", "unsubscribe", "bounce"],
       "steps": [{"after": "0s", "subject": "Hi {{first_name}}", "text": "intro.txt",
                  "html": "intro.html"},
                 {"after": "2d", "subject": "Re: Hi {{first_name}}", "text": "follow-up.txt",
                  "thread": True}]}


class PauseTest(harness.WbTestCase):
    def setup_pool(self, n, daily_limit=0, delay_ms=0):
        self.smtp = Smtpd(*(["--delay-ms", str(delay_ms)] if delay_ms else [])).start()
        self.addCleanup(self.smtp.cleanup)
        self.config(sequences=[SEQ],
                    smtp={"url": self.smtp.url, "tls": "off", "connections": 2, "timeout_s": 10,
                          "retry_base_s": 1},
                    senders={"ana": {"from": "Ana <ana@example.com>", "daily_limit": daily_limit,
                                     "min_interval_s": 0}})
        self.wb("migrate", check=0)
        rows = ["email,first_name,tags,consent"] + \
               ["p%04d@corp.example,P%d,x,opt_in" % (i, i) for i in range(n)]
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"), "\n".join(rows) + "\n"),
                check=0)

    def daemon(self):
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        return d

    def test_sequence_pause_mid_send_then_resume_within_the_limit(self):
        self.setup_pool(600, daily_limit=500, delay_ms=20)
        self.wb("enroll", "nurture", check=0)
        self.daemon()
        wait_until(lambda: self.smtp.count() >= 100, 60, "a hundred sent")
        self.assertIn("paused", self.wb("pause", "nurture", check=0).stdout)
        t_pause = self.scalar("SELECT now()")
        time.sleep(3)
        late = self.scalar("SELECT count(*) FROM messages "
                           f"WHERE created_at > '{t_pause}'::timestamptz + interval '1 second'")
        self.assertEqual(late, "0", "claimed after the pause")
        held = self.smtp.count()
        time.sleep(1.5)
        self.assertEqual(self.smtp.count(), held, "sent while paused")
        self.assertLess(held, 500)
        self.assertIn("resumed", self.wb("resume", "nurture", check=0).stdout)
        wait_until(lambda: self.smtp.count() >= 500, 60, "the day's limit after resume")
        time.sleep(1.5)
        ids = [m["msg"]["Message-ID"] for m in self.smtp.messages()]
        self.assertEqual(len(ids), 500, "the daily limit held")
        self.assertEqual(len(set(ids)), 500, "a message went twice")
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments WHERE state = 'active' "
                                     "AND step = 0"), "100")

    def test_person_pause_resume_and_unenroll(self):
        self.setup_pool(3)
        self.wb("enroll", "nurture", check=0)
        self.wb("pause", "--email", "P0001@corp.example", check=0)
        self.wb("unenroll", "p0002@corp.example", check=0)
        self.daemon()
        wait_until(lambda: self.smtp.count() >= 1, 20, "p0000's first mail")
        time.sleep(2)
        self.assertEqual([m["rcpt_tos"][0] for m in self.smtp.messages()], ["p0000@corp.example"])
        self.assertEqual(self.scalar("SELECT state || ':' || stop_reason FROM enrollments e "
                                     "JOIN candidates c ON c.id = e.candidate_id "
                                     "WHERE c.email = 'p0002@corp.example'"), "stopped:unenrolled")
        out = self.wb("resume", "--email", "p0001@corp.example", check=0).stdout
        self.assertIn("resumed 1 enrollment", out)
        wait_until(lambda: self.smtp.count() >= 2, 20, "p0001 after resume")
        # Step 2 of p0000 keeps its planned time (2 days on); pausing and
        # resuming them does not bring it forward.
        before = self.scalar("SELECT e.next_due_at FROM enrollments e JOIN candidates c "
                             "ON c.id = e.candidate_id WHERE c.email = 'p0000@corp.example'")
        self.wb("pause", "--email", "p0000@corp.example", check=0)
        self.assertIsNone(self.scalar("SELECT e.next_due_at FROM enrollments e JOIN candidates c "
                                      "ON c.id = e.candidate_id "
                                      "WHERE c.email = 'p0000@corp.example'"))
        self.wb("resume", "--email", "p0000@corp.example", check=0)
        after = self.scalar("SELECT e.next_due_at FROM enrollments e JOIN candidates c "
                            "ON c.id = e.candidate_id WHERE c.email = 'p0000@corp.example'")
        self.assertEqual(before, after)
        self.wb("pause", check=64)
        self.wb("pause", "nurture", "--sender", "ana", check=64)
        self.wb("pause", "nosuch", check=64)


if __name__ == "__main__":
    import unittest
    unittest.main()
