"""Ashby, Workable and SmartRecruiters against local servers that follow each
vendor's published request and response shapes (vendor_ats.py): a handoff
creates the person once through a 429 carrying Retry-After; a person already
in the ATS (found by email) gets a note, not a second record; a rejection web
hook, signed as the vendor signs it, enrolls the silver medallist; a forged or
replayed one stores nothing; `warmbench ats check` tells a refused credential
(78) from an unreachable vendor (69). Engines as warmbenchd wires them:
tests/drivers/drv_handoff (out) and drv_http (POST /ats/events/KIND)."""
import http.client
import json
import os
import signal
import subprocess
import time

import harness
from harness import WbTestCase, write
from daemon_util import SANITIZER_MARKS, wait_until
from vendor_ats import AshbyVendor, SmartRecruitersVendor, WorkableVendor, av_serve

DRV_HANDOFF = os.path.join(harness.BUILD, "tests", "drv_handoff")
DRV_HTTP = os.path.join(harness.BUILD, "tests", "drv_http")
EMAIL = "p0001@example.org"
WEBHOOK_SECRET = "vendor-webhook-secret-1"

SILVER_SEQ = dict(harness.DEFAULT_SEQUENCE, id="silver", audience={"tags_any": ["nobody"]},
                  handoff_on=[])


class _VendorCase:
    """One vendor's acceptance tests, mixed into a WbTestCase per vendor."""

    KIND = None

    def setUp(self):
        super().setUp()
        self.vendor = self.make_vendor()
        self.srv, self.base = av_serve(self.vendor)
        self.addCleanup(self.srv.shutdown)
        self.logs = []
        self.addCleanup(self._check_logs)

    # --- the world ---------------------------------------------------------
    def make_vendor(self):
        raise NotImplementedError

    def api(self):
        raise NotImplementedError

    def webhook_secret(self):
        return WEBHOOK_SECRET

    def world(self, job_id=None, base=None, data=True):
        write(os.path.join(self.tmp, "vendor.secret"), self.vendor_secret() + "\n", 0o600)
        write(os.path.join(self.tmp, "vendor-webhook.key"), self.webhook_secret() + "\n", 0o600)
        api = dict(self.api(), base_url=base or self.base)
        ats = {"kind": self.KIND, "api": api, "webhook_secret_file": "vendor-webhook.key",
               "rejected_enroll": "silver", "max_attempts": 6, "retry_base_s": 1}
        if job_id:
            ats["job_id"] = job_id
        self.config(sequences=[harness.DEFAULT_SEQUENCE, SILVER_SEQ], ats=ats)
        if not data:
            return
        self.wb("migrate", check=0)
        # Ada is in a sequence; Silver, sourced earlier, is in the pool only
        # (a vendor's web hook carries no consent: the pool's decides).
        self.wb("import", write(os.path.join(self.tmp, "pool.csv"),
                                "email,first_name,last_name,title,company,tags,consent\n"
                                "%s,Ada,Lovelace,Engineer,Acme,backend,opt_in\n"
                                "silver@example.org,Sil,Ver,Engineer,Acme,frontend,"
                                "legitimate_interest\n" % EMAIL),
                check=0)
        self.wb("enroll", "nurture", check=0)
        self.sql("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender,"
                 " state, message_id, sent_at) SELECT e.id, e.candidate_id, e.sequence_id, 1,"
                 " 'ana', 'sent', 'm' || e.id || '@example.com', now() FROM enrollments e")

    def reply(self):
        """A reply to step 1, as the poller records it: handoff_on reply."""
        mid = self.scalar("SELECT id FROM messages LIMIT 1")
        self.sql("SELECT wb_record_events(ARRAY[%s]::bigint[], ARRAY['reply']::text[],"
                 " ARRAY[false], ARRAY['{\"intent\": \"interested\"}']::jsonb[],"
                 " ARRAY[clock_timestamp()])" % mid)

    def _spawn(self, exe, name, *args):
        log = os.path.join(self.tmp, name + ".log")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        p = subprocess.Popen([exe, "--config", self.cfg_path] + list(args), stdout=subprocess.PIPE,
                             stderr=open(log, "w"), env=env, text=True)
        self.procs.append(p)
        self.logs.append((p, log))
        return p, log

    def _check_logs(self):
        for p, log in self.logs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(40)
                except subprocess.TimeoutExpired:
                    p.kill()
            with open(log, errors="replace") as f:
                text = f.read()
            for m in SANITIZER_MARKS:
                self.assertNotIn(m, text, text[-6000:])

    def deliver(self, want="delivered", timeout=30):
        p, log = self._spawn(DRV_HANDOFF, "drv_handoff")
        self.assertEqual(p.stdout.readline().strip(), "ready", open(log).read())

        def state():
            return self.scalar("SELECT state FROM handoffs ORDER BY id DESC LIMIT 1")
        try:
            wait_until(lambda: state() == want, timeout, "handoff " + want)
        except AssertionError as e:
            rows = self.sql("SELECT state, attempts, ats_step, last_status, last_error"
                            " FROM handoffs")
            raise AssertionError("%s\nrows %s\nrequests %s\nlog:\n%s" % (
                e, rows, [(r["method"], r["path"]) for r in self.vendor.requests],
                open(log).read()[-4000:]))

    def ats_id(self):
        return self.scalar("SELECT ats_id FROM candidate_ats WHERE kind = '%s'" % self.KIND)

    # --- inbound -----------------------------------------------------------
    def http(self):
        p, log = self._spawn(DRV_HTTP, "drv_http")
        line = p.stdout.readline().split()
        self.assertEqual(line[:1], ["READY"], open(log).read())
        self.port = int(line[1])

    def post(self, raw, headers):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        c.request("POST", "/ats/events/" + self.KIND, body=raw,
                  headers=dict({"Content-Type": "application/json"}, **headers))
        r = c.getresponse()
        data = r.read()
        out = (r.status, dict(r.getheaders()), json.loads(data) if data.startswith(b"{") else data)
        c.close()
        return out

    def stored(self):
        return {t: int(self.scalar("SELECT count(*) FROM %s" % t))
                for t in ("ats_inbound", "enrollments", "events")}

    def silver_enrolled(self, email):
        return self.scalar("SELECT count(*) FROM enrollments e JOIN candidates c"
                           " ON c.id = e.candidate_id WHERE lower(c.email) = lower('%s')"
                           " AND e.sequence_id = 'silver'" % email)

    # --- tests shared by every vendor --------------------------------------
    def test_handoff_creates_once_through_a_429(self):
        self.world()
        self.vendor.fail[self.CREATE] = 1
        self.reply()
        t0 = time.time()
        self.deliver()
        people = self.vendor.by_email(EMAIL)
        self.assertEqual(len(people), 1, self.vendor.people)
        creates = self.vendor.calls(self.CREATE)
        self.assertEqual(len(creates), 2, "the 429, then the one that created")
        # Retry-After: 1 was honoured: the second create came at least a second later.
        self.assertGreaterEqual(creates[1]["t"] - creates[0]["t"], 0.9)
        self.assertGreaterEqual(len(self.vendor.calls(self.FIND)), 2, "a retry looks up first")
        self.assertEqual([n["candidateId"] for n in self.vendor.notes], [people[0]["id"]])
        self.assertIn("warmbench handoff: reply", self.vendor.notes[0]["text"])
        self.assertEqual(self.ats_id(), people[0]["id"])
        self.assertLess(time.time() - t0, 20)

    def test_existing_person_gets_a_note_not_a_second_record(self):
        self.world()
        pid = self.existing(EMAIL)
        self.reply()
        self.deliver()
        self.assertEqual(self.vendor.calls(self.CREATE), [])
        self.assertEqual(len(self.vendor.by_email(EMAIL)), 1)
        self.assertEqual([n["candidateId"] for n in self.vendor.notes], [pid])
        self.assertEqual(self.ats_id(), pid)

    def test_check_refused_and_unreachable(self):
        self.world()
        self.wb("ats", "check", check=0)
        write(os.path.join(self.tmp, "vendor.secret"), "wrong-credential\n", 0o600)
        p = self.wb("ats", "check", check=78)
        self.assertRegex(p.stdout + p.stderr, r"(?i)refused")
        self.world(base="http://127.0.0.1:%d" % harness.free_port(), data=False)
        self.wb("ats", "check", check=69)


class AshbyTest(_VendorCase, WbTestCase):
    KIND = "ashby"
    FIND, CREATE = "candidate.search", "candidate.create"

    def make_vendor(self):
        return AshbyVendor("ashby-api-key-1")

    def vendor_secret(self):
        return "ashby-api-key-1"

    def api(self):
        return {"api_key_file": "vendor.secret"}

    def existing(self, email):
        return self.vendor.add_person(email, "Ada Lovelace")

    def test_job_attach_once(self):
        self.world(job_id="job-backend")
        self.reply()
        self.deliver()
        p = self.vendor.by_email(EMAIL)[0]
        self.assertEqual(p["jobs"], ["job-backend"])
        self.assertEqual(len(self.vendor.calls("application.create")), 1)

    def test_rejection_enrolls_forged_and_replayed_store_nothing(self):
        self.world()
        self.http()
        secret = WEBHOOK_SECRET.encode()
        raw = AshbyVendor.webhook("applicationUpdate", "silver@example.org", status="Archived",
                                  action_id="wa-1")
        before = self.stored()
        st, _, body = self.post(raw, {"Ashby-Signature": "sha256=" + "0" * 64})
        self.assertEqual(st, 401, body)
        st, _, body = self.post(raw, {})
        self.assertEqual(st, 401, body)
        self.assertEqual(self.stored(), before)
        st, _, body = self.post(raw, {"Ashby-Signature": AshbyVendor.sign(secret, raw)})
        self.assertEqual((st, body), (202, {"status": "stored", "enroll": "enrolled"}))
        self.assertEqual(self.silver_enrolled("silver@example.org"), "1")
        after = self.stored()
        # Ashby retries with the same webhookActionId: stored once.
        st, _, body = self.post(raw, {"Ashby-Signature": AshbyVendor.sign(secret, raw)})
        self.assertEqual((st, body.get("status")), (202, "duplicate"), body)
        self.assertEqual(self.stored(), after)
        # A ping (sent when the webhook is saved) is answered and stores nothing.
        ping = json.dumps({"action": "ping", "data": {"webhook": {"id": "w"}}}).encode()
        st, _, body = self.post(ping, {"Ashby-Signature": AshbyVendor.sign(secret, ping)})
        self.assertEqual(st, 200, body)
        self.assertEqual(self.stored(), after)


class WorkableTest(_VendorCase, WbTestCase):
    KIND = "workable"
    FIND, CREATE = "GET /candidates", "POST /jobs/:shortcode/candidates"
    TOKEN = "workable-token-1"

    def make_vendor(self):
        return WorkableVendor(self.TOKEN, members=("m-recruiter",))

    def vendor_secret(self):
        return self.TOKEN

    def webhook_secret(self):
        return self.TOKEN  # Workable signs with the account token

    def api(self):
        return {"token_file": "vendor.secret", "user_id": "m-recruiter"}

    def world(self, job_id="JOB7", base=None, data=True):
        super().world(job_id=job_id, base=base, data=data)

    def existing(self, email):
        pid = self.vendor.add_person(email, "Ada Lovelace")
        self.vendor.people[pid]["jobs"].append("JOB7")
        return pid

    def test_rate_limit_paces_requests(self):
        """Five handoffs, three calls each, against 10 calls per 3 s (the
        vendor's window shortened for the test): all delivered, each person
        once, the window's overflow waited out rather than hammered."""
        self.vendor.WINDOW = 3.0
        self.world()
        emails = ["q%02d@example.org" % i for i in range(4)]
        self.wb("import", write(os.path.join(self.tmp, "more.csv"),
                                "email,first_name,last_name,tags,consent\n" +
                                "".join("%s,Q,Last,backend,opt_in\n" % e for e in emails)),
                check=0)
        for e in emails + [EMAIL]:
            self.wb("handoff", e, check=0)
        n = int(self.scalar("SELECT count(*) FROM handoffs"))
        self.assertEqual(n, 5)
        p, log = self._spawn(DRV_HANDOFF, "drv_handoff")
        self.assertEqual(p.stdout.readline().strip(), "ready")
        wait_until(lambda: self.scalar("SELECT count(*) FROM handoffs WHERE state = 'delivered'")
                   == str(n), 40, "all delivered")
        for e in emails + [EMAIL]:
            self.assertEqual(len(self.vendor.by_email(e)), 1, e)
        self.assertEqual(len(self.vendor.notes), 5)
        statuses = [r["status"] for r in self.vendor.requests]
        # Fifteen calls that did the work; a 429 (a call sent by another
        # handoff before the answer saying "0 remaining" came back) costs
        # itself and the lookup its retry starts with. At most one per
        # handoff: after a 429 every call waited for X-Rate-Limit-Reset.
        n429 = statuses.count(429)
        self.assertEqual(len(statuses), 15 + 2 * n429, statuses)
        self.assertLessEqual(n429, 5, statuses)

    def test_rejection_enrolls_forged_and_replayed_store_nothing(self):
        self.world()
        self.http()
        secret = self.TOKEN.encode()
        raw = WorkableVendor.webhook("candidate_moved", "silver@example.org", disqualified=True,
                                     event_id="ev-1", fired_at="2026-12-06T08:00:00Z")
        before = self.stored()
        forged = WorkableVendor.sign(b"not-the-token", raw)
        self.assertEqual(self.post(raw, {"X-Workable-Signature": forged})[0], 401)
        self.assertEqual(self.post(raw, {})[0], 401)
        self.assertEqual(self.stored(), before)
        st, _, body = self.post(raw, {"X-Workable-Signature": WorkableVendor.sign(secret, raw)})
        self.assertEqual((st, body), (202, {"status": "stored", "enroll": "enrolled"}))
        self.assertEqual(self.silver_enrolled("silver@example.org"), "1")
        after = self.stored()
        st, _, body = self.post(raw, {"X-Workable-Signature": WorkableVendor.sign(secret, raw)})
        self.assertEqual((st, body.get("status")), (202, "duplicate"), body)
        self.assertEqual(self.stored(), after)


class SmartRecruitersTest(_VendorCase, WbTestCase):
    KIND = "smartrecruiters"
    FIND, CREATE = "GET /candidates", "POST /candidates"
    TOKEN = "sr-token-1"

    def make_vendor(self):
        return SmartRecruitersVendor(self.TOKEN)

    def vendor_secret(self):
        return self.TOKEN

    def api(self):
        return {"token_file": "vendor.secret"}

    def existing(self, email):
        pid = self.vendor.add_person(email, "Ada Lovelace", firstName="Ada", lastName="Lovelace")
        self.vendor.people[pid]["jobs"].append("job-uuid-1")
        return pid

    def test_handshake_forged_and_stale_store_nothing(self):
        self.world()
        self.http()
        st, hdrs, body = self.post(b"", {"X-Hook-Secret": "4jn8fs9011jj8"})
        self.assertEqual((st, hdrs.get("X-Hook-Secret")), (200, "4jn8fs9011jj8"), body)
        secret = WEBHOOK_SECRET.encode()
        raw, h = SmartRecruitersVendor.webhook("c-1", "job-uuid-1")
        before = self.stored()
        forged = SmartRecruitersVendor.sign(b"other-key", raw, h)
        self.assertEqual(self.post(raw, forged)[0], 401)
        stale = SmartRecruitersVendor.sign(secret, raw, h, ts=int(time.time()) - 3600)
        self.assertEqual(self.post(raw, stale)[0], 401)
        self.assertEqual(self.post(raw, h)[0], 401)
        self.assertEqual(self.stored(), before)
