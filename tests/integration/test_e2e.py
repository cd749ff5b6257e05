"""The whole path through the programs a user runs: warmbenchd sends step 1
over SMTP (aiosmtpd), the person answers to the Message-ID they received
(Dovecot), warmbenchd's poller records the reply, the sequence stops before
step 2, and the handoff reaches the ATS receiver, signed."""
import json
import os
import re
import time
import urllib.error
import urllib.request

import harness
import imapd
from daemon_util import Daemon, SANITIZER_MARKS, Smtpd, wait_until
from test_handoff import ATS_SECRET, Receiver

SEQUENCE = dict(harness.DEFAULT_SEQUENCE,
                window={"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "start": "00:00", "end": "24:00", "timezone": "UTC"},
                steps=[dict(harness.DEFAULT_SEQUENCE["steps"][0], after="0s"),
                       dict(harness.DEFAULT_SEQUENCE["steps"][1], after="8s")],
                stop_on=["reply", "unsubscribe", "bounce"], handoff_on=["reply:interested"])


class EndToEndTest(harness.WbTestCase):
    def test_send_reply_stop_handoff(self):
        smtp = Smtpd().start()
        self.addCleanup(smtp.cleanup)
        imap = imapd.Dovecot().start()
        self.addCleanup(imap.stop)
        harness.write(os.path.join(self.tmp, "imap.pw"), imap.password + "\n", 0o600)
        ats_key = harness.write(os.path.join(self.tmp, "ats.key"), ATS_SECRET + "\n", 0o600)
        ats = Receiver(self.tmp, ats_key)
        self.addCleanup(ats.stop)
        port = harness.free_port()
        self.config(sequences=[SEQUENCE],
                    http={"listen": "127.0.0.1:%d" % port,
                          "public_url": "http://127.0.0.1:%d" % port, "machine_click_s": 0},
                    smtp={"url": smtp.url, "tls": "off", "connections": 2, "timeout_s": 5,
                          "retry_base_s": 1},
                    mailbox={"url": imap.url(), "username": imap.user,
                             "password_file": "imap.pw", "poll_s": 1, "tls": "off"},
                    ats={"webhook_url": ats.url(), "secret_file": "ats.key",
                         "retry_base_s": 1})
        self.wb("migrate", check=0)
        pool = harness.write(os.path.join(self.tmp, "pool.csv"),
                             "email,first_name,tags,consent\n"
                             "ines@corp.example,Inés,backend,opt_in\n"
                             "olaf@corp.example,Olaf,backend,opt_in\n"
                             "uma@corp.example,Uma,backend,opt_in\n")
        self.wb("import", pool, check=0)
        self.wb("enroll", "nurture", check=0)
        d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: d.alive() and d.stop())
        wait_until(lambda: smtp.count() >= 3, 20, "step 1 to all three")

        # Uma unsubscribes with one click (RFC 8058), as her mail client would.
        uma = next(m["msg"] for m in smtp.messages() if "uma@" in str(m["msg"]["To"]))
        self.assertEqual(uma["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        unsub = re.match(r"<(.+)>", uma["List-Unsubscribe"]).group(1)
        req = urllib.request.Request(unsub, data=b"List-Unsubscribe=One-Click", method="POST")
        with urllib.request.urlopen(req) as r:
            self.assertEqual(r.status, 200)
        self.assertEqual(self.scalar("SELECT reason FROM suppressions"), "unsubscribe")

        # Inés answers the mail she got, as her mail client would.
        ines = next(m["msg"] for m in smtp.messages() if "ines@" in str(m["msg"]["To"]))
        # She opens it and clicks the role's link (tracked, redirected).
        html = ines.get_body(("html",)).get_content()
        pixel = re.search(r'src="(http://[^"]+/o/[^"]+\.gif)"', html).group(1)
        link = re.search(r'href="(http://[^"]+/c/[^"]+)"', html).group(1)
        ua = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
        with urllib.request.urlopen(urllib.request.Request(pixel, headers=ua)) as r:
            self.assertEqual(r.headers["Content-Type"], "image/gif")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        try:
            urllib.request.build_opener(NoRedirect).open(urllib.request.Request(link, headers=ua))
            self.fail("no redirect")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 302)
            self.assertEqual(e.headers["Location"], "https://example.com/jobs/backend")
        imap.deliver(imapd.message(
            [("From", "Inés <ines@corp.example>"), ("To", "ana@example.com"),
             ("Subject", "Re: " + str(ines["Subject"])),
             ("In-Reply-To", ines["Message-ID"]), ("References", ines["Message-ID"]),
             ("Message-ID", "<reply-1@corp.example>")],
            "Sounds good, I am interested. Let's talk Thursday.\n\nInés\n"))

        wait_until(lambda: self.scalar("SELECT state FROM handoffs") == "delivered", 30,
                   "handoff delivered")
        self.assertEqual(self.scalar(
            "SELECT e.state || ':' || e.stop_reason FROM enrollments e JOIN candidates c"
            " ON c.id = e.candidate_id WHERE c.email = 'ines@corp.example'"),
            "handed_off:reply:interested")
        reply = self.sql("SELECT v.detail->>'intent' FROM events v JOIN candidates c"
                         " ON c.id = v.candidate_id WHERE v.type = 'reply'")
        self.assertEqual(reply, [["interested"]])
        body = json.loads(ats.requests()[0]["body"])
        self.assertTrue(ats.requests()[0]["sig_ok"])
        self.assertEqual(body["candidate"]["email"], "ines@corp.example")
        self.assertEqual(body["reason"], "reply:interested")

        # Olaf gets step 2; Inés (handed off) and Uma (unsubscribed) never do.
        wait_until(lambda: smtp.count() >= 4, 30, "step 2 to Olaf")
        time.sleep(1)
        d.stop()
        to = sorted(str(m["msg"]["To"]) for m in smtp.messages())
        self.assertEqual(len(to), 4, to)
        self.assertEqual(sum("ines@" in t for t in to), 1, to)
        self.assertEqual(sum("uma@" in t for t in to), 1, to)
        self.assertEqual(sum("olaf@" in t for t in to), 2, to)
        stats = json.loads(self.wb("stats", "--json", check=0).stdout)["sequences"][0]
        self.assertEqual((stats["sent"], stats["opened"], stats["clicked"], stats["replied"],
                          stats["handed_off"], stats["unsubscribed"]), (3, 1, 1, 1, 1, 1))
        self.assertEqual([st["sent"] for st in stats["steps"]], [3, 1])
        self.assertEqual(stats["links"], {"apply": 1})
        self.assertAlmostEqual(stats["rates"]["reply"], 1 / 3, places=3)
        self.assertAlmostEqual(stats["rates"]["unsubscribe"], 1 / 3, places=3)
        self.assertFalse(any(m in d.text() for m in SANITIZER_MARKS), d.text()[-4000:])
