"""preview and test-send (issue 15, SPEC "The sourcer's controls") against
PostgreSQL, the real daemon and an SMTP server: preview is the message the
daemon then sends, apart from Date, Message-ID (and the MIME boundary made
from it) and the tracking tokens; an empty field without fallback is a
warning at its place; test-send mails every step with [test] and records
nothing."""
import email
import email.policy
import os
import re
import time

import harness
from daemon_util import Daemon, Smtpd, wait_until

TEMPLATES = dict(harness.DEFAULT_TEMPLATES)
TEMPLATES["intro.txt"] = ("Hi {{first_name|there}},\n\nA backend role at {{company}} "
                          "for a {{title}}: {{links.apply}}\n")
SEQ = dict(harness.DEFAULT_SEQUENCE,
           window={"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "start": "00:00", "end": "24:00", "timezone": "UTC"})

TOKEN = re.compile(r"/[ocu]/[A-Za-z0-9_=-]+")


def normal(raw):
    """Headers and decoded parts, with what may differ taken out."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    head = [(k, TOKEN.sub("/T", str(v))) for k, v in msg.items()
            if k.lower() not in ("date", "message-id", "content-type")]
    parts = [(p.get_content_type(), TOKEN.sub("/T", p.get_content()))
             for p in msg.walk() if not p.is_multipart()]
    return head, msg.get_content_type(), parts


class PreviewTest(harness.WbTestCase):
    def setUp(self):
        super().setUp()
        self.smtp = Smtpd().start()
        self.addCleanup(self.smtp.cleanup)
        self.config(sequences=[SEQ], templates=TEMPLATES,
                    smtp={"url": self.smtp.url, "tls": "off", "connections": 2,
                          "timeout_s": 10, "retry_base_s": 1})
        self.wb("migrate", check=0)
        pool = harness.write(os.path.join(self.tmp, "pool.csv"),
                             "email,first_name,company,title,tags,consent\n"
                             "ines@corp.example,Inés,Corp,Staff Engineer,backend,opt_in\n"
                             "olaf@corp.example,Olaf,Corp,,backend,legitimate_interest\n")
        self.wb("import", pool, check=0)

    def test_preview_is_what_the_daemon_sends(self):
        out = os.path.join(self.tmp, "ines.eml")
        p = self.wb("preview", "nurture", "--email", "INES@corp.example", "--out", out, check=0)
        self.assertEqual(p.stderr, "")
        self.wb("enroll", "nurture", check=0)
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        wait_until(lambda: self.smtp.count() >= 2, 20, "step 1 to both")
        sent = next(m["raw"] for m in self.smtp.messages() if m["rcpt_tos"] == ["ines@corp.example"])
        self.assertEqual(normal(open(out, "rb").read()), normal(sent))
        # Olaf has no title: a warning at the template's place, and the
        # legitimate-interest notice as the real send carries it.
        out = os.path.join(self.tmp, "olaf.eml")
        p = self.wb("preview", "nurture", "--email", "olaf@corp.example", "--out", out, check=0)
        self.assertRegex(p.stderr, r"templates/intro\.txt:3:\d+: warning: \"title\" renders "
                                   r"empty for olaf@corp\.example and has no fallback")
        olaf = next(m["raw"] for m in self.smtp.messages() if m["rcpt_tos"] == ["olaf@corp.example"])
        self.assertEqual(normal(open(out, "rb").read()), normal(olaf))

    def test_preview_errors(self):
        self.wb("preview", "nurture", "--email", "nobody@corp.example", check=65)
        self.wb("preview", "nosuch", "--email", "ines@corp.example", check=64)
        self.wb("preview", "nurture", "--email", "ines@corp.example", "--step", "9", check=64)
        self.wb("preview", "nurture", check=64)
        p = self.wb("preview", "nurture", "--email", "ines@corp.example", "--step", "2", check=0)
        msg = email.message_from_string(p.stdout, policy=email.policy.default)
        self.assertEqual(str(msg["Subject"]), "Re: Inés, about backend")
        self.assertIsNotNone(msg["In-Reply-To"])  # step 2 threads on step 1

    def test_test_send_records_nothing(self):
        before = self.sql("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM events), "
                          "(SELECT count(*) FROM enrollments)")
        p = self.wb("test-send", "nurture", "--to", "sourcer@example.com", check=0)
        self.assertEqual(p.stdout.count("sent step"), 2)
        got = self.smtp.messages()
        self.assertEqual([m["rcpt_tos"] for m in got], [["sourcer@example.com"]] * 2)
        subjects = [str(m["msg"]["Subject"]) for m in got]
        self.assertTrue(all(s.startswith("[test] ") for s in subjects), subjects)
        names = {s.replace("[test] ", "").replace("Re: ", "").split(",")[0] for s in subjects}
        self.assertEqual(len(names), 1, subjects)  # one person, both steps
        self.assertEqual(self.sql("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM "
                                  "events), (SELECT count(*) FROM enrollments)"), before)
        self.wb("test-send", "nurture", "--to", "not an address", check=64)
        self.wb("test-send", "nurture", "--to", "x@example.com", "--email", "no@corp.example",
                check=65)


class ReplyToTest(harness.WbTestCase):
    def test_reply_to_with_a_display_name_renders(self):
        """Issue 18 defect 1: check-config accepted it and every message failed."""
        self.config(senders={"ana": {"from": "Ana Ruiz <ana@example.com>",
                                     "reply_to": "Ana Ruiz (Recruiting) <ana.r@example.com>"}})
        self.wb("check-config", check=0)
        self.wb("migrate", check=0)
        self.wb("import", harness.write(os.path.join(self.tmp, "p.csv"),
                                        "email,first_name,tags\nzoe@corp.example,Zoë,backend\n"),
                check=0)
        out = os.path.join(self.tmp, "z.eml")
        self.wb("preview", "nurture", "--email", "zoe@corp.example", "--out", out, check=0)
        msg = email.message_from_bytes(open(out, "rb").read(), policy=email.policy.default)
        addr = msg["Reply-To"].addresses[0]
        self.assertEqual((addr.display_name, addr.addr_spec),
                         ("Ana Ruiz (Recruiting)", "ana.r@example.com"))


if __name__ == "__main__":
    import unittest
    unittest.main()
