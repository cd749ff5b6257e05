"""Every recruiter's own mailbox, sending half (issue 14): warmbenchd sends
each sender's mail through that sender's own SMTP server, logged in with
SASL XOAUTH2 and the access token the daemon's token keeper got from the
OAuth test server (oauthd.py); the SMTP servers check each token there.
Tokens live 3 seconds, so renewals happen while mail goes out; a revoked
refresh token puts one sender in needs_login while the other goes on, and
`warmbench login` (the device grant) lets its waiting mail go, once."""
import json
import os
import subprocess
import time

import harness
import imapd
from daemon_util import Daemon, Smtpd, wait_until
from oauthd import OAuthServer

# WB_OAUTH_LONG=1: the full lengths (2 minutes of sending with
# 5-second tokens, the token endpoint down 20 s); make check runs the short
# ones, the same paths.
LONG = os.environ.get("WB_OAUTH_LONG") == "1"
TOKEN_S = 5 if LONG else 3
SEND_N = 120 if LONG else 12
DOWN_S = 20 if LONG else 6

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "00:00", "end": "24:00", "timezone": "UTC"}


def sequence(sid, sender, tag):
    # Step 2 is a day away: a reply before it stops the enrollment.
    return {"id": sid, "sender": sender, "audience": {"tags_any": [tag]}, "window": WINDOW,
            "links": {"apply": "https://example.com/jobs/backend"},
            "stop_on": ["reply", "unsubscribe", "bounce"],
            "steps": [{"after": "0s", "subject": "Hello {{first_name}}",
                       "text": "intro.txt", "html": "intro.html"},
                      {"after": "1d", "subject": "Re: Hello {{first_name}}",
                       "text": "follow-up.txt", "thread": True}]}


class OAuthSendTest(harness.WbTestCase):
    def start_all(self, per_sender, min_interval_s=0, token_503_s=0, mailboxes=False):
        self.oauth = OAuthServer(expires_in=TOKEN_S, device_polls=2, interval=1).start()
        self.addCleanup(self.oauth.stop)
        if token_503_s:
            self.oauth.set(fail_503_s=token_503_s)
        self.smtp = {}
        self.imap = {}
        senders = {}
        tokens = os.path.join(self.tmp, "tokens")
        os.makedirs(tokens, mode=0o700)
        for name in ("ana", "ben"):
            s = Smtpd("--oauth-introspect", self.oauth.introspect_url,
                      "--oauth-mechanisms", "XOAUTH2").start()
            self.addCleanup(s.cleanup)
            self.smtp[name] = s
            user = "%s@example.com" % name
            senders[name] = {"from": "%s <%s>" % (name.title(), user), "daily_limit": 0,
                             "min_interval_s": min_interval_s,
                             "smtp": {"url": s.url, "username": user, "auth": "xoauth2",
                                      "oauth": "test", "connections": 2}}
            if mailboxes:
                imap = imapd.Dovecot(user=user, oauth_introspect_url=self.oauth.introspect_url)
                imap.start()
                self.addCleanup(imap.stop)
                self.imap[name] = imap
                senders[name]["mailbox"] = {"url": imap.url(), "username": user,
                                            "auth": "xoauth2", "oauth": "test", "poll_s": 1,
                                            "tls": "off"}
            rt = self.oauth.add_refresh(user)
            harness.write(os.path.join(tokens, name + ".json"),
                          json.dumps({"provider": "test", "refresh_token": rt,
                                      "updated_at": "2026-12-06T00:00:00Z"}), 0o600)
        self.config(sequences=[sequence("for-ana", "ana", "a"), sequence("for-ben", "ben", "b")],
                    smtp={"url": "smtp://127.0.0.1:9", "tls": "off", "connections": 1,
                          "timeout_s": 10, "retry_base_s": 1},
                    senders=senders,
                    oauth={"test": {"token_url": self.oauth.token_url,
                                    "device_url": self.oauth.device_url,
                                    "client_id": "wb-test", "scope": "mail",
                                    "tokens_dir": "tokens"}})
        self.wb("migrate", check=0)
        rows = ["email,first_name,tags,consent"]
        for name, tag in (("ana", "a"), ("ben", "b")):
            rows += ["%s-%02d@corp.example,P%d,%s,opt_in" % (name, i, i, tag)
                     for i in range(per_sender)]
        pool = harness.write(os.path.join(self.tmp, "pool.csv"), "\n".join(rows) + "\n")
        self.wb("import", pool, check=0)
        self.wb("enroll", "for-ana", check=0)
        self.wb("enroll", "for-ben", check=0)
        self.d = Daemon(self.cfg_path, os.path.join(self.tmp, "d.log")).start()
        self.addCleanup(lambda: self.d.alive() and self.d.stop())

    def assert_delivered_once(self, name, n):
        got = self.smtp[name].messages()
        self.assertEqual(len(got), n, name)
        ids = [m["msg"]["Message-ID"] for m in got]
        self.assertEqual(len(set(ids)), n, "a message went twice")
        for m in got:
            self.assertEqual(m["auth_user"], "%s@example.com" % name)
            self.assertTrue(all(r.startswith(name + "-") for r in m["rcpt_tos"]), m["rcpt_tos"])
            self.assertEqual(m["msg"]["Feedback-ID"], "1:for-%s:%s:warmbench" % (name, name))

    def test_two_senders_tokens_renewed_while_sending(self):
        # One mail a second per sender, for SEND_N s: tokens live TOKEN_S s.
        self.start_all(SEND_N, min_interval_s=1)
        wait_until(lambda: self.smtp["ana"].count() >= SEND_N and
                   self.smtp["ben"].count() >= SEND_N, SEND_N + 60,
                   "every mail through its sender's own server")
        self.assert_delivered_once("ana", SEND_N)
        self.assert_delivered_once("ben", SEND_N)
        wait_until(lambda: self.scalar("SELECT count(*) FROM messages WHERE state = 'sent'")
                   == str(2 * SEND_N), 10, "all sent")
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE state <> 'sent'"), "0")
        for user in ("ana@example.com", "ben@example.com"):
            renewals = [r for r in self.oauth.requests("/token")
                        if r.get("user") == user and r.get("grant_type") == "refresh_token"]
            ahead = [r for r in renewals if r.get("prev_left_s", 0) > 0]
            self.assertGreaterEqual(len(ahead), 2, (user, renewals))
        log = self.d.text()
        for t in self.oauth.tokens():
            self.assertNotIn(t, log)
        metrics = self.metrics()
        self.assertIn('warmbench_oauth_token_renewals_total{sender="ana",provider="test"}', metrics)
        self.assertIn('warmbench_sender_sent_today{sender="ben"} %d' % SEND_N, metrics)
        self.assertIn('warmbench_sender_oauth_state{sender="ana",provider="test",state="ok"} 1',
                      metrics)

    def test_replies_read_from_each_senders_mailbox_once(self):
        self.start_all(1, mailboxes=True)
        wait_until(lambda: self.smtp["ana"].count() >= 1 and self.smtp["ben"].count() >= 1,
                   30, "one mail per sender")
        got = self.smtp["ben"].messages()[0]["msg"]
        reply = imapd.message(
            [("From", "P0 <ben-00@corp.example>"), ("To", "ben@example.com"),
             ("Cc", "ana@example.com"), ("Subject", "Re: " + str(got["Subject"])),
             ("In-Reply-To", got["Message-ID"]), ("References", got["Message-ID"]),
             ("Message-ID", "<reply-all-1@corp.example>")],
            "Yes, I am interested, let's talk next week.\n")
        # Replied to all: the same mail lands in both senders' mailboxes.
        self.imap["ben"].deliver(reply)
        self.imap["ana"].deliver(reply)
        wait_until(lambda: self.scalar(
            "SELECT count(*) FROM mailbox_state WHERE last_uid >= 1") == "2", 30,
            "both mailboxes read, each with its own token")
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE type = 'reply'"), "1")
        # The reply ends ben's enrollment (handed to the ATS when it reads as interested).
        self.assertIn(self.scalar(
            "SELECT e.state || ':' || e.stop_reason FROM enrollments e "
            "JOIN candidates c ON c.id = e.candidate_id WHERE c.email = 'ben-00@corp.example'"),
            ("stopped:reply", "handed_off:reply"))
        self.assertEqual(self.scalar(
            "SELECT state FROM enrollments e JOIN candidates c ON c.id = e.candidate_id "
            "WHERE c.email = 'ana-00@corp.example'"), "active")
        keys = self.scalar("SELECT string_agg(mailbox, ' ' ORDER BY mailbox) FROM mailbox_state")
        self.assertIn("#ana@example.com", keys)
        self.assertIn("#ben@example.com", keys)

    def test_check_config_token_files(self):
        tokens = os.path.join(self.tmp, "tokens")
        os.makedirs(tokens, mode=0o700)
        smtp = {"url": "smtp://127.0.0.1:9", "username": "ana@example.com", "auth": "xoauth2",
                "oauth": "test"}
        self.config(senders={"ana": {"from": "Ana <ana@example.com>", "smtp": smtp}},
                    oauth={"test": {"token_url": "http://127.0.0.1:9/token",
                                    "client_id": "wb-test", "tokens_dir": "tokens"}})
        p = self.wb("check-config", check=0)
        self.assertIn("warmbench login ana", p.stderr)
        path = harness.write(os.path.join(tokens, "ana.json"),
                             json.dumps({"provider": "test", "refresh_token": "rt-secret-1"}),
                             0o644)
        p = self.wb("check-config", check=78)
        self.assertIn(path, p.stderr)
        self.assertNotIn("rt-secret-1", p.stdout + p.stderr)
        os.chmod(path, 0o600)
        p = self.wb("check-config", check=0)
        self.assertNotIn("login", p.stdout + p.stderr)

    def metrics(self):
        import urllib.request
        cfg = json.load(open(self.cfg_path))
        with urllib.request.urlopen("http://%s/metrics" % cfg["http"]["listen"]) as r:
            return r.read().decode()

    def test_token_endpoint_down_then_back(self):
        # The token endpoint answers 503 for the daemon's first DOWN_S s: mail waits.
        t0 = time.time()
        self.start_all(4, token_503_s=DOWN_S)
        wait_until(lambda: self.smtp["ana"].count() >= 4 and self.smtp["ben"].count() >= 4,
                   DOWN_S + 40, "mail once tokens come")
        self.assertGreaterEqual(time.time() - t0, DOWN_S - 1)
        self.assert_delivered_once("ana", 4)
        self.assert_delivered_once("ben", 4)
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE state = 'failed'"), "0")

    def test_invalid_grant_needs_login_then_login(self):
        self.start_all(0)
        self.d.stop()
        self.oauth.revoke("ana@example.com")  # ana's refresh token is dead: invalid_grant
        rows = "email,first_name,tags,consent\n" + "".join(
            "%s-%d@corp.example,X%d,%s,opt_in\n" % (n, i, i, t)
            for n, t in (("ana", "a"), ("ben", "b")) for i in range(3))
        self.wb("import", harness.write(os.path.join(self.tmp, "more.csv"), rows), check=0)
        self.wb("enroll", "for-ana", check=0)
        self.wb("enroll", "for-ben", check=0)
        self.d = Daemon(self.cfg_path, os.path.join(self.tmp, "d2.log")).start()
        wait_until(lambda: self.smtp["ben"].count() >= 3, 30, "ben goes on")
        self.d.wait_log("needs_login", timeout=20)
        out = json.loads(self.wb("senders", "--json", check=0).stdout)
        rows = out["senders"] if isinstance(out, dict) else out
        state = {r.get("sender", r.get("id", r.get("name"))): r["state"] for r in rows}
        self.assertEqual(state["ana"], "needs_login")
        self.assertEqual(state["ben"], "ok")
        time.sleep(2)
        self.assertEqual(self.smtp["ana"].count(), 0)
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE state = 'failed'"), "0")
        self.oauth.set(device_user="ana@example.com")
        login = self.wb("login", "ana", check=0)
        self.assertIn("code", login.stdout.lower())
        wait_until(lambda: self.smtp["ana"].count() >= 3, 30, "ana's waiting mail after login")
        time.sleep(1)
        self.assert_delivered_once("ana", 3)
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE state = 'failed'"), "0")


if __name__ == "__main__":
    import unittest
    unittest.main()
