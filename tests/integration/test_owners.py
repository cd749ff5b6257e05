"""Ownership and contact policy (issue 14, SPEC "Ownership and contact
policy") against the real daemon, PostgreSQL and SMTP servers: an owner
sequence mails each candidate from the sender their import `owner` names
(by id or address), others from its fallback_sender; max_per_30_days holds
across three sequences and two daemons; cooldown_days holds a first step
after another sequence's mail."""
import json
import os
import time

import harness
from daemon_util import Daemon, Smtpd, wait_until

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "00:00", "end": "24:00", "timezone": "UTC"}


def sequence(sid, sender, tag, **extra):
    d = {"id": sid, "sender": sender, "audience": {"tags_any": [tag]}, "window": WINDOW,
         "links": {"apply": "https://example.com/jobs/backend"},
         "stop_on": ["reply", "unsubscribe", "bounce"],
         "steps": [{"after": "0s", "subject": "%s for {{first_name}}" % sid,
                    "text": "intro.txt", "html": "intro.html"}]}
    d.update(extra)
    return d


class OwnersTest(harness.WbTestCase):
    def servers(self, names):
        self.smtp = {}
        senders = {}
        for name in names:
            s = Smtpd().start()
            self.addCleanup(s.cleanup)
            self.smtp[name] = s
            senders[name] = {"from": "%s <%s@example.com>" % (name.title(), name),
                             "daily_limit": 0, "min_interval_s": 0,
                             "smtp": {"url": s.url, "connections": 2}}
        return senders

    def daemon(self, log, port=None):
        cfg = self.cfg_path
        if port:  # a second daemon on the same database: its own HTTP port
            doc = json.load(open(self.cfg_path))
            doc["http"]["listen"] = "127.0.0.1:%d" % port
            cfg = harness.write(os.path.join(self.tmp, "warmbench-%d.json" % port),
                                json.dumps(doc))
        d = Daemon(cfg, os.path.join(self.tmp, log)).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        return d

    def import_rows(self, rows):
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"),
                                        "\n".join(rows) + "\n"), check=0)

    def test_owner_sequence_mails_from_each_owner(self):
        senders = self.servers(["ana", "ben"])
        self.config(sequences=[sequence("mine", "owner", "o", fallback_sender="ana")],
                    senders=senders)
        self.wb("check-config", check=0)
        self.wb("migrate", check=0)
        self.import_rows(["email,first_name,tags,owner,consent",
                          "p1@corp.example,P1,o,ben,opt_in",
                          "p2@corp.example,P2,o,BEN@example.com,opt_in",
                          "p3@corp.example,P3,o,ana,opt_in",
                          "p4@corp.example,P4,o,,opt_in",
                          "p5@corp.example,P5,o,nobody@elsewhere.example,opt_in"])
        self.wb("enroll", "mine", check=0)
        self.daemon("d.log")
        wait_until(lambda: self.smtp["ana"].count() + self.smtp["ben"].count() >= 5, 30,
                   "all five")
        time.sleep(0.5)
        got = {name: sorted(m["rcpt_tos"][0] for m in s.messages())
               for name, s in self.smtp.items()}
        self.assertEqual(got["ben"], ["p1@corp.example", "p2@corp.example"])
        self.assertEqual(got["ana"], ["p3@corp.example", "p4@corp.example", "p5@corp.example"])
        for m in self.smtp["ben"].messages():
            self.assertEqual(m["msg"]["From"].addresses[0].addr_spec, "ben@example.com")
            self.assertEqual(m["msg"]["Feedback-ID"], "1:mine:ben:warmbench")
        self.assertEqual(self.scalar("SELECT string_agg(DISTINCT sender, ',' ORDER BY sender) "
                                     "FROM messages WHERE state = 'sent'"), "ana,ben")

    def test_max_per_30_days_across_sequences_and_two_daemons(self):
        senders = self.servers(["ana", "ben"])
        seqs = [sequence("s1", "ana", "x"), sequence("s2", "ben", "x"), sequence("s3", "ana", "x")]
        self.config(sequences=seqs, senders=senders, contact_policy={"max_per_30_days": 2})
        self.wb("migrate", check=0)
        self.import_rows(["email,first_name,tags,consent"] +
                         ["q%02d@corp.example,Q%d,x,opt_in" % (i, i) for i in range(40)])
        self.daemon("d1.log")
        self.daemon("d2.log", port=harness.free_port())
        # One sequence after another (enroll skips people active in another).
        total = lambda: self.smtp["ana"].count() + self.smtp["ben"].count()
        for n, seq in ((40, "s1"), (80, "s2"), (80, "s3")):
            wait_until(lambda: self.scalar("SELECT count(*) FROM enrollments "
                                           "WHERE state = 'active'") == "0", 30, "enrollments done")
            self.wb("enroll", seq, check=0)
            wait_until(lambda: total() >= n, 40, "%s sent" % seq)
        time.sleep(2)  # a third would have gone by now
        per = {}
        for s in self.smtp.values():
            for m in s.messages():
                per[m["rcpt_tos"][0]] = per.get(m["rcpt_tos"][0], 0) + 1
        self.assertEqual(len(per), 40)
        self.assertEqual(set(per.values()), {2}, per)
        # The third sequence of each person waits until the oldest of the two
        # is 30 days old.
        waits = self.sql("SELECT round(extract(epoch FROM next_due_at - now()) / 86400) "
                         "FROM enrollments WHERE state = 'active' AND step = 0 "
                         "AND sequence_id = 's3'")
        self.assertEqual(len(waits), 40)
        self.assertEqual({w[0] for w in waits}, {"30"})

    def test_cooldown_holds_a_first_step(self):
        senders = self.servers(["ana"])
        self.config(sequences=[sequence("s1", "ana", "x"), sequence("s2", "ana", "y")],
                    senders=senders, contact_policy={"cooldown_days": 3})
        self.wb("migrate", check=0)
        self.import_rows(["email,first_name,tags,consent", "c1@corp.example,C1,x;y,opt_in",
                          "c2@corp.example,C2,y,opt_in"])
        self.wb("enroll", "s1", check=0)
        d = self.daemon("d.log")
        wait_until(lambda: self.scalar("SELECT state FROM enrollments") == "finished", 20,
                   "s1 to c1")
        self.wb("enroll", "s2", check=0)
        wait_until(lambda: self.smtp["ana"].count() >= 2, 20, "s2 to c2")
        time.sleep(1.5)
        self.assertEqual(sorted(m["rcpt_tos"][0] + ":" + str(m["msg"]["Subject"]).split()[0]
                                for m in self.smtp["ana"].messages()),
                         ["c1@corp.example:s1", "c2@corp.example:s2"])
        # enroll says who the policy holds, and until when.
        out = self.wb("enroll", "s2", "--email", "c1@corp.example", check=0).stdout
        wait = self.scalar("SELECT round(extract(epoch FROM e.next_due_at - now()) / 86400) "
                           "FROM enrollments e JOIN candidates c ON c.id = e.candidate_id "
                           "WHERE c.email = 'c1@corp.example' AND e.sequence_id = 's2'")
        self.assertEqual(wait, "3")
        self.assertIn("1 wait for the contact policy:\n  c1@corp.example until ", out)
        d.stop()


if __name__ == "__main__":
    import unittest
    unittest.main()
