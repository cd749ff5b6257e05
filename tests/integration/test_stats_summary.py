"""The scale work of issue 12, second round (migration 014):
* stats_people / stats_steps, kept by triggers on events
  (sql/functions/092_stats.sql), always equal what the events say, after
  inserts, updates, erasure, concurrent writers and an upgrade; and
  `stats` prints the same counts the distinct counts over events give;
* the statement-level reference checks that replaced the foreign keys of
  enrollments, events and messages (sql/functions/035_refs.sql) keep the
  foreign keys' rules: missing references refused (23503), CASCADE and SET
  NULL on delete, and a delete waits for a writer that names the row."""
import json
import subprocess
import threading
import time

from harness import PGBIN, WbTestCase  # noqa: F401

SEED = r"""
INSERT INTO candidates (email, tags, consent)
SELECT 'p' || i || '@example.com', '{backend}', 'opt_in' FROM generate_series(1, 40) i;
INSERT INTO enrollments (candidate_id, sequence_id, step)
SELECT id, 'nurture', 2 FROM candidates;
INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender, state, message_id)
SELECT e.id, e.candidate_id, e.sequence_id, s, 'ana',
       CASE WHEN e.candidate_id % 7 = 0 AND s = 1 THEN 'failed'
            WHEN e.candidate_id % 11 = 0 THEN 'unknown'
            WHEN e.candidate_id % 13 = 0 AND s = 2 THEN 'queued' ELSE 'sent' END,
       'm' || e.id || '.' || s || '@example.com'
FROM enrollments e CROSS JOIN generate_series(1, 2) s;
"""

# Events of every counted kind and some not counted, on both steps, human
# and machine, with and without a link, and some without a step or a
# candidate; several rows per person so that distinct counts matter.
EVENTS = r"""
INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type, machine, detail)
SELECT m.candidate_id, m.id, m.enrollment_id, m.sequence_id, m.step, t.type, t.machine, t.detail
FROM messages m
CROSS JOIN LATERAL (VALUES
    ('open', false, '{}'::jsonb, 0), ('open', false, '{}', 1), ('open', true, '{}', 2),
    ('click', false, '{"link": "apply"}', 3), ('click', false, '{"link": "blog"}', 4),
    ('click', false, '{}', 5), ('click', true, '{"link": "apply"}', 6),
    ('reply', false, '{"intent": "neutral"}', 7), ('auto_reply', false, '{}', 8),
    ('bounce', false, '{"kind": "soft"}', 9), ('unsubscribe', false, '{}', 10),
    ('handoff', false, '{}', 11), ('sent', false, '{}', 12),
    ('complaint', false, '{}', 13)) t(type, machine, detail, k)
WHERE (m.candidate_id + m.step + t.k) % 3 = 0 AND m.candidate_id % %MOD% = 0;
"""

EXPECTED_PEOPLE = r"""
SELECT DISTINCT v.sequence_id, s.step, k.kind, v.candidate_id
FROM events v
CROSS JOIN LATERAL unnest(CASE v.type
    WHEN 'open' THEN CASE WHEN v.machine THEN '{opened_machine}'::text[] ELSE '{opened}' END
    WHEN 'click' THEN CASE WHEN v.machine THEN '{clicked_machine}'::text[]
                           WHEN v.detail->>'link' IS NOT NULL
                           THEN ARRAY['clicked', 'link:' || (v.detail->>'link')]
                           ELSE '{clicked}' END
    WHEN 'reply' THEN '{replied}' WHEN 'auto_reply' THEN '{auto_replied}'
    WHEN 'bounce' THEN '{bounced}' WHEN 'unsubscribe' THEN '{unsubscribed}'
    WHEN 'complaint' THEN '{complained}'
    WHEN 'handoff' THEN '{handed_off}' ELSE '{}' END) k(kind)
CROSS JOIN LATERAL (VALUES (0), (v.step)) s(step)
WHERE v.sequence_id IS NOT NULL AND v.step IS NOT NULL AND v.candidate_id IS NOT NULL
"""

# The counts as stats computed them before 014, straight from events and
# messages (count(DISTINCT candidate_id) with GROUPING SETS).
OLD_COUNTS = r"""
SELECT coalesce(step::text, 'total'), kind, n FROM (
  SELECT step, grouping(step) AS g,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'open' AND NOT machine) AS opened,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'open' AND machine) AS opened_machine,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'click' AND NOT machine) AS clicked,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'click' AND machine) AS clicked_machine,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'reply') AS replied,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'auto_reply') AS auto_replied,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'bounce') AS bounced,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'unsubscribe') AS unsubscribed,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'complaint') AS complained,
    count(DISTINCT candidate_id) FILTER (WHERE type = 'handoff') AS handed_off
  FROM events WHERE sequence_id = 'nurture' AND step IS NOT NULL
  GROUP BY GROUPING SETS ((step), ())) e
CROSS JOIN LATERAL (VALUES ('opened', opened), ('opened_machine', opened_machine),
  ('clicked', clicked), ('clicked_machine', clicked_machine), ('replied', replied),
  ('auto_replied', auto_replied), ('bounced', bounced), ('unsubscribed', unsubscribed),
  ('complained', complained), ('handed_off', handed_off)) x(kind, n)
UNION ALL
SELECT coalesce(step::text, 'total'), kind, n FROM (
  SELECT step,
    count(DISTINCT candidate_id) FILTER (WHERE state = 'sent') AS sent,
    count(DISTINCT candidate_id) FILTER (WHERE state = 'failed') AS failed,
    count(DISTINCT candidate_id) FILTER (WHERE state = 'unknown') AS unknown,
    count(*) FILTER (WHERE state IN ('queued','claimed','sending','retry')) AS pending
  FROM messages WHERE sequence_id = 'nurture'
  GROUP BY GROUPING SETS ((step), ())) m
CROSS JOIN LATERAL (VALUES ('sent', sent), ('failed', failed), ('unknown', unknown),
  ('pending', pending)) x(kind, n)
UNION ALL
SELECT coalesce(step::text, 'total'), 'link:' || link, count(DISTINCT candidate_id)
FROM (SELECT step, detail->>'link' AS link, candidate_id FROM events
      WHERE sequence_id = 'nurture' AND type = 'click' AND NOT machine AND step IS NOT NULL
        AND detail ? 'link') c
GROUP BY GROUPING SETS ((step, link), (link))
"""

KINDS = ["sent", "failed", "unknown", "pending", "opened", "opened_machine", "clicked",
         "clicked_machine", "replied", "auto_replied", "bounced", "unsubscribed", "complained",
         "handed_off"]


class SummaryTest(WbTestCase):
    def setUp(self):
        super().setUp()
        self.config()
        self.wb("migrate", check=0)
        self.wb("stats", check=0)  # stores the sequence
        self.sql(SEED)

    def assert_summary_exact(self):
        missing = self.sql(f"SELECT count(*) FROM (({EXPECTED_PEOPLE}) EXCEPT "
                           "SELECT sequence_id, step, kind, candidate_id FROM stats_people) x")
        extra = self.sql(f"SELECT count(*) FROM (SELECT sequence_id, step, kind, candidate_id "
                         f"FROM stats_people EXCEPT ({EXPECTED_PEOPLE})) x")
        self.assertEqual((missing[0][0], extra[0][0]), ("0", "0"))
        steps = self.sql("SELECT count(*) FROM ((SELECT DISTINCT sequence_id, step FROM events "
                         "WHERE sequence_id IS NOT NULL AND step IS NOT NULL) "
                         "EXCEPT SELECT sequence_id, step FROM stats_steps) x")
        self.assertEqual(steps[0][0], "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM stats_steps"),
                         self.scalar("SELECT count(DISTINCT (sequence_id, step)) FROM events "
                                     "WHERE sequence_id IS NOT NULL AND step IS NOT NULL"))

    def assert_stats_as_before(self):
        doc = json.loads(self.wb("stats", "--json", check=0).stdout)
        (seq,) = doc["sequences"]
        got = {}
        for st in seq["steps"]:
            for k in KINDS:
                got[(str(st["step"]), k)] = st[k]
            for name, n in st["links"].items():
                got[(str(st["step"]), "link:" + name)] = n
        for k in KINDS:
            got[("total", k)] = seq[k]
        for name, n in seq["links"].items():
            got[("total", "link:" + name)] = n
        want = {(r[0], r[1]): int(r[2]) for r in self.sql(OLD_COUNTS)}
        for key, n in want.items():
            self.assertEqual(got.get(key, 0), n, key)
        for key, n in got.items():
            self.assertEqual(want.get(key, 0), n, key)
        self.assertGreater(sum(want.values()), 0)

    def test_inserts_updates_and_erasure(self):
        self.sql(EVENTS.replace("%MOD%", "1"))
        # Events without a step or a candidate, or both: counted nowhere.
        self.sql("INSERT INTO events (candidate_id, sequence_id, step, type) VALUES "
                 "(1, 'nurture', NULL, 'open'), (NULL, 'nurture', 1, 'open'), "
                 "(2, NULL, 1, 'click')")
        self.assert_summary_exact()
        self.assert_stats_as_before()
        # An update that moves events to another step and type, and one that
        # only clears a reference (warmbench's own kind).
        self.sql("UPDATE events SET step = 2, type = 'reply' WHERE id % 5 = 0 AND step = 1")
        self.sql("UPDATE events SET message_id = NULL WHERE id % 4 = 0")
        self.assert_summary_exact()
        self.assert_stats_as_before()
        # Erasure deletes a person's events: they leave every count.
        self.sql("SELECT * FROM wb_forget('p3@example.com')")
        self.sql("SELECT * FROM wb_forget('p6@example.com')")
        self.assertEqual(self.scalar("SELECT count(*) FROM stats_people WHERE candidate_id IN "
                                     "(3, 6)"), "0")
        self.assert_summary_exact()
        self.assert_stats_as_before()
        self.sql("TRUNCATE events, handoffs")
        self.assertEqual(self.scalar("SELECT count(*) FROM stats_people"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM stats_steps"), "0")

    def test_concurrent_writers(self):
        """Four writers add overlapping events of the same people at once,
        in many small transactions, as the daemon's writers do."""
        errors = []
        # The score trigger updates the writers' candidates in no set
        # order, so writers sharing people can deadlock there (a separate
        # matter, README "Scale"); this test is about the summary.
        self.sql("ALTER TABLE events DISABLE TRIGGER events_score")

        def writer(w):
            script = "".join(
                "BEGIN;\n" + EVENTS.replace("%MOD%", str(m)).replace(
                    "WHERE (m.candidate_id", f"WHERE ({w} + m.candidate_id") + "COMMIT;\n"
                for m in (1, 2, 3, 5, 1, 2))
            p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                "-d", self.pg.url(self.dbname)], input=script,
                               capture_output=True, text=True)
            if p.returncode:
                errors.append(p.stderr)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assert_summary_exact()
        self.assert_stats_as_before()

    def test_upgrade_fills_the_summary(self):
        """A database from before 014 has events and no summary: the
        migration makes it from them."""
        self.sql("SET session_replication_role = replica; " + EVENTS.replace("%MOD%", "1"))
        self.assertEqual(self.scalar("SELECT count(*) FROM stats_people"), "0")
        self.sql("DROP TABLE stats_people, stats_steps; "
                 "DELETE FROM schema_migrations WHERE version = 14")
        out = self.wb("migrate", check=0).stdout
        self.assertIn("applied 014_scale.sql", out)
        self.assertGreater(int(self.scalar("SELECT count(*) FROM stats_people")), 100)
        self.assert_summary_exact()
        self.assert_stats_as_before()

    def test_rebuild(self):
        self.sql("SET session_replication_role = replica; " + EVENTS.replace("%MOD%", "1"))
        self.sql("SELECT wb_stats_rebuild()")
        self.assert_summary_exact()
        self.assert_stats_as_before()


class RefsTest(WbTestCase):
    """Foreign-key rules kept by statement-level triggers."""

    def setUp(self):
        super().setUp()
        self.config()
        self.wb("migrate", check=0)
        self.wb("stats", check=0)
        self.sql(SEED)

    def psql_err(self, sql):
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
                            "-d", self.pg.url(self.dbname), "-c", sql],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0, sql)
        return p.stderr

    def test_missing_references_are_refused(self):
        cases = [
            ("INSERT INTO events (candidate_id, type) VALUES (99999, 'open')",
             'violates foreign key constraint "events_candidate_id_fkey"', "(candidate_id)=(99999)"),
            ("INSERT INTO events (candidate_id, enrollment_id, type) VALUES (1, 99999, 'open')",
             '"events_enrollment_id_fkey"', "(enrollment_id)=(99999)"),
            ("INSERT INTO events (candidate_id, message_id, type) VALUES (1, 99999, 'open')",
             '"events_message_id_fkey"', "(message_id)=(99999)"),
            # An enrollment that exists but belongs to someone else does not
            # vouch for a missing candidate.
            ("INSERT INTO events (candidate_id, enrollment_id, type) VALUES (99999, 1, 'open')",
             '"events_candidate_id_fkey"', "(candidate_id)=(99999)"),
            ("INSERT INTO enrollments (candidate_id, sequence_id) VALUES (99999, 'nurture')",
             '"enrollments_candidate_id_fkey"', "(candidate_id)=(99999)"),
            ("INSERT INTO enrollments (candidate_id, sequence_id) VALUES (1, 'nope')",
             '"enrollments_sequence_id_fkey"', "(sequence_id)=(nope)"),
            ("UPDATE events SET candidate_id = 99999 WHERE id = (SELECT min(id) FROM events)",
             '"events_candidate_id_fkey"', "(candidate_id)=(99999)"),
            ("UPDATE enrollments SET sequence_id = 'nope' WHERE id = 1",
             '"enrollments_sequence_id_fkey"', "(sequence_id)=(nope)"),
            ("DELETE FROM sequences WHERE id = 'nurture'",
             "is still referenced", "(id)=(nurture)"),
            ("UPDATE candidates SET id = 99999 WHERE id = 1", "cannot change", ""),
            ("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender) "
             "VALUES (99999, 1, 'nurture', 5, 'ana')",
             '"messages_enrollment_id_fkey"', "(enrollment_id)=(99999)"),
            # A message of someone else's enrollment: its own candidate is checked.
            ("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender) "
             "VALUES (1, 99999, 'nurture', 5, 'ana')",
             '"messages_candidate_id_fkey"', "(candidate_id)=(99999)"),
            ("UPDATE messages SET enrollment_id = 99999 WHERE id = (SELECT min(id) FROM messages)",
             '"messages_enrollment_id_fkey"', "(enrollment_id)=(99999)"),
            ("UPDATE messages SET candidate_id = 99999 WHERE id = (SELECT min(id) FROM messages)",
             '"messages_candidate_id_fkey"', "(candidate_id)=(99999)"),
        ]
        self.sql(EVENTS.replace("%MOD%", "1"))
        for sql, msg, detail in cases:
            with self.subTest(sql=sql):
                err = self.psql_err(sql)
                self.assertIn("23503", err)
                self.assertIn(msg, err)
                self.assertIn(detail, err)
        # Updates that point at rows that exist go through.
        self.sql("UPDATE events SET candidate_id = 2, enrollment_id = 2, message_id = "
                 "(SELECT min(id) FROM messages WHERE candidate_id = 2) "
                 "WHERE id = (SELECT min(id) FROM events)")
        self.sql("UPDATE enrollments SET candidate_id = candidate_id WHERE id = 1")
        # A batch of good rows with one bad one stores nothing.
        n = self.scalar("SELECT count(*) FROM events")
        self.psql_err("INSERT INTO events (candidate_id, type) VALUES (1, 'open'), (2, 'open'), "
                      "(99999, 'open')")
        self.assertEqual(self.scalar("SELECT count(*) FROM events"), n)
        n = self.scalar("SELECT count(*) FROM messages")
        for bad in ("(99999, 3)", "(3, 99999)"):
            err = self.psql_err("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, "
                                "step, sender) VALUES (1, 1, 'nurture', 5, 'ana'), "
                                f"(2, 2, 'nurture', 5, 'ana'), {bad[:-1]}, 'nurture', 5, 'ana')")
            self.assertIn("23503", err)
            self.assertEqual(self.scalar("SELECT count(*) FROM messages"), n)
        # A message naming another person's enrollment and an existing
        # candidate is stored (warmbench makes none, a foreign key allows it).
        self.sql("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender) "
                 "VALUES (1, 2, 'nurture', 5, 'ana')")

    def test_delete_cascades_and_clears(self):
        self.sql(EVENTS.replace("%MOD%", "1"))
        # Candidate 3: mail seen about their messages, an event without a
        # candidate naming one of them, and a message under candidate 4's
        # enrollment; all go (or lose the reference) with candidate 3.
        self.sql("INSERT INTO mail_seen (mail_id, message_id) "
                 "SELECT 'r' || id, id FROM messages WHERE candidate_id IN (3, 4); "
                 "INSERT INTO events (message_id, type) "
                 "SELECT min(id), 'bounce' FROM messages WHERE candidate_id = 3; "
                 "INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender) "
                 "VALUES (4, 3, 'nurture', 7, 'ana')")
        self.sql("DELETE FROM candidates WHERE id = 3")
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments WHERE candidate_id = 3"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE candidate_id = 3"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE candidate_id = 3 "
                                     "OR enrollment_id = 3"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM mail_seen s WHERE NOT EXISTS "
                                     "(SELECT 1 FROM messages m WHERE m.id = s.message_id)"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE type = 'bounce' "
                                     "AND candidate_id IS NULL AND message_id IS NULL"), "1")
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE candidate_id = 4"), "2")
        self.assertEqual(self.scalar("SELECT count(*) FROM mail_seen"), "2")
        mid = self.scalar("SELECT min(message_id) FROM events WHERE candidate_id = 4")
        eid = self.scalar("SELECT enrollment_id FROM messages WHERE id = %s" % mid)
        n = self.scalar("SELECT count(*) FROM events WHERE message_id = %s" % mid)
        self.assertGreater(int(n), 0)
        self.sql("DELETE FROM messages WHERE id = %s" % mid)
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE message_id IS NULL "
                                     "AND candidate_id = 4 AND step IS NOT NULL"), n)
        self.sql("DELETE FROM enrollments WHERE id = %s" % eid)
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE enrollment_id = %s" % eid),
                         "0")
        # The enrollment's messages went with it, and what named them.
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE enrollment_id = %s"
                                     % eid), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM mail_seen"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE candidate_id = 4 "
                                     "AND step IS NOT NULL AND message_id IS NOT NULL"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE candidate_id = 5"), "2")
        self.assertGreater(int(self.scalar("SELECT count(*) FROM events WHERE candidate_id = 4")), 0)
        self.sql("DELETE FROM enrollments WHERE sequence_id = 'nurture'; "
                 "DELETE FROM sequences WHERE id = 'nurture'")

    def test_delete_waits_for_a_writer_naming_the_row(self):
        """A transaction storing an event of candidate 5 holds the candidate
        (KEY SHARE): erasing them waits, then takes that event too."""
        url = self.pg.url(self.dbname)
        writer = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
             "BEGIN; INSERT INTO events (candidate_id, type) VALUES (5, 'open'); "
             "SELECT pg_sleep(2); COMMIT;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        time.sleep(0.7)
        t0 = time.monotonic()
        self.sql("DELETE FROM candidates WHERE id = 5")
        waited = time.monotonic() - t0
        self.assertEqual(writer.wait(timeout=30), 0, writer.stderr.read())
        self.assertGreater(waited, 0.5)
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE candidate_id = 5"), "0")
        # And the other way round: once the candidate is gone, the writer fails.
        err = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                              "INSERT INTO events (candidate_id, type) VALUES (5, 'open')"],
                             capture_output=True, text=True)
        self.assertNotEqual(err.returncode, 0)
        self.assertIn("events_candidate_id_fkey", err.stderr)


    def test_message_writer_holds_its_enrollment(self):
        """A transaction storing a message of enrollment 5 holds the
        enrollment (KEY SHARE): deleting it waits, then takes the message
        too; once it is gone, a message naming it is refused."""
        url = self.pg.url(self.dbname)
        writer = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
             "BEGIN; INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender) "
             "VALUES (5, 5, 'nurture', 3, 'ana'); SELECT pg_sleep(2); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.7)
        t0 = time.monotonic()
        self.sql("DELETE FROM enrollments WHERE id = 5")
        waited = time.monotonic() - t0
        self.assertEqual(writer.wait(timeout=30), 0, writer.stderr.read())
        self.assertGreater(waited, 0.5)
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE enrollment_id = 5"), "0")
        err = self.psql_err("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, "
                            "step, sender) VALUES (5, 5, 'nurture', 3, 'ana')")
        self.assertIn("messages_enrollment_id_fkey", err)

    def test_own_enrollment_is_not_locked_again(self):
        """A message of an enrollment this transaction made (or updated, as
        the claim does) takes no lock: its xmax stays 0. One of an
        enrollment it has not touched locks it: xmax is set."""
        got = self.sql(
            "BEGIN; "
            "INSERT INTO candidates (email) VALUES ('new@example.com'); "
            "INSERT INTO enrollments (candidate_id, sequence_id) "
            "SELECT id, 'nurture' FROM candidates WHERE email = 'new@example.com'; "
            "INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender) "
            "SELECT e.id, e.candidate_id, 'nurture', 3, 'ana' FROM enrollments e "
            "JOIN candidates c ON c.id = e.candidate_id "
            "WHERE c.email IN ('new@example.com', 'p8@example.com'); "
            "SELECT c.email, e.xmax::text <> '0' FROM enrollments e "
            "JOIN candidates c ON c.id = e.candidate_id "
            "WHERE c.email IN ('new@example.com', 'p8@example.com') ORDER BY c.email; "
            "COMMIT;")
        self.assertEqual(got, [["new@example.com", "f"], ["p8@example.com", "t"]])


class ImportHashTest(WbTestCase):
    """import checks each address's salted hash against the suppression
    list itself (lib/pool/import.c) and leaves non-ASCII addresses to SQL:
    the verdicts are the database's own."""

    def test_suppressed_by_hash_only(self):
        self.config()
        self.wb("migrate", check=0)
        for addr in ("MiXed@Example.com", "Ñandú@example.com", "plain@example.com"):
            self.sql(f"SELECT * FROM wb_forget('{addr}')")
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions WHERE email IS NULL"), "3")
        csv = ("email,first_name\n"
               "  mixed@example.COM ,A\n"      # spaces and case: same hash
               "Ñandú@example.com,B\n"         # non-ASCII: SQL computes it
               "plain@example.com,C\n"
               "plain2@example.com,D\n"
               "\tmixed@example.com,E\n")      # a tab is not trimmed: not an address
        path = self.tmp + "/hash.csv"
        with open(path, "w") as f:
            f.write(csv)
        out = self.wb("import", path, check=0)
        self.assertIn("imported 1, updated 0, rejected 4", out.stdout)
        report = out.stdout + out.stderr
        self.assertEqual(report.count(": suppressed"), 3, report)
        self.assertIn(":6: invalid email address", report)
        self.assertEqual(self.sql("SELECT email FROM candidates"), [["plain2@example.com"]])
        want = self.sql("SELECT wb_email_hash('Ñandú@example.com') = "
                        "wb_email_hash(' Ñandú@example.com ')")
        self.assertEqual(want, [["t"]])
