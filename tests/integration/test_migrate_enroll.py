"""migrate, enroll, suppress, show and stats against a real PostgreSQL."""
import json
import os
import shutil
import subprocess
import threading

import harness
from daemon_util import Daemon
from harness import WbTestCase

SQL = os.path.join(harness.ROOT, "sql")
MIGRATIONS = sorted(f for f in os.listdir(SQL) if f.endswith(".sql"))
FUNCTIONS = sorted(f for f in os.listdir(os.path.join(SQL, "functions")) if f.endswith(".sql"))
# Migrations 001-008 as they were before the functions left them: what a
# database made by warmbench 0.1 up to 008 holds, old function bodies included.
SQL_008 = os.path.join(harness.ROOT, "tests", "integration", "fixtures", "sql-008")

# Everything the schema defines, one line each (function bodies as md5):
# two databases with equal lines have equal schemas.
SCHEMA = """
SELECT x FROM (
  SELECT 'fn ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
         || md5(pg_get_functiondef(p.oid)) AS x
  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'tg ' || pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL SELECT 'vw ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class c
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'
  UNION ALL SELECT 'col ' || table_name || '.' || column_name || ' ' || data_type || ' '
         || is_nullable || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT 'ix ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'rel ' || relname || ' ' || coalesce(array_to_string(reloptions, ','), '')
  FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
) s ORDER BY 1
"""


def sql_dir(dest, migrations_from, upto=None, functions=True):
    """A WARMBENCH_SQL_DIR at dest: the migrations of migrations_from (those
    numbered below upto when given), and sql/functions/ or an empty one."""
    os.makedirs(dest)
    for f in sorted(os.listdir(migrations_from)):
        if f.endswith(".sql") and (upto is None or f < upto):
            shutil.copy(os.path.join(migrations_from, f), dest)
    if functions:
        shutil.copytree(os.path.join(SQL, "functions"), os.path.join(dest, "functions"))
    else:
        os.makedirs(os.path.join(dest, "functions"))
    return dest

POOL = """email,first_name,last_name,timezone,tags,consent,source
ana.back@example.com,Ana,Back,Europe/Madrid,backend;silver-medallist,opt_in,ats
bo.back@example.com,Bo,Back,America/New_York,backend,legitimate_interest,linkedin
cy.noconsent@example.com,Cy,None,Europe/Berlin,backend,,linkedin
di.front@example.com,Di,Front,Asia/Tokyo,frontend,opt_in,referral
ed.supp@example.com,Ed,Supp,UTC,backend,opt_in,event
fa.unsub@example.com,Fa,Unsub,UTC,backend,opt_in,event
"""


class MigrateTest(WbTestCase):
    def test_migrate_twice_is_a_noop(self):
        self.config()
        first = self.wb("migrate", check=0)
        for name in MIGRATIONS:
            self.assertIn("applied " + name, first.stdout)
        self.assertIn("%d applied" % len(MIGRATIONS), first.stdout)
        self.assertIn("applied functions (%d files" % len(FUNCTIONS), first.stdout)
        second = self.wb("migrate", check=0)
        self.assertIn("0 applied", second.stdout)
        self.assertIn("functions current (%d files" % len(FUNCTIONS), second.stdout)
        self.assertEqual(self.scalar("SELECT count(*) FROM schema_functions"), "1")
        self.assertEqual(self.scalar("SELECT count(*) FROM schema_migrations"),
                         str(len(MIGRATIONS)))

    def test_concurrent_migrations_apply_once(self):
        self.config()
        results = []

        def run():
            results.append(self.wb("migrate"))
        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertTrue(all(r.returncode == 0 for r in results), [r.stderr for r in results])
        for name in MIGRATIONS:
            applied = sum(r.stdout.count("applied " + name) for r in results)
            self.assertEqual(applied, 1, name)
        self.assertEqual(self.scalar("SELECT count(*) FROM schema_migrations"),
                         str(len(MIGRATIONS)))

    def schema(self):
        return self.sql(SCHEMA)

    def test_fresh_database_equals_one_upgraded_from_008(self):
        # Functions moved out of the migrations: a database made today and
        # one made by the old migrations up to 008, then upgraded, must end
        # with the same functions, triggers, views, tables and indexes.
        self.config()
        self.wb("migrate", check=0)
        fresh = self.schema()
        self.assertTrue(any(r[0].startswith("fn wb_claim(") for r in fresh), fresh)
        self.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        old = sql_dir(os.path.join(self.tmp, "sql-008"), SQL_008, functions=False)
        self.wb("migrate", check=0, env={"WARMBENCH_SQL_DIR": old})
        self.assertEqual(self.scalar("SELECT count(*) FROM pg_proc WHERE proname = 'wb_ats_event'"),
                         "1")
        p = self.wb("migrate", check=0)
        self.assertIn("applied functions", p.stdout)
        self.assertEqual(self.schema(), fresh)

    def test_scores_of_events_stored_before_005(self):
        # 005 computes the scores of earlier events itself (its functions
        # do not exist yet when it runs): the same as wb_rescore's.
        self.config()
        at004 = sql_dir(os.path.join(self.tmp, "sql-004"), SQL, upto="005", functions=False)
        self.wb("migrate", check=0, env={"WARMBENCH_SQL_DIR": at004})
        self.sql("INSERT INTO candidates (email) SELECT 'c' || i || '@example.org'"
                 " FROM generate_series(1, 5) i")
        self.sql("""INSERT INTO events (candidate_id, type, detail, machine, at) VALUES
            (1, 'open', '{}', false, now() - interval '3 days'),
            (1, 'click', '{"link": "apply"}', false, now() - interval '1 day'),
            (2, 'reply', '{"intent": "interested"}', false, now() - interval '40 days'),
            (2, 'open', '{}', true, now()),
            (3, 'bounce', '{"kind": "soft"}', false, now()),
            (4, 'reply', '{"intent": "not_interested"}', false, now() - interval '10 days'),
            (4, 'open', '{}', false, now() - interval '5000 days')""")
        self.wb("migrate", check=0)
        self.assertEqual(self.sql("SELECT id, score <> 0 FROM candidates ORDER BY id"),
                         [["1", "t"], ["2", "t"], ["3", "f"], ["4", "t"], ["5", "f"]])
        self.assertEqual(self.sql("SELECT n_changed, max_change FROM wb_rescore()"), [["0", "0"]])

    def test_a_failing_functions_file_changes_nothing(self):
        self.config()
        mine = sql_dir(os.path.join(self.tmp, "sql"), SQL)
        env = {"WARMBENCH_SQL_DIR": mine}
        self.wb("migrate", check=0, env=env)
        hash_before = self.scalar("SELECT hash FROM schema_functions")
        with open(os.path.join(mine, "functions", FUNCTIONS[0]), "a") as f:
            f.write("\nCREATE OR REPLACE FUNCTION wb_duration(d text) RETURNS interval"
                    " LANGUAGE sql AS $$ SELECT interval '1 s' $$;\n")
        harness.write(os.path.join(mine, "functions", "zz_broken.sql"), "SELEC 1;\n")
        p = self.wb("migrate", env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("zz_broken.sql", p.stderr)
        self.assertEqual(self.scalar("SELECT hash FROM schema_functions"), hash_before)
        self.assertEqual(self.scalar("SELECT wb_duration('3d')"), "72:00:00")

    def test_daemon_refuses_functions_other_than_its_own(self):
        self.config()
        mine = sql_dir(os.path.join(self.tmp, "sql"), SQL)
        env = {"WARMBENCH_SQL_DIR": mine}
        self.wb("migrate", check=0, env=env)
        with open(os.path.join(mine, "functions", FUNCTIONS[-1]), "a") as f:
            f.write("-- changed\n")
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d1.log"), env=env)
        d.start(wait_ready=False)
        self.assertEqual(d.proc.wait(30), 78, d.text())
        d.log.close()
        self.assertIn("functions are not those of %s/functions" % mine, d.text())
        self.assertIn("run 'warmbench migrate'", d.text())
        p = self.wb("migrate", check=0, env=env)
        self.assertIn("0 applied", p.stdout)
        self.assertIn("applied functions", p.stdout)
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d2.log"), env=env)
        d.start()
        self.assertEqual(d.stop(), 0, d.text())
        # A folder without functions/ is refused by both programs.
        shutil.rmtree(os.path.join(mine, "functions"))
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d3.log"), env=env)
        d.start(wait_ready=False)
        self.assertEqual(d.proc.wait(30), 78, d.text())
        d.log.close()
        self.assertIn("cannot read", d.text())
        p = self.wb("migrate", env=env)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot read functions in %s/functions" % mine, p.stderr)

    def test_every_statement_prepares(self):
        self.config()
        self.wb("migrate", check=0)
        p = subprocess.run([os.path.join(harness.BUILD, "tests", "drv_sql_prepare"), self.db],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_unreachable_database_exits_69(self):
        self.config(database="postgresql://postgres@127.0.0.1:%d/x" % harness.free_port())
        p = self.wb("migrate", check=69)
        self.assertIn("cannot connect", p.stderr)

    def test_window_maths_in_candidate_zone(self):
        self.config()
        self.wb("migrate", check=0)
        # Friday 22:30 in Berlin is outside a Mon-Fri 09:00-17:30 window:
        # the next opening is Monday 09:00 Berlin = 08:00 UTC.
        self.assertEqual(self.scalar(
            "SELECT wb_next_in_window('2026-11-27 21:30+00', 'Europe/Berlin', 31,"
            " '09:00', '17:30') AT TIME ZONE 'UTC'"), "2026-11-30 08:00:00")
        # Inside the window: unchanged.
        self.assertEqual(self.scalar(
            "SELECT wb_next_in_window('2026-11-26 10:00+00', 'Europe/Berlin', 31,"
            " '09:00', '17:30') AT TIME ZONE 'UTC'"), "2026-11-26 10:00:00")
        # Before opening, same day, across a DST-free zone.
        self.assertEqual(self.scalar(
            "SELECT wb_next_in_window('2026-11-26 10:00+00', 'America/New_York', 31,"
            " '09:00', '17:30') AT TIME ZONE 'UTC'"), "2026-11-26 14:00:00")
        # DST: 2026-03-29 Europe/Berlin switches to +02; Sunday not allowed,
        # so Saturday 20:00 local goes to Monday 09:00 CEST = 07:00 UTC.
        self.assertEqual(self.scalar(
            "SELECT wb_next_in_window('2026-03-28 19:00+00', 'Europe/Berlin', 31,"
            " '09:00', '17:30') AT TIME ZONE 'UTC'"), "2026-03-30 07:00:00")


class EnrollTest(WbTestCase):
    def setUp(self):
        super().setUp()
        self.config()
        self.wb("migrate", check=0)
        harness.write(os.path.join(self.tmp, "pool.csv"), POOL)
        self.wb("import", os.path.join(self.tmp, "pool.csv"), check=0)
        self.wb("suppress", "ed.supp@example.com", check=0)
        self.sql("INSERT INTO suppressions (email, email_hash, reason)"
                 " VALUES ('fa.unsub@example.com', wb_email_hash('fa.unsub@example.com'),"
                 " 'unsubscribe')")

    def test_enroll_rules_and_counts(self):
        p = self.wb("enroll", "nurture", check=0)
        self.assertEqual(p.stdout.strip(),
                         "enrolled 2 into nurture; skipped 1 suppressed, 1 unsubscribed, "
                         "1 without consent, 0 already enrolled, 0 in another sequence")
        again = self.wb("enroll", "nurture", check=0)
        self.assertIn("enrolled 0 into nurture", again.stdout)
        self.assertIn("2 already enrolled", again.stdout)
        rows = self.sql("SELECT c.email, e.state, e.step, e.next_due_at <= now() + interval '1 minute'"
                        " FROM enrollments e JOIN candidates c ON c.id = e.candidate_id ORDER BY 1")
        self.assertEqual(rows, [["ana.back@example.com", "active", "0", "t"],
                                ["bo.back@example.com", "active", "0", "t"]])
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE type = 'enrolled'"), "2")

    def test_enroll_by_email_and_tag(self):
        p = self.wb("enroll", "nurture", "--email", "DI.FRONT@example.com", check=0)
        self.assertIn("enrolled 1 into nurture", p.stdout)
        p = self.wb("enroll", "nurture", "--tag", "silver-medallist", check=0)
        self.assertIn("enrolled 1 into nurture", p.stdout)
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments"), "2")

    def test_exclusive_sequences(self):
        second = dict(harness.DEFAULT_SEQUENCE, id="second")
        self.config(sequences=[harness.DEFAULT_SEQUENCE, second])
        self.wb("enroll", "nurture", check=0)
        p = self.wb("enroll", "second", check=0)
        self.assertIn("enrolled 0 into second", p.stdout)
        self.assertIn("2 in another sequence", p.stdout)
        third = dict(harness.DEFAULT_SEQUENCE, id="third",
                     audience={"tags_any": ["backend"], "exclusive": False})
        self.config(sequences=[harness.DEFAULT_SEQUENCE, second, third])
        p = self.wb("enroll", "third", check=0)
        self.assertIn("enrolled 2 into third", p.stdout)

    def test_window_delays_first_step(self):
        seq = dict(harness.DEFAULT_SEQUENCE,
                   window={"days": ["mon"], "start": "09:00", "end": "09:01",
                           "timezone": "candidate", "fallback_timezone": "UTC"})
        self.config(sequences=[seq])
        self.wb("enroll", "nurture", check=0)
        rows = self.sql("SELECT c.timezone, extract(isodow FROM e.next_due_at AT TIME ZONE c.timezone),"
                        " to_char(e.next_due_at AT TIME ZONE c.timezone, 'HH24:MI')"
                        " FROM enrollments e JOIN candidates c ON c.id = e.candidate_id ORDER BY 1")
        self.assertEqual(len(rows), 2)
        for tz, dow, hhmm in rows:
            self.assertEqual(dow, "1", tz)
            self.assertEqual(hhmm, "09:00", tz)

    def test_unknown_sequence_is_a_usage_error(self):
        p = self.wb("enroll", "nope", check=64)
        self.assertIn('unknown sequence "nope"', p.stderr)

    def test_suppress_stops_enrollments(self):
        self.wb("enroll", "nurture", check=0)
        p = self.wb("suppress", "Ana.Back@example.com", check=0)
        self.assertIn("stopped 1 enrollment", p.stdout)
        self.assertEqual(self.scalar(
            "SELECT state FROM enrollments e JOIN candidates c ON c.id = e.candidate_id"
            " WHERE c.email = 'ana.back@example.com'"), "stopped")
        p = self.wb("suppress", "ana.back@example.com", check=0)
        self.assertIn("already suppressed", p.stdout)

    def test_show_and_stats(self):
        self.wb("enroll", "nurture", check=0)
        p = self.wb("show", "ana.back@example.com", "--json", check=0)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["candidate"]["first_name"], "Ana")
        self.assertEqual(doc["enrollments"][0]["sequence"], "nurture")
        self.assertEqual([e["type"] for e in doc["timeline"]], ["enrolled"])
        text = self.wb("show", "ana.back@example.com", check=0).stdout
        self.assertIn("nurture: active", text)
        self.wb("show", "nobody@example.com", check=65)
        stats = json.loads(self.wb("stats", "--json", check=0).stdout)
        seq = stats["sequences"][0]
        self.assertEqual(seq["id"], "nurture")
        self.assertEqual(seq["enrolled"], 2)
        for key in ("sent", "failed", "unknown", "opened", "clicked", "replied", "auto_replied",
                    "bounced", "unsubscribed", "handed_off", "links", "steps"):
            self.assertIn(key, seq)
        self.assertEqual(seq["sent"], 0)
        self.wb("stats", "nurture", check=0)
        self.wb("stats", "nope", check=64)


class UsageTest(WbTestCase):
    def test_help_version_and_usage_errors(self):
        p = self.wb("--help", check=0)
        for cmd in ("migrate", "check-config", "import", "enroll", "stats", "show", "suppress"):
            self.assertIn(cmd, p.stdout)
        self.assertIn("warmbench", self.wb("--version", check=0).stdout)
        self.wb("frobnicate", check=64)
        self.wb(check=64)
        self.wb("--bogus", check=64)

    def test_bad_config_exits_78(self):
        self.config(smtp={"url": "smtp://x", "tls": "sometimes"})
        p = self.wb("migrate", check=78)
        self.assertIn("warmbench.json", p.stderr)


class PrivacyCliTest(WbTestCase):
    def test_export_then_forget_through_the_cli(self):
        self.config()
        self.wb("migrate", check=0)
        pool = harness.write(os.path.join(self.tmp, "pool.csv"), POOL)
        self.wb("import", pool, check=0)
        self.wb("enroll", "nurture", check=0)
        doc = json.loads(self.wb("export", "Ana.Back@example.com", "--json", check=0).stdout)
        self.assertEqual(doc["candidate"]["email"], "ana.back@example.com")
        self.assertEqual(len(doc["enrollments"]), 1)
        self.assertIn("nurture", json.dumps(doc["enrollments"]))
        self.wb("export", "nobody@example.com", check=65)
        self.wb("forget", "ana.back@example.com", check=0)
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"
                                     " WHERE lower(email) = 'ana.back@example.com'"), "0")
        again = self.wb("import", pool)
        self.assertIn("suppressed", again.stderr)
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"
                                     " WHERE lower(email) = 'ana.back@example.com'"), "0")
        self.assertIn("forget", self.wb("--help", check=0).stdout)
