"""`warmbench plan` (issue 15, SPEC "The sourcer's controls"): its per-day,
per-sender, per-step forecast equals what warmbenchd then sends, and it
writes nothing.

The daemon run happens on a fake clock: a throwaway PostgreSQL cluster,
warmbenchd and the CLI all run under libfaketime (Debian `faketime`)
reading one FAKETIME_TIMESTAMP_FILE, whose offset the test moves forward
checkpoint by checkpoint (midnight, the Berlin window's opening, the UTC
window's opening) through seven days. PostgreSQL's now() comes from its
own processes' clocks, so the claim, the limits and the step timing all
live on the fake days."""
import copy
import datetime
import json
import os
import shutil
import subprocess
import tempfile
import time

import harness
from daemon_util import Daemon, Smtpd, wait_until

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
UTC = datetime.timezone.utc
# A Monday in March (before Europe's DST change), inside the three years
# the config loader expands holiday files for.
T0 = datetime.datetime(2027, 3, 1, 6, 0, 0, tzinfo=UTC)
DAYS = 7
WED, THU = datetime.date(2027, 3, 3), datetime.date(2027, 3, 4)


def ics(day, summary):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//warmbench test//EN\r\n"
            "BEGIN:VEVENT\r\nUID:%s@test\r\nDTSTART;VALUE=DATE:%s\r\nSUMMARY:%s\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n" % (summary, day.strftime("%Y%m%d"), summary))


class FakeClock:
    """A FAKETIME_TIMESTAMP_FILE holding an offset from the real clock."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "faketime")
        self.set(T0)
        os.chmod(folder, 0o755)

    def set(self, when):
        offset = int((when - datetime.datetime.now(UTC)).total_seconds())
        with open(self.path + ".new", "w") as f:
            f.write("%+d\n" % offset)
        os.chmod(self.path + ".new", 0o644)
        os.replace(self.path + ".new", self.path)

    def env(self):
        # Monotonic clocks stay real: libuv's and PostgreSQL's timers. An
        # ASan build wants its runtime first: libfaketime only wraps the
        # clock calls, so the order check is turned off.
        asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1")
        return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": self.path,
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "ASAN_OPTIONS": asan + ":verify_asan_link_order=0"}


class FakePg(harness.PgCluster):
    """The harness's cluster, started under the fake clock, autovacuum off
    (nothing runs in it but the test's statements)."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def _ctl(self, *args):
        data = os.path.join(self.dir, "data")
        args = list(args)
        if "-o" in args:
            args[args.index("-o") + 1] += " -c autovacuum=off"
        subprocess.run(harness.as_postgres([harness.PGBIN + "/pg_ctl", "-D", data] + args),
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, **self.clock.env()})


def day(n):
    return (T0.date() + datetime.timedelta(days=n)).isoformat()


SEQUENCE = {
    "id": "nurture",
    "sender": "ana",
    "audience": {"tags_any": ["backend"], "exclusive": False},
    "window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00",
               "timezone": "candidate", "fallback_timezone": "UTC",
               "holidays": ["company.ics"], "holidays_by_country": {"DE": ["de.ics"]}},
    "links": {"apply": "https://example.com/jobs/backend"},
    "steps": [
        {"after": "0d", "subject": "{{first_name|Hi}}, about backend", "text": "intro.txt"},
        {"after": "2bd", "subject": "Re: {{first_name|Hi}}, about backend",
         "text": "follow-up.txt", "thread": True},
    ],
    "stop_on": ["reply", "unsubscribe", "bounce"],
}


# Another sequence, from another sender, mailing 30 of the same people at
# once: the contact policy's cooldown holds their first step of nurture.
INTRO2 = {
    "id": "intro2", "sender": "bo", "audience": {"tags_any": ["intro2"]},
    "window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
               "end": "24:00", "timezone": "UTC"},
    "steps": [{"after": "0d", "subject": "Hello from Bo", "text": "follow-up.txt"}],
    "stop_on": ["reply"],
}
SENDERS = {"ana": {"from": "Ana Ruiz <ana@example.com>", "daily_limit": 100,
                   "min_interval_s": 0, "warmup": {"start": 60, "step": 30}},
           "bo": {"from": "Bo <bo@example.com>", "daily_limit": 0}}


class PlanTest(harness.WbTestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(LIBFAKETIME), "%s is missing: apt-get install faketime "
                        "(make deps)" % LIBFAKETIME)
        self.ftdir = tempfile.mkdtemp(prefix="wbplan-")
        self.addCleanup(shutil.rmtree, self.ftdir, True)
        self.clock = FakeClock(self.ftdir)
        self.pg = FakePg(self.clock).start()
        self.addCleanup(self.pg.stop)
        self.dbname = "plan"
        self.db = self.pg.createdb(self.dbname)
        self.tmp = tempfile.mkdtemp(prefix="wbt-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def at(self, when):
        """Moves the fake clock (every process reads the file at each call:
        FAKETIME_NO_CACHE) and checks that PostgreSQL is there."""
        self.clock.set(when)
        want = when.strftime("%Y-%m-%d %H:%M:%S")
        wait_until(lambda: self.scalar("SELECT to_char(now() AT TIME ZONE 'UTC',"
                                       " 'YYYY-MM-DD HH24:MI:SS')") >= want, 10,
                   "the fake clock at %s" % want, interval=0.2)

    def fwb(self, *args, check=None):
        return self.wb(*args, check=check, env=self.clock.env())

    def setup_pool(self, policy=None):
        smtp = Smtpd().start()
        self.addCleanup(smtp.cleanup)
        over = {"smtp": {"url": smtp.url, "tls": "off", "connections": 4, "timeout_s": 5,
                         "retry_base_s": 1},
                "senders": SENDERS}
        if policy:
            over["contact_policy"] = policy
        self.config(sequences=[SEQUENCE, INTRO2],
                    templates={"intro.txt": "Hello {{first_name|there}}\n{{unsubscribe_url}}\n",
                               "follow-up.txt": "Again {{first_name|there}}\n"}, **over)
        harness.write(self.path("sequences", "company.ics"), ics(WED, "Company day"))
        harness.write(self.path("sequences", "de.ics"), ics(THU, "Feiertag"))
        self.fwb("check-config", check=0)
        self.fwb("migrate", check=0)
        rows = ["email,first_name,timezone,tags,consent,country"]
        # 300 people: 60 in Berlin (their window opens at 08:00 UTC), 20 of
        # those German (Thursday is theirs off), the rest in UTC or with no zone.
        for i in range(300):
            zone = "Europe/Berlin" if i < 60 else ("UTC" if i % 2 else "")
            rows.append("p%03d@example.org,P%d,%s,%s,opt_in,%s"
                        % (i, i, zone, "backend;intro2" if 200 <= i < 230 else "backend",
                           "DE" if i < 20 else "GB"))
        rows.append("nocons@example.org,N,UTC,backend,,GB")
        rows.append("gone@example.org,G,UTC,backend,opt_in,GB")
        self.fwb("import", harness.write(self.path("pool.csv"), "\n".join(rows) + "\n"), check=0)
        self.fwb("suppress", "gone@example.org", check=0)
        return smtp

    def sent_by_day(self):
        rows = self.sql("SELECT to_char(m.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), m.sender,"
                        " m.step, count(*) FROM messages m WHERE m.sequence_id = 'nurture'"
                        " AND m.state = 'sent' GROUP BY 1, 2, 3")
        return {(d, s, int(k)): int(n) for d, s, k, n in rows}

    def settle(self, limits):
        """Waits until nothing due is left but what the day's limit holds
        (limits: the plan's, by date), nothing is claimed or on the wire,
        and the sent count has stood still for half a second."""
        last = [None, time.monotonic()]

        def still():
            n, due, used, today = self.sql(
                "SELECT (SELECT count(*) FILTER (WHERE state = 'sent') || '/' ||"
                "  count(*) FILTER (WHERE state IN ('claimed', 'sending', 'queued', 'retry'))"
                "  FROM messages),"
                " (SELECT count(*) FROM enrollments WHERE state = 'active'"
                "  AND next_due_at <= now()),"
                " coalesce((SELECT sent FROM sender_usage WHERE sender = 'ana'"
                "  AND day = (now() AT TIME ZONE 'UTC')::date), 0),"
                " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")[0]
            if n != last[0]:
                last[0], last[1] = n, time.monotonic()
                return False
            held = due == "0" or int(used) >= limits[today]
            return held and n.endswith("/0") and time.monotonic() - last[1] >= 0.5
        wait_until(still, 30, "the daemon to send what is due", interval=0.1)

    def checkpoints(self):
        for d in range(DAYS):
            date = T0.date() + datetime.timedelta(days=d)
            base = datetime.datetime.combine(date, datetime.time(0, 0, 30), UTC)
            times = [] if d == 0 else [base]
            if date.weekday() < 5:
                times += [base.replace(hour=8), base.replace(hour=9)]
            yield from times

    def test_forecast_equals_what_the_daemon_sends(self):
        smtp = self.setup_pool(policy={"cooldown_days": 2})
        self.fwb("enroll", "intro2", check=0)
        p = self.fwb("plan", "nurture", "--days", str(DAYS), "--json", check=0)
        plan = json.loads(p.stdout)
        text = self.fwb("plan", "nurture", "--days", str(DAYS), check=0).stdout
        self.assertEqual(plan["audience"]["would_enroll"], 300)
        self.assertEqual(plan["audience"]["skipped"]["no_consent"]["emails"],
                         ["nocons@example.org"])
        self.assertEqual(plan["audience"]["skipped"]["suppressed"]["count"], 1)
        want = {}
        for r in plan["plan"]:
            for k, n in enumerate(r["steps"]):
                if n:
                    want[(r["date"], r["sender"], k + 1)] = n
        # The table says the same as the JSON.
        for r in plan["plan"]:
            line = "%s  %-12s %7s" % (r["date"], r["sender"], r["limit"] or "-")
            self.assertIn(line + "".join("  %7d" % n for n in r["steps"]), text)
        if os.environ.get("WB_PLAN_SHOW"):
            print(text)
        self.fwb("enroll", "nurture", check=0)
        d = Daemon(self.cfg_path, self.path("warmbenchd.log"), env=self.clock.env()).start()
        try:
            for when in self.checkpoints():
                self.at(when)
                self.sql("NOTIFY wb_enrollments")
                self.settle({r["date"]: r["limit"] for r in plan["plan"]})
        finally:
            self.assertEqual(d.stop(), 0)
        self.assertIsNone(d.sanitizer_report())
        got = self.sent_by_day()
        if os.environ.get("WB_PLAN_SHOW"):
            print(sorted(got.items()))
        self.assertEqual(got, want, "plan:\n%s" % text)
        # What made it a test: warm-up then the daily limit bound (60, 90,
        # then 100 a day), what each day's limit left waited for the
        # window's next opening (none on Wednesday, the company holiday, nor
        # at the weekend), the holiday and the German one moved step 2
        # (business days), and both steps went out on at least three days.
        totals = {}
        for (date, _, _), n in got.items():
            totals[date] = totals.get(date, 0) + n
        self.assertEqual([totals.get(day(i), 0) for i in range(DAYS)],
                         [60, 90, 0, 100, 100, 0, 0], text)
        self.assertGreaterEqual(len({k[0] for k in got}), 3)
        self.assertGreaterEqual(len({k[0] for k in got if k[2] == 2}), 2)
        self.assertEqual(smtp.count(), sum(got.values()) + 30)
        # Who is still due after the week is who plan said.
        left = self.sql("SELECT step, count(*) FROM enrollments WHERE sequence_id = 'nurture'"
                        " AND state = 'active' GROUP BY step")
        self.assertEqual({int(k): int(n) for k, n in left},
                         {k: n for k, n in enumerate(plan["still_due_after"]) if n}, text)
        self.assertEqual(sum(v for k, v in got.items() if k[2] == 1)
                         + plan["still_due_after"][0], 300)
        self.assertGreater(plan["still_due_after"][0], 0)
        # Every mail went out inside the window in the candidate's own zone
        # (UTC when they have none): a weekday, 09:00-17:00, not the company
        # holiday nor, for a German, Thursday.
        outside = self.sql(
            "SELECT c.email, l.at FROM messages m JOIN candidates c ON c.id = m.candidate_id"
            " CROSS JOIN LATERAL (SELECT m.sent_at AT TIME ZONE"
            "  coalesce(nullif(c.timezone, ''), 'UTC') AS at) l"
            " WHERE m.sequence_id = 'nurture' AND m.state = 'sent'"
            "  AND (extract(isodow FROM l.at) > 5 OR l.at::time < '09:00'"
            "   OR l.at::time >= '17:00' OR l.at::date = '%s'"
            "   OR (l.at::date = '%s' AND c.attrs->>'country' = 'DE'))"
            % (WED.isoformat(), THU.isoformat()))
        self.assertEqual(outside, [], text)
        # The 30 intro2 people waited two days after Bo's mail (sent at the
        # start), and plan said so.
        waits = plan["waits"]
        self.assertEqual(sorted(w["email"] for w in waits),
                         ["p%03d@example.org" % i for i in range(200, 230)])
        self.assertTrue(all(w["step"] == 1 and w["until"].startswith(day(2) + "T06:00")
                            for w in waits), waits)
        self.assertIn("30 wait for the contact policy (cooldown_days 2, max_per_30_days 0):",
                      text)
        # Their wait ended on the holiday: they got it at Thursday's opening.
        first = self.sql("SELECT min(m.sent_at) FROM messages m WHERE m.sequence_id = 'nurture'"
                         " AND m.step = 1 AND m.candidate_id IN (SELECT candidate_id FROM"
                         " enrollments WHERE sequence_id = 'intro2')")[0][0]
        self.assertGreaterEqual(first, day(3) + " 09:00", first)

    def footprint(self):
        """What a write would move: every user table's rows, the tables'
        insert/update/delete counters, and the next transaction id."""
        counts = self.sql(
            "SELECT string_agg(relname || '=' || (xpath('/row/c/text()', query_to_xml(format("
            "'SELECT count(*) AS c FROM %I.%I', schemaname, relname), false, true, '')))[1]::text,"
            " ',' ORDER BY relname) FROM pg_stat_user_tables")[0][0]
        tup = self.scalar("SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables")
        xid = self.scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())")
        return counts, tup, xid

    def test_writes_nothing_and_says_why(self):
        self.setup_pool(policy={"max_per_30_days": 2})
        self.fwb("enroll", "intro2", check=0)
        self.fwb("enroll", "nurture", "--email", "p001@example.org", "--email",
                 "p002@example.org", check=0)
        self.fwb("pause", "--email", "p001@example.org", "--sequence", "nurture", check=0)
        before = self.footprint()
        time.sleep(0.5)
        self.assertEqual(self.footprint(), before, "the measure itself moved")
        p = json.loads(self.fwb("plan", "nurture", "--json", check=0).stdout)
        text = self.fwb("plan", "nurture", "--days", "3", check=0).stdout
        time.sleep(0.5)
        self.assertEqual(self.footprint(), before)
        self.assertEqual(p["days"], 14)
        self.assertEqual(len(p["plan"]), 14)
        self.assertEqual(p["audience"]["would_enroll"], 298)
        self.assertEqual(p["audience"]["skipped"]["already"]["emails"],
                         ["p001@example.org", "p002@example.org"])
        self.assertEqual(p["enrolled"], {"active": 2, "paused": 1, "on_the_wire": 0})
        # 299 people, two steps; the 30 intro2 people got Bo's mail and
        # nurture's first: max_per_30_days 2 holds their second for 30 days.
        self.assertEqual(sum(sum(r["steps"]) for r in p["plan"]), 299 * 2 - 30)
        self.assertEqual(p["still_due_after"], [0, 30])
        self.assertEqual(len(p["waits"]), 30)
        self.assertTrue(all(w["step"] == 2 for w in p["waits"]), p["waits"])
        self.assertEqual(p["contact_policy"], {"cooldown_days": 0, "max_per_30_days": 2})
        self.assertIn("skipped 1 suppressed, 0 unsubscribed, 1 without consent, 2 already "
                      "enrolled, 0 in another sequence", text)
        self.assertIn("enrolled already: 2 active (1 paused", text)
        # The measure sees a write: enroll moves it.
        self.fwb("enroll", "nurture", check=0)
        self.assertNotEqual(self.footprint(), before)
        # Paused: the sequence, then the sender.
        self.fwb("pause", "nurture", check=0)
        p = json.loads(self.fwb("plan", "nurture", "--json", "--days", "5", check=0).stdout)
        self.assertTrue(p["paused"]["sequence"])
        self.assertEqual(sum(r["total"] for r in p["plan"]), 0)
        self.assertIn("the sequence is paused", self.fwb("plan", "nurture", check=0).stdout)
        self.fwb("resume", "nurture", check=0)
        self.fwb("pause", "--sender", "ana", "--reason", "checking", check=0)
        p = json.loads(self.fwb("plan", "nurture", "--json", check=0).stdout)
        self.assertEqual(p["paused"]["senders"], {"ana": "checking"})
        self.assertEqual(sum(r["total"] for r in p["plan"]), 0)
        self.assertIn("sender ana is paused (checking)", self.fwb("plan", "nurture").stdout)

    def test_bad_input(self):
        self.setup_pool()
        for args in (["nope"], ["nurture", "--days", "0"], ["nurture", "--days", "3x"],
                     ["nurture", "--days", "367"], [], ["nurture", "intro2"]):
            p = self.fwb("plan", *args, check=64)
            self.assertEqual(p.stdout, "")
            self.assertTrue(p.stderr.startswith("warmbench: "), p.stderr)
        self.assertIn('no sequence "nope"', self.fwb("plan", "nope").stderr)
        cfg = json.load(open(self.cfg_path))
        cfg["database"] = "postgresql://postgres@127.0.0.1:%d/none" % harness.free_port()
        harness.write(self.cfg_path, json.dumps(cfg))
        self.fwb("plan", "nurture", check=69)
