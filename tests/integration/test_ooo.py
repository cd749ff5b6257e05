"""Out-of-office return dates and "paused": true in a sequence file (issue 15,
SPEC "The sourcer's controls") against the real daemon, PostgreSQL, Dovecot
and an SMTP server.

- Automatic replies dropped into the maildir, in en/de/fr/es wordings and an
  ISO date, hold their enrollment until the day after the date they name, at
  the window's opening in the window's zone; replies with no date or a past
  one hold nothing. A held step is not claimed even when something makes it
  due early; once the hold is in the past it is sent. `show` prints the hold.
- "paused": true in the file claims nothing; `resume` says the file pauses
  it; removing it and reloading sends; a file pause and a command pause
  combine (paused while either says so)."""
import datetime
import email.utils
import json
import os
import signal
import time
import zoneinfo

import harness
import imapd
from daemon_util import Daemon, Smtpd, wait_until

ZONE = "Europe/Berlin"
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "09:00", "end": "17:00", "timezone": ZONE}
SEQ = dict(harness.DEFAULT_SEQUENCE, window=WINDOW, stop_on=["reply", "unsubscribe", "bounce"],
           handoff_on=[])
OPEN_WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
               "start": "00:00", "end": "24:00", "timezone": "UTC"}

MONTHS = {"en": ["January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December"],
          "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
                 "September", "Oktober", "November", "Dezember"],
          "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre"],
          "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
                 "septiembre", "octubre", "noviembre", "diciembre"]}


def replies(today):
    """(name, subject, body, the date it names or None) for mail of today."""
    d = lambda n: today + datetime.timedelta(days=n)  # noqa: E731
    en, de, fr, es = (d(3), d(4), d(5), d(6))
    past = d(-3)
    return [
        ("ana", "Automatic reply: about backend",
         f"I am out of the office and will be back on {en.day} {MONTHS['en'][en.month - 1]}.\n",
         en),
        ("bea", "Automatische Antwort: about backend",
         f"Ich bin bis zum {de.day}. {MONTHS['de'][de.month - 1]} nicht im Büro.\n", de),
        ("cam", "Réponse automatique : about backend",
         f"Je serai de retour le {fr.day} {MONTHS['fr'][fr.month - 1]}.\n", fr),
        ("dia", "Respuesta automática: about backend",
         f"Estoy de vacaciones y regreso el {es.day} de {MONTHS['es'][es.month - 1]}.\n", es),
        ("eli", "Out of office", f"Out of office until {d(1).isoformat()}.\n", d(1)),
        ("fay", "Automatic reply: about backend",
         "I am out of the office and will answer when I return.\n", None),
        ("gus", "Automatic reply: about backend",
         f"I was away until {past.isoformat()}; replies may be slow.\n", None),
    ]


def resume_at(back_on):
    """The day after back_on at the window's opening in its zone, in UTC."""
    day = back_on + datetime.timedelta(days=1)
    local = datetime.datetime(day.year, day.month, day.day, 9, 0, tzinfo=zoneinfo.ZoneInfo(ZONE))
    return local.astimezone(datetime.timezone.utc)


class OooTest(harness.WbTestCase):
    def setUp(self):
        super().setUp()
        self.smtp = Smtpd().start()
        self.addCleanup(self.smtp.cleanup)

    def start_mailbox(self):
        self.imap = imapd.Dovecot().start()
        self.addCleanup(self.imap.stop)
        harness.write(os.path.join(self.tmp, "imap.pw"), self.imap.password + "\n", 0o600)
        return {"url": self.imap.url(), "username": self.imap.user, "password_file": "imap.pw",
                "poll_s": 1, "tls": "off"}

    def smtp_cfg(self):
        return {"url": self.smtp.url, "tls": "off", "connections": 2, "timeout_s": 10,
                "retry_base_s": 1}

    def daemon(self):
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        return d

    def person(self, name):
        """A candidate whose step 1 was sent, step 2 due in an hour; returns
        (enrollment id, Message-ID)."""
        cid = self.scalar(f"INSERT INTO candidates (email, first_name, consent) VALUES "
                          f"('{name}@corp.example', '{name}', 'opt_in') RETURNING id")
        eid = self.scalar(f"INSERT INTO enrollments (candidate_id, sequence_id, step, next_due_at) "
                          f"VALUES ({cid}, 'nurture', 1, now() + interval '1 hour') RETURNING id")
        mid = self.scalar(f"INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, "
                          f"sender, state, rcpt, sent_at) VALUES ({eid}, {cid}, 'nurture', 1, "
                          f"'ana', 'sent', '{name}@corp.example', now()) RETURNING id")
        msgid = f"wb.{mid}.0123abcd@example.com"
        self.sql(f"UPDATE messages SET message_id = '{msgid}' WHERE id = {mid}")
        return eid, msgid

    def test_return_dates_hold_their_enrollment_until_the_day_after(self):
        self.config(sequences=[SEQ], smtp=self.smtp_cfg(), mailbox=self.start_mailbox())
        self.wb("migrate", check=0)
        self.wb("check-config", check=0)
        self.sql("INSERT INTO sequences (id, content_hash, definition) VALUES ('nurture', 'x', $$%s$$)"
                 % json.dumps(SEQ))
        now = datetime.datetime.now(datetime.timezone.utc)
        today = now.date()
        cases = replies(today)
        people = {name: self.person(name) for name, *_ in cases}
        for name, subject, body, _ in cases:
            self.imap.deliver(imapd.message(
                [("From", f"{name}@corp.example"), ("To", "ana@example.com"),
                 ("Subject", subject), ("In-Reply-To", f"<{people[name][1]}>"),
                 ("Date", email.utils.format_datetime(now)),
                 ("Auto-Submitted", "auto-replied"), ("MIME-Version", "1.0"),
                 ("Content-Type", "text/plain; charset=utf-8")], body))
        d = self.daemon()
        wait_until(lambda: self.scalar("SELECT count(*) FROM events WHERE type = 'auto_reply'")
                   == str(len(cases)), 30, "every auto_reply recorded")

        for name, _, _, back in cases:
            eid = people[name][0]
            detail = json.loads(self.scalar(f"SELECT detail FROM events WHERE enrollment_id = {eid}"
                                            f" AND type = 'auto_reply'"))
            row = self.sql(f"SELECT ooo_until IS NOT NULL, extract(epoch FROM ooo_until), "
                           f"extract(epoch FROM next_due_at), state FROM enrollments WHERE id = {eid}")[0]
            self.assertEqual(row[3], "active", name)  # an auto-reply stops nothing
            if back is None:
                self.assertNotIn("back_on", detail, name)
                self.assertEqual(row[0], "f", name)
                continue
            self.assertEqual(detail.get("back_on"), back.isoformat(), name)
            want = resume_at(back).timestamp()
            self.assertAlmostEqual(float(row[1]), want, delta=0.001, msg=name)
            self.assertAlmostEqual(float(row[2]), want, delta=0.001, msg=name)  # next step waits
            out = self.wb("show", f"{name}@corp.example", check=0).stdout
            self.assertIn(f"paused until {(back + datetime.timedelta(days=1)).isoformat()} "
                          f"(out of office)", out)

        # Not claimed before the date: made due by hand, the hold puts it back.
        eid = people["eli"][0]
        self.sql(f"UPDATE enrollments SET next_due_at = now() WHERE id = {eid}")
        self.assertAlmostEqual(float(self.scalar(f"SELECT extract(epoch FROM next_due_at) FROM "
                                                 f"enrollments WHERE id = {eid}")),
                               resume_at(today + datetime.timedelta(days=1)).timestamp(),
                               delta=0.001)
        self.sql("NOTIFY wb_enrollments")
        time.sleep(2)
        self.assertEqual(self.smtp.count(), 0)
        # And after it: the hold moved into the past, the step goes out.
        self.sql(f"UPDATE enrollments SET ooo_until = now() - interval '1 second', "
                 f"next_due_at = now() WHERE id = {eid}")
        self.sql("NOTIFY wb_enrollments")
        wait_until(lambda: self.smtp.count() == 1, 15, "eli's step 2 once the hold is over")
        self.assertEqual(self.smtp.messages()[0]["rcpt_tos"], ["eli@corp.example"])
        self.assertEqual(d.stop(), 0)
        self.assertEqual(self.smtp.count(), 1)  # nobody else's held step went out

    def test_a_hold_is_at_most_ooo_max_days(self):
        seq = dict(SEQ, ooo_max_days=2)
        self.config(sequences=[seq], smtp=self.smtp_cfg(), mailbox=self.start_mailbox())
        self.wb("migrate", check=0)
        self.sql("INSERT INTO sequences (id, content_hash, definition) VALUES ('nurture', 'x', $$%s$$)"
                 % json.dumps(seq))
        eid, msgid = self.person("hal")
        now = datetime.datetime.now(datetime.timezone.utc)
        back = now.date() + datetime.timedelta(days=20)
        self.imap.deliver(imapd.message(
            [("From", "hal@corp.example"), ("To", "ana@example.com"), ("Subject", "Out of office"),
             ("In-Reply-To", f"<{msgid}>"), ("Date", email.utils.format_datetime(now)),
             ("Auto-Submitted", "auto-replied")], f"Back on {back.isoformat()}.\n"))
        d = self.daemon()
        wait_until(lambda: self.scalar("SELECT count(*) FROM events WHERE type = 'auto_reply'")
                   == "1", 30, "the auto_reply recorded")
        self.assertEqual(d.stop(), 0)
        held = float(self.scalar(f"SELECT extract(epoch FROM ooo_until) FROM enrollments "
                                 f"WHERE id = {eid}"))
        # Two days after the reply, then the window's next opening: within a day more.
        cap = now.timestamp() + 2 * 86400
        self.assertGreaterEqual(held, cap - 5)
        self.assertLess(held, cap + 86400)

    def seq_file(self, seq):
        harness.write(os.path.join(self.tmp, "sequences", "nurture.json"), json.dumps(seq))

    def test_paused_in_the_file(self):
        seq = dict(harness.DEFAULT_SEQUENCE, window=OPEN_WINDOW, paused=True,
                   steps=[dict(harness.DEFAULT_SEQUENCE["steps"][0], after="0s"),
                          dict(harness.DEFAULT_SEQUENCE["steps"][1], after="3s")],
                   stop_on=[], handoff_on=[])
        self.config(sequences=[seq], smtp=self.smtp_cfg())
        self.wb("migrate", check=0)
        rows = ["email,first_name,tags,consent"] + \
               ["p%d@corp.example,P%d,backend,opt_in" % (i, i) for i in range(3)]
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"), "\n".join(rows) + "\n"),
                check=0)
        self.wb("enroll", "nurture", check=0)
        d = self.daemon()
        time.sleep(2)
        self.assertEqual(self.smtp.count(), 0)
        self.assertEqual(self.scalar("SELECT count(*) FROM messages"), "0")
        # `resume` cannot lift the file's pause, and says so.
        p = self.wb("resume", "nurture", check=1)
        self.assertIn('is paused in its file', p.stderr)
        self.assertIn('"paused": true', p.stderr)
        time.sleep(1)
        self.assertEqual(self.smtp.count(), 0)

        # Removed from the file and reloaded: step 1 goes out to everyone.
        self.seq_file(dict(seq, paused=False))
        d.signal(signal.SIGHUP)
        d.wait_log("configuration reloaded")
        wait_until(lambda: self.smtp.count() == 3, 15, "step 1 after the file's pause is lifted")

        # Paused in the file again before step 2, and by the command too.
        self.seq_file(seq)
        d.signal(signal.SIGHUP)
        wait_until(lambda: d.text().count("configuration reloaded") == 2, 10, "the second reload")
        p = self.wb("pause", "nurture", check=0)
        self.assertIn("its file pauses it too", p.stdout)
        time.sleep(4)  # step 2 falls due meanwhile
        self.assertEqual(self.smtp.count(), 3)
        # The file lets go; the command's pause still holds.
        self.seq_file(dict(seq, paused=False))
        d.signal(signal.SIGHUP)
        wait_until(lambda: d.text().count("configuration reloaded") == 3, 10, "the third reload")
        time.sleep(1.5)
        self.assertEqual(self.smtp.count(), 3)
        self.assertEqual(self.scalar("SELECT paused_at IS NOT NULL FROM sequences"), "t")
        p = self.wb("resume", "nurture", check=0)
        self.assertIn("resumed", p.stdout)
        wait_until(lambda: self.smtp.count() == 6, 15, "step 2 after both pauses are lifted")
        self.assertEqual(d.stop(), 0)
        # Each step once per person.
        self.assertEqual(self.scalar("SELECT count(DISTINCT (enrollment_id, step)) FROM messages"
                                     " WHERE state = 'sent'"), "6")

    def test_check_config_takes_the_keys(self):
        bad = dict(harness.DEFAULT_SEQUENCE, paused="yes", ooo_max_days=400)
        self.config(sequences=[bad])
        p = self.wb("check-config", check=78)
        self.assertIn("paused", p.stderr)
        self.assertIn("ooo_max_days", p.stderr)
        self.config(sequences=[dict(harness.DEFAULT_SEQUENCE, paused=False, ooo_max_days=0)])
        self.wb("check-config", check=0)
