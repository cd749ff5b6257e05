"""The IMAP poller (lib/engage/mailbox.c through tests/drivers/drv_mailbox) against a
private Dovecot (imapd.py): replies stop their enrollment, out-of-office
replies stop nothing, DSN hard bounces suppress, garbage and huge messages
are skipped without stopping the poller, and a restart records nothing
twice."""
import json
import os
import signal
import subprocess
import time

import harness
import imapd

DRV = os.path.join(harness.BUILD, "tests", "drv_mailbox")

SEQUENCE = dict(harness.DEFAULT_SEQUENCE, stop_on=["reply", "unsubscribe", "bounce"],
                handoff_on=[])

QUOTE = ("\nOn Tue, Mar 5, 2024 at 9:12 AM Ana Ruiz <ana@example.com> wrote:\n"
         "> Would you be interested in a backend role? Unsubscribe: https://x/u/y\n")


class MailboxTest(harness.WbTestCase):
    def setUp(self):
        super().setUp()
        self.imap = imapd.Dovecot().start()
        self.addCleanup(self.imap.stop)
        harness.write(os.path.join(self.tmp, "imap.pw"), self.imap.password + "\n", 0o600)
        self.config(sequences=[SEQUENCE],
                    mailbox={"url": self.imap.url(), "username": self.imap.user,
                             "password_file": "imap.pw", "poll_s": 3600, "tls": "off"})
        self.wb("migrate", check=0)
        self.sql("INSERT INTO sequences (id, content_hash, definition) VALUES ('nurture', 'x', $$%s$$)"
                 % json.dumps(SEQUENCE))

    def person(self, name):
        """A candidate with an active enrollment and one sent message;
        returns (candidate id, enrollment id, message id, Message-ID)."""
        cid = self.scalar(f"INSERT INTO candidates (email, consent) VALUES "
                          f"('{name}@corp.example', 'opt_in') RETURNING id")
        eid = self.scalar(f"INSERT INTO enrollments (candidate_id, sequence_id, step) VALUES "
                          f"({cid}, 'nurture', 1) RETURNING id")
        mid = self.scalar(f"INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, "
                          f"sender, state, rcpt) VALUES ({eid}, {cid}, 'nurture', 1, 'ana', 'sent', "
                          f"'{name}@corp.example') RETURNING id")
        msgid = f"wb.{mid}.0123abcd@example.com"
        self.sql(f"UPDATE messages SET message_id = '{msgid}' WHERE id = {mid}")
        return cid, eid, mid, msgid

    def token(self, mid):
        p = subprocess.run([DRV, "--config", self.cfg_path, "token", str(mid)],
                           capture_output=True, text=True, check=True)
        return p.stdout.strip()

    def start_poller(self):
        p = subprocess.Popen([DRV, "--config", self.cfg_path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), "READY")
        return p

    def stop_poller(self, p):
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        return err

    def wait_uid(self, uid, p, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.scalar("SELECT last_uid FROM mailbox_state")
            if got is not None and int(got) >= uid:
                return
            self.assertIsNone(p.poll(), "poller exited")
            time.sleep(0.2)
        self.fail(f"last_uid did not reach {uid}")

    def events(self, mid):
        return self.sql(f"SELECT type, detail FROM events WHERE message_id = {mid} ORDER BY id")

    def state(self, eid):
        return self.scalar(f"SELECT state || ':' || coalesce(stop_reason, '') FROM enrollments "
                           f"WHERE id = {eid}")

    def test_reply_ooo_bounce_garbage_huge_and_restart(self):
        a = self.person("alex")     # replies
        b = self.person("bea")      # out of office
        c = self.person("carl")     # hard bounce
        d = self.person("dana")     # the huge header: nothing recorded
        e = self.person("emil")     # a 5 MB reply: read from its first 64 KB
        deliver = self.imap.deliver
        # 1: a reply threaded by References only, quoted text to strip
        deliver(imapd.message(
            [("From", "Alex <alex@corp.example>"), ("To", "ana@example.com"),
             ("Subject", "=?UTF-8?Q?Re:_about_backend_=E2=80=94_sure?="),
             ("References", f"<other@x> <{a[3]}>"), ("Message-ID", "<r1@corp.example>")],
            "Sounds good, let's talk on Thursday.\n\nAlex\n" + QUOTE))
        # 2: garbage, not even a header
        deliver(b"\x00\xff\xfe garbage \x01\x02\n\n\x00not mail at all" * 50)
        # 3: 5 MB of References: over the header cap, skipped
        deliver(imapd.message(
            [("From", "dana@corp.example"), ("To", "ana@example.com"), ("Subject", "Re: hi"),
             ("References", f"<{d[3]}>" + "\r\n <junk@x>" * 500000)],
            "interested\n"))
        # 4: out of office, as Exchange writes it
        deliver(imapd.message(
            [("From", "bea@corp.example"), ("To", "ana@example.com"),
             ("Subject", "Automatic reply: about backend"), ("In-Reply-To", f"<{b[3]}>"),
             ("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")],
            "I am out of the office until Monday. I'm interested in nothing.\n"))
        # 5: a DSN to the VERP address
        tok = self.token(c[2])
        deliver(imapd.message(
            [("From", "MAILER-DAEMON@mx.example.org (Mail Delivery System)"),
             ("To", f"b+{tok}@bounces.example.com"), ("Subject", "Undelivered Mail Returned to Sender"),
             ("Auto-Submitted", "auto-replied"), ("MIME-Version", "1.0"),
             ("Content-Type", 'multipart/report; report-type=delivery-status; boundary="BB"')],
            "--BB\nContent-Type: text/plain\n\nThis is the mail system. I'm sorry...\n\n"
            "--BB\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
            "Final-Recipient: rfc822; carl@corp.example\nOriginal-Recipient: rfc822;carl@corp.example\n"
            "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n\n"
            f"--BB\nContent-Type: text/rfc822-headers\n\nReturn-Path: <b+{tok}@bounces.example.com>\n"
            f"Message-ID: <{c[3]}>\n--BB--\n"))
        # 6: a 5 MB reply (an attachment): classified from its first 64 KB
        deliver(imapd.message(
            [("From", "emil@corp.example"), ("To", "ana@example.com"), ("Subject", "Re: backend"),
             ("In-Reply-To", f"<{e[3]}>"), ("MIME-Version", "1.0"),
             ("Content-Type", 'multipart/mixed; boundary="MM"')],
            "--MM\nContent-Type: text/plain; charset=utf-8\n\nNo thanks, not looking.\n" + QUOTE +
            "--MM\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
            + ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 2 + "\n") * 75000 + "--MM--\n"))

        p = self.start_poller()
        self.wait_uid(6, p)

        ev = self.events(a[2])
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0][0], "reply")
        detail = json.loads(ev[0][1])
        self.assertEqual(detail["intent"], "interested")
        self.assertEqual(detail["uid"], 1)
        self.assertEqual(detail["subject"], "Re: about backend — sure")
        self.assertEqual(self.state(a[1]), "stopped:reply")

        ev = self.events(b[2])
        self.assertEqual([t for t, _ in ev], ["auto_reply"])
        self.assertEqual(self.state(b[1]), "active:")

        ev = self.events(c[2])
        self.assertEqual([t for t, _ in ev], ["bounce"])
        detail = json.loads(ev[0][1])
        self.assertEqual((detail["kind"], detail["status"]), ("hard", "5.1.1"))
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions WHERE "
                                     "email = 'carl@corp.example' AND reason = 'bounce'"), "1")
        self.assertEqual(self.state(c[1]), "stopped:bounce")

        self.assertEqual(self.events(d[2]), [])
        self.assertEqual(self.state(d[1]), "active:")

        ev = self.events(e[2])
        self.assertEqual(len(ev), 1)
        self.assertEqual(json.loads(ev[0][1])["intent"], "not_interested")
        self.assertEqual(self.state(e[1]), "stopped:reply")

        err = self.stop_poller(p)
        self.assertIn("skipping UID 2: no From", err)
        self.assertIn("skipping UID 3: header over 64 KB", err)
        self.assertNotIn("Re: about backend", err)  # subjects stay out of logs
        total = self.scalar("SELECT count(*) FROM events")

        # A restart reads on from last_uid: nothing recorded twice.
        deliver(imapd.message([("From", "x@y"), ("To", "ana@example.com"), ("Subject", "hello")],
                              "unrelated\n"))
        p = self.start_poller()
        self.wait_uid(7, p)
        self.stop_poller(p)
        self.assertEqual(self.scalar("SELECT count(*) FROM events"), total)

    def arf(self, original_headers):
        return imapd.message(
            [("From", "staff@fbl.mail.example"), ("To", "fbl@example.com"),
             ("Subject", "complaint about message from 192.0.2.1"), ("MIME-Version", "1.0"),
             ("Content-Type", 'multipart/report; report-type=feedback-report; boundary="FB"')],
            "--FB\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n"
            "--FB\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
            "User-Agent: FBL/1.0\nVersion: 1\n\n"
            "--FB\nContent-Type: text/rfc822-headers\n\n" + original_headers + "--FB--\n")

    def test_complaints_suppress(self):
        """ARF reports (RFC 5965): found by the VERP address in the returned
        headers, or by the Message-ID alone; each records a complaint,
        suppresses the address and ends the enrollment."""
        f = self.person("fay")      # named by her VERP Return-Path
        g = self.person("gus")      # named by the Message-ID only
        h = self.person("hal")      # untouched
        tok = self.token(f[2])
        self.imap.deliver(self.arf(f"Return-Path: <b+{tok}@bounces.example.com>\n"
                                   f"From: Ana <ana@example.com>\nMessage-ID: <{f[3]}>\n"))
        self.imap.deliver(self.arf(f"From: Ana <ana@example.com>\nMessage-ID: <{g[3]}>\n"))
        # A complaint about a mail that is not ours changes nothing.
        self.imap.deliver(self.arf("Message-ID: <someone-else@example.org>\n"))
        p = self.start_poller()
        self.wait_uid(3, p)
        self.stop_poller(p)
        for who in (f, g):
            ev = self.events(who[2])
            self.assertEqual(len(ev), 1, ev)
            self.assertEqual(ev[0][0], "complaint")
            self.assertEqual(json.loads(ev[0][1])["feedback_type"], "abuse")
            self.assertEqual(self.state(who[1]), "stopped:complaint")
        self.assertEqual(self.scalar("SELECT string_agg(email || ':' || reason, ' ' ORDER BY email) "
                                     "FROM suppressions"),
                         "fay@corp.example:complaint gus@corp.example:complaint")
        self.assertEqual(self.events(h[2]), [])
        self.assertEqual(self.state(h[1]), "active:")

    def test_arf_corpus(self):
        """tests/corpus/arf: reports as Yahoo, Microsoft (JMRP), AOL and others
        send them; each complaint is about the right message and suppresses
        the right person; the others record nothing and the poller goes on."""
        folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "arf")
        expect = json.load(open(os.path.join(folder, "expect.json")))
        people = {}
        for i, name in enumerate(sorted(expect)):
            who = self.person("arf%02d" % i)
            people[name] = who
            verp = "b+%s@bounces.example.com" % self.token(who[2])
            raw = open(os.path.join(folder, name)).read()
            for k, v in (("{MSGID}", who[3]), ("{VERP}", verp),
                         ("{RCPT}", "arf%02d@corp.example" % i), ("{SUBJECT}", "About backend")):
                raw = raw.replace(k, v)
            self.imap.deliver(raw.replace("\n", "\r\n"))
        p = self.start_poller()
        self.wait_uid(len(expect), p)
        self.stop_poller(p)
        for name, want in expect.items():
            cid, eid, mid, _ = people[name]
            ev = self.events(mid)
            email = "arf%02d@corp.example" % sorted(expect).index(name)
            sup = self.scalar(f"SELECT reason FROM suppressions WHERE email = '{email}'")
            if want == "complaint":
                self.assertEqual([e[0] for e in ev], ["complaint"], name)
                self.assertEqual(sup, "complaint", name)
                self.assertEqual(self.state(eid), "stopped:complaint", name)
            else:
                self.assertEqual(ev, [], name)
                self.assertIsNone(sup, name)
                self.assertEqual(self.state(eid), "active:", name)

    def test_stop_mid_poll_then_restart_records_each_once(self):
        n = 200
        self.sql(f"""
            WITH c AS (INSERT INTO candidates (email, consent)
                       SELECT 'p' || i || '@corp.example', 'opt_in' FROM generate_series(1, {n}) i
                       RETURNING id, email),
                 e AS (INSERT INTO enrollments (candidate_id, sequence_id, step)
                       SELECT id, 'nurture', 1 FROM c RETURNING id, candidate_id)
            INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender, state, rcpt)
            SELECT e.id, c.id, 'nurture', 1, 'ana', 'sent', c.email FROM e JOIN c ON c.id = e.candidate_id""")
        self.sql("UPDATE messages SET message_id = 'wb.' || id || '.0123abcd@example.com'")
        for mid, in self.sql("SELECT id FROM messages ORDER BY id"):
            self.imap.deliver(imapd.message(
                [("From", "p@corp.example"), ("Subject", "Re: hi"),
                 ("In-Reply-To", f"<wb.{mid}.0123abcd@example.com>")], "Happy to chat!\n"))
        p = self.start_poller()
        for line in p.stderr:  # stop as soon as a few are recorded
            if "UID 3:" in line:
                break
        self.stop_poller(p)
        self.assertLess(int(self.scalar("SELECT last_uid FROM mailbox_state")), n)
        p = self.start_poller()
        self.wait_uid(n, p)
        self.stop_poller(p)
        rows = self.sql("SELECT m.id, count(e.id) FROM messages m LEFT JOIN events e "
                        "ON e.message_id = m.id AND e.type = 'reply' GROUP BY m.id")
        self.assertEqual(len(rows), n)
        self.assertEqual({r[1] for r in rows}, {"1"})

    def test_uidvalidity_change_starts_over(self):
        a = self.person("alex")
        self.imap.deliver(imapd.message([("From", "x@y"), ("Subject", "one")], "x\n"))
        self.imap.deliver(imapd.message([("From", "x@y"), ("Subject", "two")], "x\n"))
        p = self.start_poller()
        self.wait_uid(2, p)
        self.stop_poller(p)
        old = self.scalar("SELECT uidvalidity FROM mailbox_state")
        self.imap.remove_all()
        time.sleep(1.1)  # Dovecot derives a new UIDVALIDITY from the clock
        self.imap.deliver(imapd.message(
            [("From", "alex@corp.example"), ("Subject", "Re: x"), ("In-Reply-To", f"<{a[3]}>")],
            "Please unsubscribe me.\n"))
        p = self.start_poller()
        deadline = time.time() + 60
        while time.time() < deadline and not self.events(a[2]):
            time.sleep(0.2)
        err = self.stop_poller(p)
        self.assertNotEqual(self.scalar("SELECT uidvalidity FROM mailbox_state"), old)
        self.assertEqual(self.scalar("SELECT last_uid FROM mailbox_state"), "1")
        self.assertIn("UIDVALIDITY", err)
        ev = self.events(a[2])
        self.assertEqual(len(ev), 1)
        self.assertEqual(json.loads(ev[0][1])["intent"], "unsubscribe")
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions "
                                     "WHERE email = 'alex@corp.example'"), "1")

    def test_unreachable_server_keeps_polling(self):
        port = self.imap.port
        self.imap.stop()
        self.config(sequences=[SEQUENCE],
                    mailbox={"url": f"imap://127.0.0.1:{port}/INBOX", "username": "wbtest",
                             "password_file": "imap.pw", "poll_s": 1, "tls": "off"})
        p = self.start_poller()
        time.sleep(2.5)
        self.assertIsNone(p.poll())
        err = self.stop_poller(p)
        self.assertIn("STATUS", err)

    def test_tls_required_by_default_refuses_a_server_without_starttls(self):
        """Issue 18 defect 8: imap:// without a "tls" key must not fall back to
        a plaintext login when the server offers no STARTTLS (a man in the
        middle could strip it): the poll fails, nothing is read, no login."""
        _, _, mid, msgid = self.person("tls")
        self.imap.deliver(f"From: tls@corp.example\r\nTo: ana@example.com\r\n"
                          f"Subject: Re: hi\r\nIn-Reply-To: <{msgid}>\r\n"
                          f"Message-ID: <r-tls@corp.example>\r\n\r\nYes, interested.\r\n")
        self.config(sequences=[SEQUENCE],
                    mailbox={"url": self.imap.url(), "username": self.imap.user,
                             "password_file": "imap.pw", "poll_s": 1})
        p = self.start_poller()
        time.sleep(2.5)
        self.assertIsNone(p.poll())
        err = self.stop_poller(p)
        self.assertRegex(err, "(?i)ssl|tls")
        self.assertEqual(self.events(mid), [])
        with open(os.path.join(self.imap.dir, "dovecot.log")) as f:
            self.assertNotIn("Login: user=<", f.read())

if __name__ == "__main__":
    import unittest
    unittest.main()
