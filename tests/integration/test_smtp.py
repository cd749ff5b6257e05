"""wb_smtp + wb_mail against a real SMTP server (tests/integration/smtpd.py):
what arrives, connection reuse, and how refusals are classified."""
import email
import email.policy
import email.utils
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness

DRV = os.path.join(harness.BUILD, "tests", "drv_smtp")
SMTPD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtpd.py")
LONG = ("a long line that goes on and on well beyond seventy-six characters, with ünïcödé "
        "in it, so quoted-printable must wrap it softly")


def expected_text(i):
    return (f"Hello Zoë {i},\n.a line starting with a dot\nFrom the start of a line\n"
            f"trailing space \n= equals and tab\t\n{LONG}\nBye\n")


def expected_subject(i):
    if i % 2:
        return f"Hello {i}  X-Injected: yes"
    return (f"Café ☕ n°{i} — a subject long enough to need more than one encoded word, "
            "façade déjà vu")


class SmtpServer:
    def __init__(self, *args):
        self.port = harness.free_port()
        self.dir = tempfile.mkdtemp(prefix="wbsmtp-")
        self.proc = subprocess.Popen(["/usr/bin/python3", SMTPD, "--port", str(self.port),
                                      "--outdir", self.dir] + list(args),
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError("smtpd did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def stats(self):
        with open(os.path.join(self.dir, "stats.json")) as f:
            return json.load(f)

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".eml"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    raw = f.read()
                with open(os.path.join(self.dir, name[:-4] + ".json")) as f:
                    env = json.load(f)
                out.append((raw, env))
        return out


def run_driver(url, n, k, timeout=10, *extra):
    p = subprocess.run([DRV, url, str(n), str(k), "example.org", str(timeout)] + list(extra),
                       capture_output=True, text=True, timeout=120)
    results = {}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            _, i, outcome, code, secs, reply = (line.split(" ", 5) + [""])[:6]
            results[int(i)] = (outcome, int(code), float(secs), reply)
    return p, results


class SmtpTest(unittest.TestCase):
    def server(self, *args):
        s = SmtpServer(*args)
        self.addCleanup(s.stop)
        return s

    def url(self, s):
        return f"smtp://127.0.0.1:{s.port}"

    def test_messages_arrive_intact_over_reused_connections(self):
        n, k = 12, 3
        s = self.server()
        p, res = run_driver(self.url(s), n, k)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertEqual(sorted(res), list(range(n)))
        for i, (outcome, code, secs, reply) in res.items():
            self.assertEqual((outcome, code), ("SENT", 250), reply)
            self.assertTrue(reply.startswith("250 2.0.0 Ok: queued as"), reply)
            self.assertGreaterEqual(secs, 0.0)
        st = s.stats()
        self.assertEqual(st["messages"], n)
        self.assertLessEqual(st["max_concurrent"], k)
        self.assertLessEqual(st["connections"], k)
        self.assertLess(st["connections"], n)  # reuse

        seen = set()
        for raw, env in s.messages():
            self.check_raw_headers(raw)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            i = int(re.fullmatch(r"<wb-(\d+)@example.com>", msg["Message-ID"]).group(1))
            seen.add(i)
            self.check_message(i, msg, env)
        self.assertEqual(seen, set(range(n)))

    def check_raw_headers(self, raw):
        head = raw.split(b"\r\n\r\n", 1)[0]
        self.assertNotIn(b"\n", head.replace(b"\r\n", b""))
        for line in head.split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
            for word in re.findall(rb"=\?[^?]+\?[BQ]\?[^?]*\?=", line):
                self.assertLessEqual(len(word), 75)
        self.assertEqual(len(re.findall(rb"(?im)^mime-version:", head)), 1)

    def check_message(self, i, msg, env):
        names = {k.lower() for k in msg.keys()}
        want = {"date", "from", "reply-to", "to", "subject", "message-id", "mime-version",
                "content-type", "list-unsubscribe", "list-unsubscribe-post"}
        if i % 2:
            want |= {"in-reply-to", "references"}
        if i % 4 == 3:
            want.add("content-transfer-encoding")
        self.assertEqual(names, want)  # the injections added nothing
        self.assertNotIn("bcc", names)
        self.assertNotIn("x-injected", names)
        self.assertEqual(msg["From"].addresses[0].display_name, "Ana Ruíz")
        self.assertEqual(msg["From"].addresses[0].addr_spec, "ana@example.com")
        self.assertEqual(msg["Reply-To"].addresses[0].addr_spec, "ana@example.com")
        to = msg["To"].addresses
        self.assertEqual(len(to), 1)
        self.assertEqual(to[0].addr_spec, f"user{i}@example.org")
        self.assertEqual(to[0].display_name,
                         "Evil  Bcc: victim@example.com" if i % 2 else "Zoë \"the dev\" O'Brien")
        self.assertEqual(str(msg["Subject"]), expected_subject(i))
        if i % 2 == 0:
            self.assertIn("=?UTF-8?B?", raw_header(msg, "Subject"))
            self.assertIn("=?UTF-8?B?", raw_header(msg, "To"))
        self.assertEqual(email.utils.parsedate_to_datetime(msg["Date"]).timestamp(),
                         1700000000 + i)
        if i % 2:
            self.assertEqual(msg["In-Reply-To"], "<wb-0@example.com>")
            self.assertEqual(msg["References"], "<wb-0@example.com>")
        m = re.fullmatch(r"<https://go.example.com/u/([A-Za-z0-9_-]{34})>", msg["List-Unsubscribe"])
        self.assertIsNotNone(m, msg["List-Unsubscribe"])
        self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        self.assertRegex(env["mail_from"], r"^b\+[a-z2-7]{40}@bounces\.example\.com$")
        self.assertEqual(env["rcpt_tos"], [f"user{i}@example.org"])

        text = expected_text(i)
        html = (f"<p>Hello Zoë {i},</p><p><a href=\"https://go.example.com/u/{m.group(1)}\">"
                "unsubscribe</a></p>\n")
        if i % 4 == 3:
            self.assertEqual(msg.get_content_type(), "text/plain")
            self.assertEqual(msg["Content-Transfer-Encoding"], "quoted-printable")
            self.assertEqual(msg.get_content_charset(), "utf-8")
            self.assertEqual(norm(msg.get_content()), text)
            return
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "text/html"])
        for part, want_body in zip(parts, (text, html)):
            self.assertEqual(part["Content-Transfer-Encoding"], "quoted-printable")
            self.assertEqual(part.get_content_charset(), "utf-8")
            self.assertEqual(norm(part.get_content()), want_body)

    def test_451_is_tempfail(self):
        s = self.server("--fail-rate", "1", "--fail-code", "451")
        p, res = run_driver(self.url(s), 3, 2)
        self.assertEqual(p.returncode, 0, p.stderr)
        for outcome, code, _, reply in res.values():
            self.assertEqual((outcome, code), ("TEMPFAIL", 451), reply)
            self.assertTrue(reply.startswith("451 4.3.0"), reply)
        self.assertEqual(s.stats()["messages"], 0)

    def test_550_511_on_recipient_is_hardbounce(self):
        s = self.server("--reject-rcpt-regex", r"^user1@", "--reject-code", "550",
                        "--reject-status", "5.1.1")
        p, res = run_driver(self.url(s), 4, 2)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(res[1][:2], ("HARDBOUNCE", 550))
        self.assertIn("5.1.1", res[1][3])
        for i in (0, 2, 3):
            self.assertEqual(res[i][0], "SENT", res[i])
        self.assertEqual(s.stats()["messages"], 3)

    def test_550_other_status_on_recipient_is_permfail(self):
        s = self.server("--reject-rcpt-regex", r"^user0@", "--reject-status", "5.7.1")
        p, res = run_driver(self.url(s), 2, 1)
        self.assertEqual(res[0][:2], ("PERMFAIL", 550))
        self.assertEqual(res[1][0], "SENT")

    def test_554_after_data_is_permfail(self):
        s = self.server("--fail-rate", "1", "--fail-code", "554")
        p, res = run_driver(self.url(s), 2, 1)
        self.assertEqual(p.returncode, 0, p.stderr)
        for outcome, code, _, reply in res.values():
            self.assertEqual((outcome, code), ("PERMFAIL", 554), reply)
            self.assertTrue(reply.startswith("554 5.7.1"), reply)

    def test_server_absent_is_tempfail(self):
        port = harness.free_port()
        p, res = run_driver(f"smtp://127.0.0.1:{port}", 2, 1, timeout=5)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(res), 2)
        for outcome, code, _, reply in res.values():
            self.assertEqual((outcome, code), ("TEMPFAIL", 0), reply)
            self.assertTrue(reply, "the reply names the connection failure")

    def test_hangup_after_data_is_uncertain_tempfail(self):
        s = self.server("--drop-after-data")
        p, res = run_driver(self.url(s), 2, 1)
        self.assertEqual(p.returncode, 0, p.stderr)
        for outcome, code, _, reply in res.values():
            self.assertEqual((outcome, code), ("TEMPFAIL?", 0), reply)

    def test_free_from_done_cancels_the_rest(self):
        s = self.server()
        p, res = run_driver(self.url(s), 8, 3, 10, "abort")
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertEqual(len(res), 1)
        self.assertIn("DONE 7 left 0 inflight", p.stdout)


def norm(s):
    return s.replace("\r\n", "\n")


def raw_header(msg, name):
    for k, v in msg.raw_items():
        if k.lower() == name.lower():
            return v
    return ""


if __name__ == "__main__":
    unittest.main()
