"""Outcomes from the ATS and attribution (SPEC "Talent intelligence"):
signed candidate.applied / candidate.hired events posted to the running
warmbenchd are stored, close active enrollments as converted (no later step
goes out), and `warmbench stats --attribution` credits them per sequence and
per candidate source, with the median time from first send to first reply."""
import http.client
import json
import os

import harness
from daemon_util import Daemon, Smtpd, wait_until
from test_ats_in import sign
from test_handoff import ATS_SECRET, Receiver

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "00:00", "end": "24:00", "timezone": "UTC"}
TEMPLATES = {"one.txt": "Hello {{first_name|there}}\n{{unsubscribe_url}}\n",
             "two.txt": "Again, {{first_name|there}}\n"}


def seq(sid, tag, steps):
    return {"id": sid, "sender": "ana", "window": WINDOW,
            "audience": {"tags_any": [tag], "exclusive": False},
            "steps": steps, "stop_on": ["reply", "unsubscribe", "bounce"],
            "handoff_on": ["reply"]}


ALPHA = seq("alpha", "backend", [{"after": "0s", "subject": "One", "text": "one.txt"},
                                 {"after": "5s", "subject": "Two", "text": "two.txt"}])
BETA = seq("beta", "frontend", [{"after": "0s", "subject": "Beta", "text": "one.txt"},
                                {"after": "3d", "subject": "Beta 2", "text": "two.txt"}])

POOL = ("email,first_name,tags,consent,source\n"
        "a1@example.org,A1,backend,opt_in,linkedin\n"
        "a2@example.org,A2,backend,opt_in,linkedin\n"
        "a3@example.org,A3,backend,opt_in,event\n"
        "a4@example.org,A4,backend,opt_in,event\n"
        "b1@example.org,B1,frontend,opt_in,event\n"
        "b2@example.org,B2,frontend,opt_in,event\n"
        "x1@example.org,X1,nobody,opt_in,referral\n")


class AttributionTest(harness.WbTestCase):
    def setUp(self):
        super().setUp()
        self.smtp = Smtpd().start()
        self.addCleanup(self.smtp.cleanup)
        key = harness.write(os.path.join(self.tmp, "ats.key"), ATS_SECRET + "\n", 0o600)
        self.ats = Receiver(self.tmp, key)
        self.addCleanup(self.ats.stop)
        self.port = harness.free_port()
        self.config(sequences=[ALPHA, BETA], templates=TEMPLATES,
                    http={"listen": "127.0.0.1:%d" % self.port,
                          "public_url": "http://127.0.0.1:%d" % self.port},
                    smtp={"url": self.smtp.url, "tls": "off", "connections": 2,
                          "timeout_s": 5, "retry_base_s": 1},
                    ats={"webhook_url": self.ats.url(), "secret_file": "ats.key",
                         "retry_base_s": 1})
        self.wb("migrate", check=0)
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"), POOL), check=0)
        self.wb("enroll", "alpha", check=0)
        self.wb("enroll", "beta", check=0)

    def daemon(self):
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(self.stop_daemon, d)
        return d

    def stop_daemon(self, d):
        if d.alive():
            self.assertEqual(d.stop(), 0, d.text()[-4000:])
        self.assertIsNone(d.sanitizer_report())

    def post(self, type_, eid, email):
        body = json.dumps({"type": type_, "id": eid, "candidate": {"email": email}}).encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        c.request("POST", "/ats/events", body, {"Content-Type": "application/json",
                                                "Warmbench-Signature": sign(body)})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data)

    def reply(self, email, after):
        """A human reply to the person's step 1, `after` its send, recorded
        by the function the mailbox poller calls."""
        self.sql("SELECT wb_record_events(ARRAY[m.id], ARRAY['reply'], ARRAY[false],"
                 " ARRAY['{\"intent\": \"interested\"}'::jsonb],"
                 " ARRAY[m.sent_at + interval '%s'])"
                 " FROM messages m JOIN candidates c ON c.id = m.candidate_id"
                 " WHERE c.email = '%s' AND m.step = 1" % (after, email))

    def state(self, email, sequence):
        return self.sql("SELECT e.state, coalesce(e.stop_reason, '') FROM enrollments e"
                        " JOIN candidates c ON c.id = e.candidate_id"
                        " WHERE c.email = '%s' AND e.sequence_id = '%s'" % (email, sequence))[0]

    def test_hired_converts_and_is_credited(self):
        d = self.daemon()
        # Replies are timed from sent_at: the outcomes must be stored, not
        # only the mail at the server (they are applied in batches).
        wait_until(lambda: self.smtp.count() >= 6 and int(self.sql(
            "SELECT count(*) FROM messages WHERE sent_at IS NOT NULL")[0][0]) >= 6, 30,
            "step 1 to the six enrolled, stored as sent")
        self.reply("a1@example.org", "1 hour")
        self.reply("a3@example.org", "3 hours")
        self.reply("b1@example.org", "30 minutes")

        # a1 was handed off (its enrollment ended): credited by last touch.
        self.assertEqual(self.post("candidate.applied", "e1", "a1@example.org"),
                         (202, {"status": "stored"}))
        self.assertEqual(self.post("candidate.hired", "e2", "A1@example.org")[1]["status"],
                         "stored")
        self.assertEqual(self.state("a1@example.org", "alpha"), ["handed_off", "reply"])
        # a2 is active in alpha: hired converts it, and step 2 never goes out.
        self.assertEqual(self.post("candidate.hired", "e3", "a2@example.org")[0], 202)
        self.assertEqual(self.state("a2@example.org", "alpha"), ["converted", "hired"])
        self.assertEqual(self.post("candidate.applied", "e4", "b2@example.org")[0], 202)
        self.assertEqual(self.state("b2@example.org", "beta"), ["converted", "applied"])
        # x1 is in no sequence; nobody@ is not in the pool at all.
        self.assertEqual(self.post("candidate.hired", "e5", "x1@example.org")[0], 202)
        self.assertEqual(self.post("candidate.applied", "e6", "nobody@example.org"),
                         (202, {"status": "unknown_candidate"}))
        # A replay changes nothing.
        self.assertEqual(self.post("candidate.hired", "e3", "a2@example.org"),
                         (202, {"status": "duplicate"}))
        ev = self.sql("SELECT c.email, v.type, v.source FROM events v"
                      " JOIN candidates c ON c.id = v.candidate_id"
                      " WHERE v.type IN ('applied', 'hired') ORDER BY v.id")
        self.assertEqual(ev, [["a1@example.org", "applied", "ats"],
                              ["a1@example.org", "hired", "ats"],
                              ["a2@example.org", "hired", "ats"],
                              ["b2@example.org", "applied", "ats"],
                              ["x1@example.org", "hired", "ats"]])

        # a4 (still active) gets step 2; a2 (converted) never does.
        wait_until(lambda: self.smtp.count() >= 7, 30, "step 2 to a4")
        wait_until(lambda: self.ats.requests() and len(self.ats.requests()) >= 3, 30,
                   "the three handoffs delivered")
        d.stop()
        to = sorted(m["rcpt_tos"][0] for m in self.smtp.messages())
        self.assertEqual(to, ["a1@example.org", "a2@example.org", "a3@example.org",
                              "a4@example.org", "a4@example.org", "b1@example.org",
                              "b2@example.org"])

        doc = json.loads(self.wb("stats", "--attribution", "--json", check=0).stdout)
        seqs = {s["id"]: s for s in doc["sequences"]}
        keys = ("enrolled", "replied", "handed_off", "applied", "hired", "engaged",
                "median_time_to_engage_s")

        def row(o):
            return tuple(o[k] for k in keys)
        self.assertEqual(row(seqs["alpha"]), (4, 2, 2, 2, 2, 2, 7200))
        self.assertEqual({s["source"]: row(s) for s in seqs["alpha"]["sources"]},
                         {"event": (2, 1, 1, 0, 0, 1, 10800),
                          "linkedin": (2, 1, 1, 2, 2, 1, 3600)})
        self.assertEqual(row(seqs["beta"]), (2, 1, 1, 1, 0, 1, 1800))
        self.assertEqual({s["source"]: row(s) for s in doc["sources"]},
                         {"event": (4, 2, 2, 1, 0, 2, 6300),
                          "linkedin": (2, 1, 1, 2, 2, 1, 3600)})
        self.assertEqual(row(doc["total"]), (6, 3, 3, 3, 2, 3, 3600))
        self.assertEqual(doc["unattributed"], {"applied": 1, "hired": 1})
        self.assertEqual(seqs["alpha"]["rates"],
                         {"replied": 0.5, "handed_off": 0.5, "applied": 0.5, "hired": 0.5})
        self.assertEqual(seqs["alpha"]["step_rates"],
                         {"replied": 0.5, "handed_off": 1.0, "applied": 1.0, "hired": 1.0})
        self.assertEqual(seqs["beta"]["step_rates"]["hired"], 0.0)
        ev_src = next(s for s in seqs["alpha"]["sources"] if s["source"] == "event")
        self.assertIsNone(ev_src["step_rates"]["hired"])  # of 0 applied

        text = self.wb("stats", "--attribution", check=0).stdout
        lines = {ln.split()[0]: ln.split() for ln in text.splitlines() if ln.strip()}
        # label, then count and (rate) per stage, then the median and (engaged).
        self.assertEqual(lines["alpha"][1:], ["4", "2", "(50.0%)", "2", "(50.0%)", "2", "(50.0%)",
                                              "2", "(50.0%)", "2h", "0m", "(2)"])
        self.assertEqual(lines["beta"][1:], ["2", "1", "(50.0%)", "1", "(50.0%)", "1", "(50.0%)",
                                             "0", "(0.0%)", "30m", "0s", "(1)"])
        self.assertEqual(lines["total"][1:], ["6", "3", "(50.0%)", "3", "(50.0%)", "3", "(50.0%)",
                                              "2", "(33.3%)", "1h", "0m", "(3)"])
        # The source block, after the sequences: "event" over both sequences
        # (medians 3 h and 30 min: 1 h 45 min).
        self.assertIn(" 1h 45m (2)", text.split("\nsource ")[1].splitlines()[1])
        # Columns line up: every number ends where its header ends.
        head = next(ln for ln in text.splitlines() if ln.startswith("sequence"))
        self.assertEqual(head.index("enrolled") + len("enrolled"),
                         text.splitlines()[1].index("4 ") + 1)
        self.assertIn("applied 1, hired 1", text)

        one = json.loads(self.wb("stats", "--attribution", "beta", "--json", check=0).stdout)
        self.assertEqual([s["id"] for s in one["sequences"]], ["beta"])
        self.assertEqual(row(one["total"]), (2, 1, 1, 1, 0, 1, 1800))
        p = self.wb("stats", "--attribution", "nosuch", check=64)
        self.assertIn('unknown sequence "nosuch"', p.stderr)

    def test_empty_pool_prints_zeros(self):
        doc = json.loads(self.wb("stats", "--attribution", "--json", check=0).stdout)
        self.assertEqual([(s["id"], s["enrolled"], s["hired"], s["median_time_to_engage_s"])
                          for s in doc["sequences"]], [("alpha", 4, 0, None), ("beta", 2, 0, None)])
        self.assertEqual(doc["total"]["engaged"], 0)
        self.assertIsNone(doc["total"]["median_time_to_engage_s"])
        self.assertEqual(doc["unattributed"], {"applied": 0, "hired": 0})
        self.sql("DELETE FROM enrollments")
        doc = json.loads(self.wb("stats", "--attribution", "--json", check=0).stdout)
        self.assertEqual(doc["total"]["enrolled"], 0)
        self.assertIsNone(doc["total"]["rates"]["replied"])
        self.assertEqual(doc["sources"], [])
        text = self.wb("stats", "--attribution", check=0).stdout
        self.assertIn("alpha", text)
