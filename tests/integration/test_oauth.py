"""The OAuth 2.0 half of issue 14 (SPEC "Every recruiter's own mailbox"):
the token keeper on a real loop (tests/drivers/drv_oauth) and
`warmbench login` against oauthd.py; and the test servers the daemon's
tests use: smtpd.py and Dovecot checking XOAUTH2/OAUTHBEARER bearer tokens
at oauthd's introspection endpoint, shown with plain curl."""
import hashlib
import json
import os
import signal
import stat
import subprocess
import threading
import time
import unittest

import harness
import imapd
import oauthd
from harness import WbTestCase, write
from daemon_util import SANITIZER_MARKS

HERE = os.path.dirname(os.path.abspath(__file__))
DRV = os.path.join(harness.BUILD, "tests", "drv_oauth")
ANA, BOB = "ana@example.com", "bob@example.com"


def h16(token):
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def write_token(path, refresh, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, json.dumps({"provider": "test", "refresh_token": refresh}).encode())
    os.close(fd)
    os.chmod(path, mode)


class Driver:
    """drv_oauth in the background; its JSON lines collected by a thread."""

    def __init__(self, server, tokens_dir, senders, log_path, db=None):
        cmd = [DRV, "--token-url", server.token_url, "--client-id", server.client_id,
               "--tokens-dir", tokens_dir]
        if db:
            cmd += ["--db", db]
        for s in senders:
            cmd += ["--sender", s]
        self.log_path = log_path
        self.lines = []
        self.other = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(log_path, "wb"), text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                if line.startswith("{"):
                    self.lines.append(json.loads(line))
                else:
                    self.other.append(line)

    def states(self, sender):
        with self.lock:
            return [x for x in self.lines if x["sender"] == sender]

    def last(self, sender):
        s = self.states(sender)
        return s[-1] if s else None

    def wait(self, pred, timeout=20, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s; driver log:\n%s" % (what, self.text()[-3000:]))

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def metrics(self):
        with self.lock:
            self.other = []
        self.send("metrics")
        self.wait(lambda: any(x.strip() == "end" for x in self.other), 5, "metrics")
        with self.lock:
            return "".join(self.other)

    def text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


class OAuthCase(WbTestCase):
    def setUp(self):
        super().setUp()
        self.srv = oauthd.OAuthServer(expires_in=3, device_polls=2, interval=1).start()
        self.addCleanup(self.srv.stop)
        self.tokens = os.path.join(self.tmp, "tokens")
        os.makedirs(self.tokens, mode=0o700)
        self.drivers = []
        self.addCleanup(self._finish)

    def _finish(self):
        problems = []
        for d in self.drivers:
            rc = d.stop()
            if rc != 0:
                problems.append("drv_oauth exited %d:\n%s" % (rc, d.text()[-4000:]))
            if any(m in d.text() for m in SANITIZER_MARKS):
                problems.append("sanitizer report:\n" + d.text()[-8000:])
        if problems:
            self.fail("\n\n".join(problems))

    def driver(self, senders, db=None):
        d = Driver(self.srv, self.tokens, senders, os.path.join(self.tmp, "drv.log"), db)
        self.drivers.append(d)
        return d

    def seed(self, sender, user, mode=0o600):
        rt = self.srv.add_refresh(user)
        write_token(os.path.join(self.tokens, sender + ".json"), rt, mode)
        return rt

    def assert_no_token_in(self, text, where):
        for t in self.srv.tokens():
            self.assertNotIn(t, text, "a token appears in " + where)

    def refreshes(self, user):
        return [r for r in self.srv.requests("/token")
                if r.get("grant_type") == "refresh_token" and r.get("user") == user]


class KeeperTest(OAuthCase):
    def test_renews_before_expiry_and_stores_rotation(self):
        self.seed("ana", ANA)
        d = self.driver(["ana"])
        t0 = time.time()
        d.wait(lambda: time.time() - t0 > 15, 20, "15 s")
        ok = [r for r in self.refreshes(ANA) if r["status"] == 200]
        # 3 s tokens renewed at 80%: a grant every 2.4 s or so.
        self.assertGreaterEqual(len(ok), 5, ok)
        renewals = [r for r in ok if "prev_left_s" in r]
        self.assertTrue(renewals and all(r["prev_left_s"] > 0 for r in renewals),
                        "a renewal came after the token expired: %r" % renewals)
        # After the first token, the keeper never lacked one.
        states = d.states("ana")
        first_ok = next(i for i, x in enumerate(states) if x["state"] == "ok")
        gaps = [x for x in states[first_ok:] if x["state"] != "ok" or not x["token"]]
        self.assertEqual(gaps, [])
        # The token held is the newest one issued; the file holds the newest
        # refresh token (each rotation stored), mode 0600.
        issued = self.srv.tokens()
        newest_at = [t for t in issued if t.startswith("at-")][-1]
        d.wait(lambda: d.last("ana")["token"] == h16(newest_at), 3, "newest token")
        path = os.path.join(self.tokens, "ana.json")
        d.wait(lambda: json.load(open(path))["refresh_token"] ==
               [t for t in self.srv.tokens() if t.startswith("rt-")][-1], 3, "rotation stored")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(d.stop(), 0)
        self.assert_no_token_in(d.text(), "the keeper's log")
        self.assertIn("access token renewed", d.text())

    def test_503_then_recovery(self):
        self.seed("ana", ANA)
        d = self.driver(["ana"])
        d.wait(lambda: (d.last("ana") or {}).get("state") == "ok", 10, "first token")
        self.srv.set(fail_503_s=6)
        d.wait(lambda: d.last("ana")["state"] == "waiting", 10, "waiting during the outage")
        self.assertIn("503", d.last("ana")["error"])
        self.assertIsNone(d.last("ana")["token"])
        d.wait(lambda: d.last("ana")["state"] == "ok", 25, "recovery after the outage")
        failed = [r for r in self.refreshes(ANA) if r["status"] == 503] + \
            [r for r in self.srv.requests("/token") if r["status"] == 503]
        self.assertTrue(failed)
        self.assertGreaterEqual(d.last("ana")["renew_failures"], 2)
        self.assertFalse(any(x["state"] == "needs_login" for x in d.states("ana")))
        # Backoff: the failed attempts were not a tight loop.
        t503 = [r["t"] for r in self.srv.requests("/token") if r["status"] == 503]
        self.assertLess(len(t503), 8, t503)

    def test_auth_failure_renews_once(self):
        self.seed("ana", ANA)
        d = self.driver(["ana"])
        d.wait(lambda: (d.last("ana") or {}).get("state") == "ok", 10, "first token")
        before = d.last("ana")["token"]
        n = len(self.refreshes(ANA))
        t = time.time()
        d.send("authfail ana")
        d.wait(lambda: d.last("ana")["token"] not in (None, before), 5, "a new token")
        self.assertLess(time.time() - t, 2.0)  # at once, not at the 80% mark
        self.assertEqual(len(self.refreshes(ANA)), n + 1)
        # The renewed token refused too: no second immediate renewal, a wait.
        d.send("authfail ana")
        d.wait(lambda: d.last("ana")["state"] == "waiting", 5, "waiting")
        self.assertIn("refused a token renewed", d.last("ana")["error"])
        self.assertEqual(d.last("ana")["auth_failures"], 2)
        m = d.metrics()
        self.assertIn('warmbench_oauth_auth_failures_total{sender="ana",provider="test"} 2', m)

    def test_loose_mode_is_a_configuration_error(self):
        self.seed("ana", ANA, mode=0o644)
        d = Driver(self.srv, self.tokens, ["ana"], os.path.join(self.tmp, "drv.log"))
        self.assertEqual(d.proc.wait(10), 78)
        path = os.path.join(self.tokens, "ana.json")
        self.assertIn(path + ": mode 0644 is looser than 0600", d.text())
        self.assertEqual(self.srv.requests("/token"), [])
        self.assert_no_token_in(d.text(), "the error")

    def test_loose_mode_later_means_needs_login(self):
        self.seed("ana", ANA)
        d = self.driver(["ana"])
        d.wait(lambda: (d.last("ana") or {}).get("state") == "ok", 10, "first token")
        d.wait(lambda: os.path.exists(os.path.join(self.tokens, "ana.json")), 5, "file")
        time.sleep(0.3)  # the rotation's write lands first
        os.chmod(os.path.join(self.tokens, "ana.json"), 0o640)
        d.wait(lambda: d.last("ana")["state"] == "needs_login", 10, "needs_login")
        self.assertIn("looser than 0600", d.last("ana")["error"])

    def test_missing_file_needs_login(self):
        d = self.driver(["ana"])
        d.wait(lambda: (d.last("ana") or {}).get("state") == "needs_login", 5, "needs_login")
        self.assertIn("no token file", d.last("ana")["error"])
        self.assertEqual(self.srv.requests("/token"), [])


class LoginTest(OAuthCase):
    def login_config(self):
        prov = {"test": {"token_url": self.srv.token_url, "device_url": self.srv.device_url,
                         "client_id": self.srv.client_id, "scope": "mail",
                         "tokens_dir": "tokens"}}
        senders = {
            "ana": {"from": "Ana <%s>" % ANA, "daily_limit": 1000,
                    "smtp": {"username": ANA, "auth": "xoauth2", "oauth": "test"}},
            "bob": {"from": "Bob <%s>" % BOB, "daily_limit": 1000,
                    "smtp": {"username": BOB, "auth": "oauthbearer", "oauth": "test"}},
            "carl": {"from": "Carl <carl@example.com>", "daily_limit": 1000},
        }
        self.config(oauth=prov, senders=senders)
        self.wb("migrate", check=0)

    def test_invalid_grant_needs_login_then_login(self):
        self.login_config()
        self.seed("ana", ANA)
        self.seed("bob", BOB)
        d = self.driver(["ana", "bob"], db=self.db)
        d.wait(lambda: (d.last("ana") or {}).get("state") == "ok" and
               (d.last("bob") or {}).get("state") == "ok", 10, "both ok")
        self.srv.revoke(ANA)  # the user withdrew consent: invalid_grant
        d.wait(lambda: d.last("ana")["state"] == "needs_login", 10, "needs_login")
        self.assertIsNone(d.last("ana")["token"])
        self.assertIn("invalid_grant", d.last("ana")["error"])
        self.assertIn("needs_login", d.text())
        self.assertIn("warmbench login ana", d.text())
        d.wait(lambda: self.sql("SELECT state FROM sender_state WHERE sender = 'ana'") ==
               [["needs_login"]], 5, "sender_state row")
        self.assertIn('warmbench_sender_oauth_state{sender="ana",provider="test",'
                      'state="needs_login"} 1', d.metrics())
        # The other sender goes on renewing.
        n = len(self.refreshes(BOB))
        d.wait(lambda: len(self.refreshes(BOB)) >= n + 2, 10, "bob renewing")
        self.assertEqual(d.last("bob")["state"], "ok")
        # warmbench login: the device grant approves after two polls.
        self.srv.set(device_user=ANA)
        t = time.time()
        p = self.wb("login", "ana", check=0)
        self.assertIn("enter the code", p.stdout)
        self.assertIn(self.srv.url("/device/verify"), p.stdout)
        polls = [r for r in self.srv.requests("/token") if r["grant_type"].endswith("device_code")]
        self.assertEqual([r.get("error") for r in polls], ["authorization_pending"] * 2 + [None])
        self.assertGreater(polls[1]["t"] - polls[0]["t"], 0.9)  # the interval was kept
        self.assertLess(time.time() - t, 10)
        path = os.path.join(self.tokens, "ana.json")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        # The running keeper notices the new file without a restart.
        d.wait(lambda: d.last("ana")["state"] == "ok" and d.last("ana")["token"], 10,
               "ok again after the login")
        d.wait(lambda: self.sql("SELECT state FROM sender_state WHERE sender = 'ana'") ==
               [["ok"]], 5, "sender_state ok")
        self.assertEqual(d.stop(), 0)
        self.assert_no_token_in(d.text() + p.stdout + p.stderr, "the log or the login output")

    def test_login_honours_slow_down(self):
        self.login_config()
        self.srv.set(device_user=BOB, slow_down_next=1, device_polls=1)
        p = self.wb("login", "bob", check=0)
        polls = [r for r in self.srv.requests("/token") if r["grant_type"].endswith("device_code")]
        self.assertEqual([r.get("error") for r in polls],
                         ["slow_down", "authorization_pending", None])
        # slow_down adds 5 s to the interval (RFC 8628 3.5)
        self.assertGreater(polls[1]["t"] - polls[0]["t"], 5.5)
        self.assertIn("Signed in", p.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.tokens, "bob.json")))

    def test_login_denied_and_bad_senders(self):
        self.login_config()
        self.srv.set(deny=True)
        p = self.wb("login", "ana", check=1)
        self.assertIn("refused", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tokens, "ana.json")))
        p = self.wb("login", "nobody", check=64)
        self.assertIn('unknown sender "nobody"', p.stderr)
        p = self.wb("login", "carl", check=64)
        self.assertIn("uses no OAuth", p.stderr)
        self.wb("login", check=64)


class ServersTest(unittest.TestCase):
    """smtpd.py and Dovecot accept a live token and refuse an expired one."""

    def setUp(self):
        self.srv = oauthd.OAuthServer(expires_in=2).start()
        self.addCleanup(self.srv.stop)
        import tempfile
        import shutil
        self.tmp = tempfile.mkdtemp(prefix="wbo-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def curl(self, config):
        # The token goes in a config on stdin (-K -), never in argv.
        return subprocess.run(["curl", "-sS", "-v", "--max-time", "10", "-K", "-"], input=config,
                              capture_output=True, text=True, timeout=30)

    def test_smtpd_xoauth2_and_oauthbearer(self):
        port = harness.free_port()
        out = os.path.join(self.tmp, "smtp")
        mail = write(os.path.join(self.tmp, "mail.txt"),
                     "From: %s\r\nTo: x@example.org\r\nSubject: t\r\n\r\nhi\r\n" % ANA)
        for mechs, mech in (("XOAUTH2", "XOAUTH2"), ("XOAUTH2,OAUTHBEARER", "OAUTHBEARER")):
            p = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "smtpd.py"), "--port",
                                  str(port), "--outdir", out, "--oauth-introspect",
                                  self.srv.introspect_url, "--oauth-mechanisms", mechs],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.addCleanup(p.kill)
            self.assertEqual(p.stdout.readline().strip(), "READY")

            def send(tok):
                return self.curl('url = "smtp://127.0.0.1:%d/client.test"\nmail-from = "%s"\n'
                                 'mail-rcpt = "x@example.org"\nupload-file = "%s"\n'
                                 'user = "%s:"\noauth2-bearer = "%s"\n' % (port, ANA, mail, ANA, tok))
            tok = self.srv.issue_access(ANA)
            r = send(tok)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("> AUTH " + mech, r.stderr)
            time.sleep(2.2)
            r = send(tok)  # expired now
            self.assertEqual(r.returncode, 67, r.stderr)
            self.assertIn("535 5.7.8", r.stderr)
            p.terminate()
            p.wait(10)
        with open(os.path.join(out, "000001.json")) as f:
            self.assertEqual(json.load(f)["auth_user"], ANA)
        with open(os.path.join(out, "stats.json")) as f:
            st = json.load(f)
        self.assertEqual((st["messages"], st["auth_ok"], st["auth_failed"]), (1, 1, 1))

    def test_dovecot_oauth2_passdb(self):
        dv = imapd.Dovecot(user=ANA, oauth_introspect_url=self.srv.introspect_url).start()
        self.addCleanup(dv.stop)
        dv.deliver(imapd.message([("From", BOB), ("Subject", "hello")], "hi"))

        def fetch(tok, login_options=""):
            user = ANA.replace("@", "%40")
            return self.curl('url = "imap://%s%s@127.0.0.1:%d/INBOX;UID=1"\noauth2-bearer = "%s"\n'
                             % (user, login_options, dv.port, tok))
        tok = self.srv.issue_access(ANA)
        r = fetch(tok)
        self.assertEqual(r.returncode, 0, r.stderr + dv.log())
        self.assertIn("Subject: hello", r.stdout)
        self.assertIn("AUTHENTICATE OAUTHBEARER", r.stderr)
        other = self.srv.issue_access(BOB)  # a live token of someone else
        self.assertEqual(fetch(other).returncode, 67)
        time.sleep(2.2)
        r = fetch(tok)
        self.assertEqual(r.returncode, 67, r.stderr)
        # XOAUTH2 alone offered: curl uses it.
        dv2 = imapd.Dovecot(user=ANA, oauth_introspect_url=self.srv.introspect_url,
                            oauth_mechanisms="xoauth2").start()
        self.addCleanup(dv2.stop)
        dv2.deliver(imapd.message([("From", BOB), ("Subject", "second")], "hi"))
        dv = dv2
        r = fetch(self.srv.issue_access(ANA))
        self.assertEqual(r.returncode, 0, r.stderr + dv2.log())
        self.assertIn("AUTHENTICATE XOAUTH2", r.stderr)
        self.assertIn("Subject: second", r.stdout)
        active = [r["active"] for r in self.srv.requests("/introspect")]
        self.assertIn(True, active)
        self.assertIn(False, active)


if __name__ == "__main__":
    unittest.main()
