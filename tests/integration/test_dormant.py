"""Re-engaging the cold by itself: a sequence whose audience says
`dormant_days` and `auto_enroll` is joined by candidates with no human
engagement for that long — at the daemon's start and, while it runs, by
those who go dormant later — and they get its mail (aiosmtpd)."""
import os

import harness
from harness import WbTestCase, write
from daemon_util import Daemon, Smtpd, wait_until

OPEN_WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
               "start": "00:00", "end": "24:00", "timezone": "UTC"}
REENGAGE = {
    "id": "reengage",
    "sender": "ana",
    "audience": {"tags_any": ["backend"], "dormant_days": 30, "auto_enroll": True},
    "window": OPEN_WINDOW,
    "steps": [{"after": "0s", "subject": "Still around, {{first_name|there}}?",
               "text": "re.txt"}],
    "stop_on": ["reply", "unsubscribe", "bounce"],
}
# Enrolled by hand only: shows auto_enroll is the sequence's own choice.
NURTURE = dict(REENGAGE, id="nurture", audience={"tags_any": ["backend"], "dormant_days": 30})
TEMPLATES = {"re.txt": "Hi {{first_name|there}}, anything new?\n"
                       "Unsubscribe: {{unsubscribe_url}}\n"}
PEOPLE = {
    "active": "active@example.org",    # opened 2 days ago
    "lapsed": "lapsed@example.org",    # replied 45 days ago, opened 40 days ago
    "cold": "cold@example.org",        # in the pool 100 days, never engaged
    "fresh": "fresh@example.org",      # imported today, never engaged
    "elsewhere": "front@example.org",  # dormant, but not in the audience (tag)
    "gone": "gone@example.org",        # dormant, but suppressed
    "machine": "proxy@example.org",    # only machine opens, in the pool 100 days
}


class DormantTest(WbTestCase):
    def setUp(self):
        super().setUp()
        self.smtp = Smtpd().start()
        self.addCleanup(self.smtp.cleanup)

    def rcpts(self):
        return sorted(r for m in self.smtp.messages() for r in m["rcpt_tos"])

    def test_dormant_candidates_are_enrolled_and_mailed_by_the_daemon(self):
        port = harness.free_port()
        self.config(sequences=[REENGAGE, NURTURE], templates=TEMPLATES,
                    http={"listen": "127.0.0.1:%d" % port,
                          "public_url": "http://127.0.0.1:%d" % port},
                    smtp={"url": self.smtp.url, "tls": "off", "connections": 2,
                          "timeout_s": 5, "retry_base_s": 1})
        self.wb("migrate", check=0)
        rows = ["email,first_name,tags,consent"]
        rows += ["%s,%s,%s,opt_in" % (a, k.title(), "frontend" if k == "elsewhere" else "backend")
                 for k, a in PEOPLE.items()]
        self.wb("import", write(os.path.join(self.tmp, "pool.csv"), "\n".join(rows) + "\n"),
                check=0)
        self.wb("suppress", PEOPLE["gone"], check=0)
        # History, stored as any event is (the score trigger keeps
        # last_engaged_at); everyone but "fresh" joined the pool 100 days ago.
        self.sql("UPDATE candidates SET created_at = now() - interval '100 days'"
                 " WHERE email <> 'fresh@example.org'")
        self.sql("INSERT INTO events (candidate_id, type, machine, detail, at)"
                 " SELECT c.id, v.type, v.machine, v.detail::jsonb, now() - v.ago::interval"
                 " FROM (VALUES ('active@example.org', 'open', false, '{}', '2 days'),"
                 "  ('lapsed@example.org', 'reply', false, '{\"intent\": \"neutral\"}', '45 days'),"
                 "  ('lapsed@example.org', 'open', false, '{}', '40 days'),"
                 "  ('proxy@example.org', 'open', true, '{\"why\": \"apple-mpp\"}', '1 day'))"
                 " AS v(email, type, machine, detail, ago)"
                 " JOIN candidates c ON c.email = v.email")
        self.assertEqual(self.sql("SELECT email FROM candidates WHERE last_engaged_at IS NOT NULL"
                                  " ORDER BY email"),
                         [["active@example.org"], ["lapsed@example.org"]])

        d = Daemon(self.cfg_path, os.path.join(self.tmp, "warmbenchd.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        wait_until(lambda: self.smtp.count() >= 3, 30, "mail to the dormant")
        d.wait_log("auto_enroll: 3 candidate(s) enrolled into reengage", 5)
        self.assertEqual(self.rcpts(), sorted([PEOPLE["cold"], PEOPLE["lapsed"],
                                               PEOPLE["machine"]]))
        self.assertEqual(self.sql("SELECT DISTINCT source FROM enrollments"), [["auto"]])
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments"
                                     " WHERE sequence_id = 'nurture'"), "0")

        # Time passes for "active": their engagement now lies 62 days back
        # (rewritten events are rescored at once; rescore finds nothing to
        # fix). No one tells the daemon: its periodic round (every minute)
        # finds them.
        aid = self.scalar("SELECT id FROM candidates WHERE email = 'active@example.org'")
        self.sql(f"UPDATE events SET at = at - interval '60 days' WHERE candidate_id = {aid}")
        self.assertEqual(self.scalar(f"SELECT now() - last_engaged_at > interval '61 days'"
                                     f" FROM candidates WHERE id = {aid}"), "t")
        self.assertIn(": 0 changed", self.wb("rescore", check=0).stdout)
        wait_until(lambda: self.smtp.count() >= 4, 90, "mail to the newly dormant")
        self.assertIn(PEOPLE["active"], self.rcpts())
        msg = [m for m in self.smtp.messages() if PEOPLE["active"] in m["rcpt_tos"]][0]["msg"]
        self.assertEqual(msg["Subject"], "Still around, Active?")

        # Nobody else was enrolled, and nobody was mailed twice.
        d.wait_log("auto_enroll: 1 candidate(s) enrolled into reengage", 5)
        self.assertEqual(self.smtp.count(), 4)
        self.assertEqual(sorted(r[0] for r in self.sql(
            "SELECT c.email FROM enrollments e JOIN candidates c ON c.id = e.candidate_id")),
            sorted([PEOPLE["active"], PEOPLE["cold"], PEOPLE["lapsed"], PEOPLE["machine"]]))
        self.assertEqual(d.stop(), 0)
        for bad in ("auto_enroll reengage:", "storing scoring weights:"):
            self.assertNotIn(bad, d.text())
