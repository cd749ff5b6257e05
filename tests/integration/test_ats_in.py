"""POST /ats/events (SPEC "Handoff to the ATS") against a real PostgreSQL,
through tests/drivers/drv_http (the tracking endpoint wired as in
warmbenchd): signed events upsert, tag and enroll a candidate; every
refusal stores nothing."""
import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import time

import harness
from daemon_util import SANITIZER_MARKS

DRV = os.path.join(harness.BUILD, "tests", "drv_http")
ATS_SECRET = "ats-shared-secret-42"

SEQ = {
    "id": "nurture",
    "sender": "ana",
    "audience": {"tags_any": ["backend"]},
    "steps": [{"after": "0d", "subject": "Hi", "text": "intro.txt"}],
    "stop_on": ["reply", "unsubscribe", "bounce"],
}
TEMPLATES = {"intro.txt": "Hi {{first_name|there}}\n{{unsubscribe_url}}\n"}
TABLES = ("candidates", "enrollments", "events", "ats_inbound")


def sign(body, t=None, secret=ATS_SECRET):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


def rejected(eid="ev-1", email="Silver@Example.org", **extra):
    ev = {"type": "candidate.rejected", "id": eid,
          "candidate": {"email": email, "first_name": "Sil", "last_name": "Ver",
                        "timezone": "europe/berlin", "consent": "legitimate_interest",
                        "skills": ["go"], "tags": ["from-ats"]},
          "tags": ["silver-medallist"], "enroll": "nurture"}
    ev.update(extra)
    return ev


class AtsInTest(harness.WbTestCase):
    def start(self, ats=True, seqs=(SEQ,)):
        over = {}
        if ats:
            harness.write(os.path.join(self.tmp, "ats.key"), ATS_SECRET + "\n", 0o600)
            over["ats"] = {"webhook_url": "http://127.0.0.1:9/hook", "secret_file": "ats.key"}
        self.config(sequences=list(seqs), templates=TEMPLATES, **over)
        self.wb("migrate", check=0)
        for s in seqs:
            self.sql("INSERT INTO sequences (id, content_hash, definition) VALUES "
                     "('%s', 'x', $$%s$$::jsonb)" % (s["id"], json.dumps(s)))
        self.err_path = os.path.join(self.tmp, "drv.err")
        self.drv = subprocess.Popen([DRV, "--config", self.cfg_path], stdout=subprocess.PIPE,
                                    stderr=open(self.err_path, "w"), text=True)
        self.procs.append(self.drv)
        line = self.drv.stdout.readline().split()
        self.assertEqual(line[:1], ["READY"], self.stderr())
        self.port = int(line[1])
        self.addCleanup(self.check_sanitizers)
        deadline = time.time() + 10
        while self.request("GET", "/healthz")[0] != 200:
            self.assertLess(time.time(), deadline, "healthz never 200")
            time.sleep(0.05)

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def check_sanitizers(self):
        if self.drv.poll() is None:
            self.drv.send_signal(signal.SIGTERM)
            self.assertEqual(self.drv.wait(20), 0, self.stderr())
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, err, err)

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def post(self, ev, sig=None, raw=None, t=None):
        body = raw if raw is not None else json.dumps(ev).encode()
        h = {"Content-Type": "application/json",
             "Warmbench-Signature": sig if sig is not None else sign(body, t)}
        st, hdr, data = self.request("POST", "/ats/events", body, h)
        return st, (json.loads(data) if data.startswith(b"{") else data)

    def counts(self):
        return {t: int(self.scalar("SELECT count(*) FROM %s" % t)) for t in TABLES}

    def assert_nothing_stored(self, before=None):
        self.assertEqual(self.counts(), before or {t: 0 for t in TABLES})

    # ---- the silver-medallist path ----
    def test_rejected_upserts_tags_and_enrolls(self):
        self.start()
        st, body = self.post(rejected())
        self.assertEqual((st, body), (202, {"status": "stored", "enroll": "enrolled"}))
        row = self.sql("SELECT email, first_name, timezone, tags, skills, consent, source "
                       "FROM candidates")
        self.assertEqual(row, [["Silver@Example.org", "Sil", "Europe/Berlin",
                                "{from-ats,silver-medallist}", "{go}", "legitimate_interest",
                                "ats"]])
        self.assertEqual(self.sql("SELECT sequence_id, state, source, step FROM enrollments"),
                         [["nurture", "active", "ats", "0"]])
        ev = self.sql("SELECT type, source, detail FROM events ORDER BY id")
        self.assertEqual(ev[0][:2], ["ats", "ats"])
        self.assertEqual(json.loads(ev[0][2]), {"event": "candidate.rejected", "id": "ev-1"})
        self.assertEqual(ev[1][0], "enrolled")
        self.assertEqual(self.sql("SELECT id, type FROM ats_inbound"),
                         [["ev-1", "candidate.rejected"]])

    def test_existing_candidate_is_merged_not_overwritten(self):
        self.start()
        self.sql("INSERT INTO candidates (email, first_name, tags, consent) "
                 "VALUES ('silver@example.org', 'Silvia', '{backend}', 'opt_in')")
        st, body = self.post(rejected())
        self.assertEqual(st, 202, body)
        self.assertEqual(self.sql("SELECT email, first_name, last_name, tags, consent "
                                  "FROM candidates"),
                         [["silver@example.org", "Silvia", "Ver",
                           "{backend,from-ats,silver-medallist}", "opt_in"]])
        self.assertEqual(int(self.scalar("SELECT count(*) FROM enrollments")), 1)

    def test_replayed_id_is_acknowledged_and_changes_nothing(self):
        self.start()
        self.assertEqual(self.post(rejected())[0], 202)
        before = self.counts()
        st, body = self.post(rejected(email="other@example.org"))
        self.assertEqual((st, body), (202, {"status": "duplicate"}))
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates "
                                     "WHERE email = 'other@example.org'"), "0")

    def test_enroll_rules_of_warmbench_enroll(self):
        self.start()
        ev = rejected()
        del ev["candidate"]["consent"]
        st, body = self.post(ev)
        self.assertEqual((st, body), (202, {"status": "stored", "enroll": "no_consent"}))
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments"), "0")
        st, body = self.post(rejected(eid="ev-2"))
        self.assertEqual((st, body), (202, {"status": "stored", "enroll": "enrolled"}))
        st, body = self.post(rejected(eid="ev-3"))
        self.assertEqual((st, body), (202, {"status": "stored", "enroll": "already"}))

    def test_first_step_due_as_warmbench_enroll_makes_it(self):
        # wb_ats_enroll follows enroll.c's rules in SQL: the same first due
        # time for the same person, whether the window's zone is the
        # candidate's, their fallback, or a window that names none (UTC).
        week = ["mon"]
        by_candidate = dict(SEQ, id="by-candidate", steps=[dict(SEQ["steps"][0], after="2h")],
                            window={"days": week, "start": "09:00", "end": "10:00",
                                    "timezone": "candidate", "fallback_timezone": "Asia/Tokyo"})
        unnamed = dict(by_candidate, id="unnamed",
                       window={"days": week, "start": "09:00", "end": "10:00"})
        self.start(seqs=(SEQ, by_candidate, unnamed))
        cases = [("a", "by-candidate", "Europe/Berlin"), ("b", "by-candidate", None),
                 ("c", "unnamed", "Europe/Berlin")]
        for name, seq, tz in cases:
            ev = rejected(eid="ev-" + name, email="ats-%s@example.org" % name, enroll=seq)
            ev["candidate"].pop("timezone")
            if tz:
                ev["candidate"]["timezone"] = tz
            self.assertEqual(self.post(ev), (202, {"status": "stored", "enroll": "enrolled"}))
            self.sql("INSERT INTO candidates (email, timezone, tags, consent) VALUES"
                     " ('cli-%s@example.org', %s, '{}', 'opt_in')"
                     % (name, "'%s'" % tz if tz else "NULL"))
            self.wb("enroll", seq, "--email", "cli-%s@example.org" % name, check=0)
            due = self.sql("SELECT c.email, e.next_due_at FROM enrollments e"
                           " JOIN candidates c ON c.id = e.candidate_id"
                           " WHERE c.email LIKE '%%-%s@example.org' ORDER BY 1" % name)
            self.assertEqual(len(due), 2, due)
            self.assertEqual(due[0][1], due[1][1], (name, due))
            self.assertEqual(self.scalar("SELECT extract(isodow FROM timestamptz '%s' AT TIME ZONE"
                                         " '%s')" % (due[0][1], {"a": "Europe/Berlin",
                                                                  "b": "Asia/Tokyo",
                                                                  "c": "UTC"}[name])), "1")

    def test_suppressed_address_keeps_only_the_id(self):
        self.start()
        self.sql("INSERT INTO suppressions (email, email_hash, reason) VALUES "
                 "(NULL, wb_email_hash('silver@example.org'), 'forget')")
        st, body = self.post(rejected())
        self.assertEqual((st, body), (202, {"status": "suppressed"}))
        self.assertEqual(self.counts(), {"candidates": 0, "enrollments": 0, "events": 0,
                                         "ats_inbound": 1})

    # ---- applied / hired ----
    def test_hired_closes_the_enrollment_as_converted(self):
        self.start()
        self.assertEqual(self.post(rejected())[0], 202)
        st, body = self.post({"type": "candidate.hired", "id": "ev-9",
                              "candidate": {"email": "silver@EXAMPLE.org"}, "tags": ["hired"]})
        self.assertEqual((st, body), (202, {"status": "stored"}))
        self.assertEqual(self.sql("SELECT state, stop_reason, next_due_at IS NULL, "
                                  "ended_at IS NOT NULL FROM enrollments"),
                         [["converted", "hired", "t", "t"]])
        ev = self.sql("SELECT type, source, detail FROM events WHERE type = 'hired'")
        self.assertEqual(len(ev), 1)
        self.assertEqual(json.loads(ev[0][2])["event"], "candidate.hired")
        self.assertIn("hired", self.scalar("SELECT tags FROM candidates"))

    def test_applied_for_unknown_person_creates_nobody(self):
        self.start()
        st, body = self.post({"type": "candidate.applied", "id": "ev-5",
                              "candidate": {"email": "nobody@example.org"}})
        self.assertEqual((st, body), (202, {"status": "unknown_candidate"}))
        self.assertEqual(self.counts(), {"candidates": 0, "enrollments": 0, "events": 0,
                                         "ats_inbound": 1})

    # ---- refusals: nothing stored ----
    def test_bad_and_stale_signatures_are_401(self):
        self.start()
        body = json.dumps(rejected()).encode()
        for sig in ("", "t=1,v1=00", sign(body, secret="wrong"), sign(body, t=int(time.time()) - 600),
                    sign(body + b" ")):
            st, resp = self.post(None, raw=body, sig=sig)
            self.assertEqual((st, resp), (401, {"error": "bad signature"}), sig)
        st, h, _ = self.request("POST", "/ats/events", body, {})
        self.assertEqual(st, 401)
        self.assert_nothing_stored()

    def test_malformed_bodies_are_400_naming_the_field(self):
        self.start()
        cases = [
            (b"{not json", "invalid JSON"),
            (b"[]", "object"),
            (rejected(type="candidate.ghosted"), "type"),
            (rejected(id=5), "id"),
            (rejected(id="x" * 201), "id"),
            (rejected(tags="backend"), "tags"),
            (rejected(tags=[1]), "tags[0]"),
            (rejected(extra=1), "extra"),
            (rejected(candidate={"email": "not-an-address"}), "candidate.email"),
            (rejected(candidate={"email": "a@b.c", "shoe_size": 9}), "candidate.shoe_size"),
            (rejected(candidate={"email": "a@b.c", "consent": "yes"}), "candidate.consent"),
            (rejected(candidate={"email": "a@b.c", "first_name": 7}), "candidate.first_name"),
            (rejected(candidate={"email": "a@b.c", "timezone": "Mars/Olympus"}),
             "candidate.timezone"),
            ({"type": "candidate.rejected", "id": "x", "candidate": {"email": "a@b.c"}},
             "enroll"),
        ]
        for ev, field in cases:
            raw = ev if isinstance(ev, bytes) else json.dumps(ev).encode()
            st, body = self.post(None, raw=raw)
            self.assertEqual(st, 400, (raw, body))
            self.assertIn(field, body["error"], raw)
        self.assert_nothing_stored()

    def test_unknown_sequence_is_404(self):
        self.start()
        st, body = self.post(rejected(enroll="x"))
        self.assertEqual((st, body), (404, {"error": "unknown sequence \"x\""}))
        self.assert_nothing_stored()

    def test_megabyte_body_is_413(self):
        self.start()
        ev = rejected()
        ev["candidate"]["first_name"] = "x" * (1 << 20)
        st, body = self.post(ev)
        self.assertEqual(st, 413)
        self.assert_nothing_stored()
        # The endpoint still answers afterwards.
        self.assertEqual(self.post(rejected())[0], 202)

    def test_404_without_ats_configured(self):
        self.start(ats=False)
        st, _ = self.post(rejected())
        self.assertEqual(st, 404)
        self.assert_nothing_stored()
