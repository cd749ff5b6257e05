"""GDPR: forget (nothing personal left anywhere, hash kept so a re-import is
refused), export (everything held on a person), retention (only the idle
go, in batches, once a day per database), the Article 14 notice."""
import json
import os
import subprocess
import unittest

import harness
from daemon_util import Daemon, Smtpd, wait_until
from harness import BUILD, WbTestCase

DRV = os.path.join(BUILD, "tests", "drv_privacy")

ADDR = "Marta.Quintanilla@Example.com"
NAMES = ["marta.quintanilla@example.com", "Quintanilla", "Marta", "Ozolinsh"]

CSV = ("email,first_name,last_name,title,company,consent,tags,github\n"
       f"{ADDR},Marta,Ozolinsh,Staff engineer,Quintanilla GmbH,opt_in,backend,mqz\n"
       "keep.me@example.com,Keep,Me,SRE,Other,opt_in,backend,keepme\n")


class PrivacyBase(WbTestCase):
    def setUp(self):
        super().setUp()
        self.config()
        self.wb("migrate", check=0)

    def drv(self, *args, check=None):
        p = subprocess.run([DRV, self.db] + list(args), capture_output=True, text=True,
                           timeout=120)
        if check is not None:
            self.assertEqual(p.returncode, check,
                             f"drv_privacy {args} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def csv(self, text):
        path = os.path.join(self.tmp, "pool.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def cid(self, email):
        return self.scalar(f"SELECT id FROM candidates WHERE lower(email) = lower('{email}')")

    def populate(self):
        """Marta with an enrollment, a sent message, events (one naming her
        without a candidate), a handoff with payload and error, and a plain
        suppression row from an earlier `suppress`."""
        self.wb("import", self.csv(CSV), check=0)
        self.wb("enroll", "nurture", "--email", ADDR, check=0)
        c = self.cid(ADDR)
        self.sql(f"""
            INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender, state,
                                  message_id, rcpt, subject, last_reply, sent_at)
            SELECT e.id, e.candidate_id, e.sequence_id, 1, 'ana', 'sent', 'wb.1.x@example.com',
                   '{ADDR}', 'Marta, about backend', '250 ok <{ADDR}>', now()
            FROM enrollments e WHERE e.candidate_id = {c};
            INSERT INTO events (candidate_id, message_id, type, detail)
            SELECT {c}, id, 'reply', jsonb_build_object('from', 'Marta Ozolinsh <{ADDR}>',
                   'intent', 'interested') FROM messages WHERE candidate_id = {c};
            INSERT INTO events (candidate_id, type, detail)
            VALUES (NULL, 'bounce', jsonb_build_object('rcpt', lower('{ADDR}')));
            INSERT INTO handoffs (candidate_id, sequence_id, reason, payload, state, last_error)
            VALUES ({c}, 'nurture', 'reply',
                    jsonb_build_object('candidate', jsonb_build_object('email', '{ADDR}',
                        'first_name', 'Marta', 'last_name', 'Ozolinsh')),
                    'pending', 'ATS said: no such person Marta Ozolinsh');
        """)
        self.wb("suppress", ADDR, check=0)
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions WHERE email IS NOT NULL"), "1")

    def personal_hits(self, needles):
        """Every text, varchar, text[], json and jsonb column of every table
        in the database, searched case-insensitively for each needle."""
        cols = self.sql("""
            SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE t.table_type = 'BASE TABLE'
              AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
              AND (c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'character')
                   OR c.udt_name IN ('_text', '_varchar'))""")
        self.assertGreater(len(cols), 20)
        parts = []
        for schema, table, col in cols:
            for n in needles:
                parts.append(f"SELECT '{table}', '{col}', $${n}$$ FROM \"{schema}\".\"{table}\""
                             f" WHERE strpos(lower(\"{col}\"::text), lower($${n}$$)) > 0")
        hits = [tuple(r) for r in self.sql("SELECT DISTINCT * FROM (" + " UNION ALL ".join(parts) + ") h")]
        return hits


class ForgetTest(PrivacyBase):
    def test_forget_leaves_nothing_personal(self):
        self.populate()
        self.assertTrue(self.personal_hits(NAMES))  # the search does find her before
        p = self.drv("forget", ADDR.upper(), check=0)
        self.assertIn("erased 1 candidate, 1 enrollment(s), 1 message(s), 4 event(s)", p.stdout)
        self.assertIn("scrubbed 1 handoff(s), 1 suppression address(es)", p.stdout)
        self.assertIn("already suppressed", p.stdout)
        self.assertEqual(self.personal_hits(NAMES), [])
        # The hash stays (one row, address blanked); the handoff row stays
        # without personal data and will not be delivered.
        self.assertEqual(self.sql("SELECT email IS NULL, reason FROM suppressions"
                                  f" WHERE email_hash = wb_email_hash('{ADDR}')"), [["t", "manual"]])
        self.assertEqual(self.sql("SELECT candidate_id IS NULL, payload IS NULL, state FROM handoffs"),
                         [["t", "t", "dead"]])
        # The other candidate is untouched.
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"), "1")
        self.assertIsNotNone(self.cid("keep.me@example.com"))
        # Re-import (any case) is refused; so is an ATS upsert.
        p = self.wb("import", self.csv(f"email,first_name\n{ADDR.lower()},Marta\n"), check=65)
        self.assertIn("rejected 1", p.stdout)
        self.assertIsNone(self.cid(ADDR))
        st = self.scalar("SELECT status FROM wb_ats_rejected('evt-1',"
                         f" jsonb_build_object('email', '{ADDR}', 'first_name', 'Marta'),"
                         " '{}', NULL)")
        self.assertEqual(st, "suppressed")
        self.assertIsNone(self.cid(ADDR))
        # Forgetting again is fine and changes nothing.
        p = self.drv("forget", ADDR, check=0)
        self.assertIn("no candidate with address", p.stdout)
        self.assertEqual(self.personal_hits(NAMES), [])

    def test_forget_unknown_address_still_blocks_import(self):
        p = self.drv("forget", "nobody@example.net", check=0)
        self.assertIn("no candidate with address nobody@example.net", p.stdout)
        self.assertIn("now suppressed", p.stdout)
        self.assertEqual(self.sql("SELECT email IS NULL, reason FROM suppressions"),
                         [["t", "forget"]])
        self.wb("import", self.csv("email\nNobody@Example.net\n"), check=65)
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"), "0")
        self.assertEqual(self.personal_hits(["nobody@example.net"]), [])

    def test_forget_rejects_non_address(self):
        self.drv("forget", "not-an-address", check=64)
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions"), "0")


class ExportTest(PrivacyBase):
    def test_export_everything(self):
        self.populate()
        p = self.drv("export", ADDR.lower(), check=0)
        doc = json.loads(p.stdout)
        self.assertEqual(set(doc), {"exported_at", "candidate", "suppression", "enrollments",
                                    "messages", "events", "handoffs", "ats"})
        c = doc["candidate"]
        self.assertEqual((c["email"], c["first_name"], c["last_name"], c["company"]),
                         (ADDR, "Marta", "Ozolinsh", "Quintanilla GmbH"))
        self.assertEqual(c["attrs"], {"github": "mqz"})
        self.assertEqual(c["consent"], "opt_in")
        self.assertEqual(doc["suppression"]["reason"], "manual")
        self.assertEqual([(e["sequence_id"], e["state"]) for e in doc["enrollments"]],
                         [("nurture", "stopped")])
        m, = doc["messages"]
        self.assertEqual((m["subject"], m["state"], m["step"], m["rcpt"]),
                         ("Marta, about backend", "sent", 1, ADDR))
        self.assertIsNotNone(m["sent_at"])
        types = [e["type"] for e in doc["events"]]
        self.assertIn("reply", types)
        self.assertIn("suppressed", types)
        self.assertEqual(doc["handoffs"][0]["payload"]["candidate"]["first_name"], "Marta")
        # Another person's data is not in it.
        self.assertNotIn("keep.me", p.stdout)

    def test_export_unknown(self):
        p = self.drv("export", "nobody@example.net", check=65)
        self.assertIn("no candidate", p.stderr)
        self.assertEqual(p.stdout, "")


class RetentionTest(PrivacyBase):
    def test_only_idle_candidates_go(self):
        rows = ["email,first_name,consent,tags"]
        for name in ["idle", "clicked", "machine", "active", "fresh", "sent", "replied_old"]:
            rows.append(f"{name}@example.com,{name.title()},opt_in,backend")
        self.wb("import", self.csv("\n".join(rows) + "\n"), check=0)
        self.wb("enroll", "nurture", "--email", "active@example.com", check=0)
        old = "now() - interval '400 days'"
        self.sql(f"""
            UPDATE candidates SET created_at = {old}, updated_at = {old}
            WHERE email <> 'fresh@example.com';
            UPDATE enrollments SET created_at = {old}, updated_at = {old};
            DELETE FROM events;
            INSERT INTO events (candidate_id, type, at)
            SELECT id, 'click', now() - interval '3 days' FROM candidates WHERE email = 'clicked@example.com';
            INSERT INTO events (candidate_id, type, machine, at)
            SELECT id, 'open', true, now() - interval '3 days' FROM candidates WHERE email = 'machine@example.com';
            INSERT INTO events (candidate_id, type, at)
            SELECT id, 'sent', now() - interval '3 days' FROM candidates WHERE email = 'sent@example.com';
            INSERT INTO events (candidate_id, type, at)
            SELECT id, 'reply', {old} FROM candidates WHERE email = 'replied_old@example.com';
            UPDATE candidates SET last_engaged_at = {old} WHERE email = 'replied_old@example.com';
            INSERT INTO candidates (email, created_at, updated_at)
            SELECT 'bulk' || i || '@example.com', {old}, {old} FROM generate_series(1, 1203) i;
        """)
        p = self.drv("retention", "30", check=0)
        self.assertEqual(p.stdout.strip(), "erased 1206")
        left = sorted(r[0] for r in self.sql("SELECT email FROM candidates"))
        self.assertEqual(left, ["active@example.com", "clicked@example.com",
                                "fresh@example.com", "sent@example.com"])
        # The erased are suppressed by hash only.
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions WHERE reason = 'retention'"
                                     " AND email IS NULL"), "1206")
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions"
                                     " WHERE email_hash = wb_email_hash('IDLE@example.com')"), "1")
        self.assertEqual(self.personal_hits(["idle@", "machine@", "bulk7@", "Replied_Old"]), [])
        # Once a day per database: a second daemon (or run) the same day does nothing.
        self.sql(f"UPDATE candidates SET created_at = {old}, updated_at = {old}")
        self.sql("DELETE FROM events; UPDATE enrollments SET state = 'stopped'")
        self.assertEqual(self.drv("retention", "30", check=0).stdout.strip(), "erased 0")
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"), "4")
        # The next day it runs again.
        self.sql("UPDATE wb_settings SET value = (now() - interval '25 hours')::text"
                 " WHERE key = 'retention_last_run'")
        self.assertEqual(self.drv("retention", "30", check=0).stdout.strip(), "erased 4")

    def test_off(self):
        self.wb("import", self.csv("email\nidle@example.com\n"), check=0)
        self.sql("UPDATE candidates SET created_at = '2000-01-01', updated_at = '2000-01-01'")
        self.assertEqual(self.scalar("SELECT wb_retention_erase(0, 500)"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"), "1")


NOTICE_SEQ = dict(harness.DEFAULT_SEQUENCE,
                  steps=[dict(harness.DEFAULT_SEQUENCE["steps"][0], after="0s"),
                         dict(harness.DEFAULT_SEQUENCE["steps"][1], after="1s")])


class NoticeTest(PrivacyBase):
    def setUp(self):
        WbTestCase.setUp(self)

    def run_daemon(self, source="", **cfg):
        smtp = Smtpd().start()
        self.addCleanup(smtp.cleanup)
        self.config(sequences=[NOTICE_SEQ],
                    smtp={"url": smtp.url, "tls": "off", "connections": 2, "timeout_s": 5,
                          "retry_base_s": 1}, **cfg)
        self.wb("migrate", check=0)
        self.wb("import", self.csv("email,first_name,company,tags,consent,source\n"
                                   "lia@corp.example,Lía,Acme & Co,backend,legitimate_interest,"
                                   + source + "\n"
                                   "oona@corp.example,Oona,Beta,backend,opt_in,\n"), check=0)
        self.wb("enroll", "nurture", check=0)
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        wait_until(lambda: smtp.count() >= 4, 30, "both steps to both candidates")
        d.stop()
        got = {}
        for m in smtp.messages():
            msg = m["msg"]
            who = "lia" if "lia@" in str(msg["To"]) else "oona"
            step = 2 if str(msg["Subject"]).startswith("Re:") else 1
            html = msg.get_body(("html",))
            got[(who, step)] = (msg.get_body(("plain",)).get_content(),
                                html.get_content() if html else None)
        return got

    def test_notice_in_first_mail_of_legitimate_interest_only(self):
        got = self.run_daemon()
        text, html = got[("lia", 1)]
        self.assertIn("Why you are getting this email: Ana Ruiz found your", text)
        self.assertIn("(Acme & Co)", text)
        self.assertIn("legitimate interest", text)
        self.assertIn("ana@example.com", text)
        self.assertRegex(text, r"hear nothing more from us: http://\S+/u/\S+")
        # Art. 14(2)(a), (e) and (f): how long, the right to complain, the source.
        flat = " ".join(text.split())
        self.assertIn("(source: public professional profiles)", flat)
        self.assertIn("We keep it for as long as we may recruit you, until you object or ask "
                      "us to erase it.", flat)
        self.assertIn("complain to a data protection supervisory authority", flat)
        self.assertIn("supervisory authority", html)
        # The template's own part comes first, the notice after it.
        self.assertLess(text.index("Hello Lía"), text.index("Why you are getting"))
        self.assertIn("Why you are getting this email", html)
        self.assertIn("(Acme &amp; Co)", html)
        self.assertLess(html.index("Why you are getting"), html.index("/o/"))
        for key in [("lia", 2), ("oona", 1), ("oona", 2)]:
            for part in got[key]:
                if part is not None:
                    self.assertNotIn("Why you are getting", part, key)

    def test_notice_names_the_source_and_the_retention(self):
        """Issue 18 defect 11: the default notice is complete out of the box."""
        got = self.run_daemon(source="GitHub <profile>", retention_days=365)
        text, html = got[("lia", 1)]
        flat = " ".join(text.split())
        self.assertIn("(source: GitHub <profile>)", flat)
        self.assertIn("We keep it for 365 days after our last contact with you.", flat)
        self.assertIn("(source: GitHub &lt;profile&gt;)", " ".join(html.split()))
        self.assertIn("365 days after our last contact with you", " ".join(html.split()))

    def test_custom_notice(self):
        harness.write(os.path.join(self.tmp, "templates", "notice.txt"),
                      "PRIVACY for {{first_name}}: object at {{unsubscribe_url}}\n")
        got = self.run_daemon(privacy_notice="notice")
        text, html = got[("lia", 1)]
        self.assertRegex(text, r"PRIVACY for Lía: object at http://\S+/u/")
        self.assertNotIn("Why you are getting", text)
        self.assertIn("Why you are getting", html)   # no notice.html: the default
        self.assertNotIn("PRIVACY", got[("oona", 1)][0])

    def test_check_config(self):
        self.config(privacy_notice="notice")
        p = self.wb("check-config", check=78)
        self.assertIn("neither notice.txt nor notice.html", p.stdout + p.stderr)
        harness.write(os.path.join(self.tmp, "templates", "notice.html"),
                      "<p>ok {{first_name}}</p>\n<p>{{links.apply}} {{nope</p>\n")
        p = self.wb("check-config", check=78)
        out = p.stdout + p.stderr
        self.assertIn("notice.html:2:", out)
        harness.write(os.path.join(self.tmp, "templates", "notice.html"), "<p>{{first_name}}</p>\n")
        self.wb("check-config", check=0)
        self.config(privacy_notice="../etc/x")
        self.wb("check-config", check=78)
