"""`warmbench check-config`: a summary and exit 0 for a good configuration;
every problem as `file:line:column: message` and exit 78 otherwise."""
import copy
import json
import os
import subprocess

import harness


def seq(**over):
    s = copy.deepcopy(harness.DEFAULT_SEQUENCE)
    s.update(over)
    return s


class ConfigCase(harness.WbTestCase):
    """Places and failures of check-config (no tests of its own)."""

    def at(self, path, needle, msg, nth=0):
        """The expected line for msg at the nth occurrence of needle in path
        (line and column 1-based, columns in bytes)."""
        with open(path, encoding="utf-8") as f:
            text = f.read()
        i = -1
        for _ in range(nth + 1):
            i = text.index(needle, i + 1)
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        return f"{path}:{line}:{col}: {msg}"

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def check_fails(self, *want):
        p = self.wb("check-config", check=78)
        self.assertEqual(p.stderr.splitlines(), list(want))
        self.assertEqual(p.stdout, "")
        return p


class CheckConfigTest(ConfigCase):

    def test_good_config(self):
        self.config()
        p = self.wb("check-config", check=0)
        self.assertEqual(p.stdout, "config ok: 1 sender, 1 sequence, 2 steps, 3 templates\n")
        self.assertEqual(p.stderr, "")

    def test_unknown_key(self):
        cfg = self.config(smpt={"url": "smtp://x"})
        self.check_fails(self.at(cfg, '"smpt"', 'unknown key "smpt"'))

    def test_wrong_type(self):
        cfg = self.config(smtp={"url": "smtp://127.0.0.1:2525", "tls": "off",
                                "connections": "8"})
        self.check_fails(self.at(cfg, '"8"', '"connections" must be an integer'))

    def test_secret_readable_by_others(self):
        cfg = self.config()
        os.chmod(self.path("secret.key"), 0o644)
        p = self.check_fails(self.at(
            cfg, '"secret_file"',
            f'secret file "{self.path("secret.key")}" is readable by group or others '
            '(chmod 600 it)'))
        self.assertNotIn("test-secret", p.stderr)

    def test_header_injection_in_sender(self):
        cfg = self.config(senders={"ana": {"from": "Ana <ana@example.com>\r\nBcc: x@y"}})
        self.check_fails(self.at(cfg, '"Ana', '"from" must not contain CR or LF'))

    def test_bad_sender_addresses(self):
        # These crashed check-config once (the addresses were freed twice).
        cfg = self.config(senders={"ana": {"from": "Ana <ana>", "reply_to": "a@b@c"}})
        self.check_fails(
            self.at(cfg, '"Ana', 'bad address "Ana <ana>" in "from" (use Name <addr@domain>)'),
            self.at(cfg, '"a@b@c"', 'bad address "a@b@c" in "reply_to"'))

    def test_unknown_sender(self):
        self.config(sequences=[seq(sender="bob")])
        f = self.path("sequences", "nurture.json")
        self.check_fails(self.at(f, '"bob"', 'unknown sender "bob"'))

    def test_bad_duration(self):
        s = seq()
        s["steps"][1]["after"] = "3x"
        self.config(sequences=[s])
        f = self.path("sequences", "nurture.json")
        self.check_fails(self.at(f, '"3x"', 'bad duration "3x" (use 30m, 12h, 3d or 2w)'))

    def test_bad_window_and_zone(self):
        s = seq(window={"days": ["mon", "fri"], "start": "17:00", "end": "09:00",
                        "timezone": "Mars/Base"})
        self.config(sequences=[s])
        f = self.path("sequences", "nurture.json")
        self.check_fails(
            self.at(f, '"09:00"', 'window "end" (09:00) must be after "start" (17:00)'),
            self.at(f, '"Mars/Base"', 'unknown time zone "Mars/Base"'))

    def test_missing_template_file(self):
        s = seq()
        s["steps"][0]["html"] = "nope.html"
        self.config(sequences=[s])
        f = self.path("sequences", "nurture.json")
        self.check_fails(self.at(f, '"nope.html"',
                                 'template file "nope.html" not found in templates/'))

    def test_template_field_errors(self):
        t = dict(harness.DEFAULT_TEMPLATES)
        t["follow-up.txt"] = "Hi {{frist_name|there}},\nsee {{links.apply}}\n  {{company\n"
        self.config(templates=t)
        f = self.path("templates", "follow-up.txt")
        self.check_fails(f"{f}:1:4: unknown template field \"frist_name\"",
                         f"{f}:3:3: unclosed \"{{{{\"")

    def test_unknown_field_in_subject(self):
        s = seq()
        s["steps"][0]["subject"] = "Hello {{firstname}}"
        self.config(sequences=[s])
        f = self.path("sequences", "nurture.json")
        self.check_fails(self.at(f, "{{firstname", 'unknown template field "firstname"'))

    def test_duplicate_id(self):
        self.config()
        first = self.path("sequences", "nurture.json")
        second = harness.write(self.path("sequences", "other.json"),
                               json.dumps(harness.DEFAULT_SEQUENCE, indent=2))
        self.check_fails(self.at(second, '"nurture"',
                                 f'duplicate sequence id "nurture" (also in {first})'))

    def test_unknown_events(self):
        self.config(sequences=[seq(stop_on=["reply", "clik"],
                                   handoff_on=["click:nope", "reply:interested"])])
        f = self.path("sequences", "nurture.json")
        self.check_fails(self.at(f, '"clik"', 'unknown event "clik" in stop_on'),
                         self.at(f, '"click:nope"', 'unknown event "click:nope" in handoff_on'))

    def test_every_problem_reported(self):
        s = seq(sender="bob", colour="red")
        s["steps"][1]["after"] = "soon"
        t = dict(harness.DEFAULT_TEMPLATES)
        t["intro.txt"] = "Hello {{ }}\n"
        cfg = self.config(sequences=[s], templates=t, smpt=1,
                          log={"level": "loud", "format": "text"})
        f = self.path("sequences", "nurture.json")
        tpl = self.path("templates", "intro.txt")
        self.check_fails(
            self.at(cfg, '"loud"',
                    'unknown log level "loud" (use debug, info, warn or error)'),
            self.at(cfg, '"smpt"', 'unknown key "smpt"'),
            self.at(f, '"bob"', 'unknown sender "bob"'),
            self.at(f, '"soon"', 'bad duration "soon" (use 30m, 12h, 3d or 2w)'),
            self.at(f, '"colour"', 'unknown key "colour"'),
            f"{tpl}:1:7: empty field name in \"{{{{\"")

    def test_json_syntax_error(self):
        cfg = self.config()
        with open(cfg, "a", encoding="utf-8") as fh:
            fh.write("}\n")
        p = self.wb("check-config", check=78)
        self.assertTrue(p.stderr.startswith(cfg + ":"), p.stderr)
        self.assertIn("invalid JSON", p.stderr)


class CredentialsTest(harness.WbTestCase):
    def test_group_readable_secret_only_in_the_credentials_directory(self):
        self.config()
        cfg = json.load(open(self.cfg_path))
        secret = os.path.join(self.tmp, "secret.key")
        os.chmod(secret, 0o640)
        cfg["secret_file"] = secret
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f)
        p = self.wb("check-config", check=78)
        self.assertIn("readable by group or others", p.stderr)
        self.wb("check-config", check=0, env={"CREDENTIALS_DIRECTORY": self.tmp})
        # A path that only looks as if it were inside does not count.
        self.wb("check-config", check=78, env={"CREDENTIALS_DIRECTORY": self.tmp + "/sub"})


GOOGLE = {"token_url": "https://oauth2.example.com/token",
          "device_url": "https://oauth2.example.com/device", "client_id": "warmbench",
          "scope": "https://mail.google.com/"}


class SendersConfigTest(ConfigCase):
    """Issue 14's configuration: per-sender smtp/mailbox blocks with OAuth,
    and "sender": "owner" with fallback_sender. A bad one stops both
    check-config and the daemon before anything is sent."""

    def senders(self, ana_smtp=None, ana_mailbox=None):
        ana = {"from": "Ana Ruiz <ana@example.com>", "daily_limit": 400}
        if ana_smtp is not None:
            ana["smtp"] = ana_smtp
        if ana_mailbox is not None:
            ana["mailbox"] = ana_mailbox
        return {"ana": ana, "bob": {"from": "Bob <bob@example.com>"}}

    def gmail(self, **over):
        b = {"url": "smtp://smtp.gmail.com:587", "username": "ana@example.com",
             "auth": "xoauth2", "oauth": "google", "connections": 2}
        b.update(over)
        return b

    def daemon_refuses(self, want):
        """warmbenchd exits 78 with the same places, before it connects anywhere."""
        p = subprocess.run([harness.WARMBENCHD, "--config", self.cfg_path], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 78, p.stderr)
        for line in want:
            self.assertIn(line, p.stderr)

    def test_per_sender_blocks_load(self):
        self.config(oauth={"google": GOOGLE},
                    senders=self.senders(self.gmail(), {
                        "url": "imaps://imap.gmail.com/INBOX", "username": "ana@example.com",
                        "auth": "oauthbearer", "oauth": "google"}),
                    contact_policy={"cooldown_days": 14, "max_per_30_days": 4},
                    sequences=[seq(sender="owner", fallback_sender="bob")])
        p = self.wb("check-config", check=0)
        self.assertEqual(p.stdout, "config ok: 2 senders, 1 sequence, 2 steps, 3 templates\n")

    def test_unknown_oauth_provider(self):
        cfg = self.config(oauth={"google": GOOGLE},
                          senders=self.senders(self.gmail(oauth="microsoft")))
        want = [self.at(cfg, '"microsoft"', 'unknown oauth provider "microsoft" (known: google)')]
        self.check_fails(*want)
        self.daemon_refuses(want)

    def test_auth_without_its_credentials(self):
        smtp = self.gmail()
        del smtp["oauth"]
        cfg = self.config(oauth={"google": GOOGLE}, senders=self.senders(smtp, {
            "url": "imaps://imap.gmail.com/INBOX", "auth": "xoauth2", "oauth": "google"}))
        want = [self.at(cfg, '"xoauth2"', 'auth "xoauth2" needs "oauth" naming a provider of '
                                          'the top-level "oauth" object'),
                self.at(cfg, '"xoauth2"', 'auth "xoauth2" needs "username" (the account\'s '
                                          'address)', nth=1)]
        self.check_fails(*want)
        self.daemon_refuses(want)

    def test_password_file_with_token_auth(self):
        harness.write(self.path("ana.pw"), "pw\n", 0o600)
        cfg = self.config(oauth={"google": GOOGLE},
                          senders=self.senders(self.gmail(password_file="ana.pw")))
        self.check_fails(self.at(
            cfg, '"password_file"', '"password_file" does not apply with auth "xoauth2": the '
            'access token comes from the "oauth" provider (remove it, or use auth "password")'))

    def test_owner_naming_no_sender(self):
        # For configuration, an owner naming no sender is a fallback_sender
        # naming none (owners themselves are data, checked at import).
        self.config(sequences=[seq(sender="owner", fallback_sender="carol")])
        f = self.path("sequences", "nurture.json")
        want = [self.at(f, '"carol"', 'unknown sender "carol" in "fallback_sender"')]
        self.check_fails(*want)
        self.daemon_refuses(want)

    def test_owner_without_fallback(self):
        self.config(sequences=[seq(sender="owner")])
        f = self.path("sequences", "nurture.json")
        self.check_fails(self.at(f, '"owner"', '"sender": "owner" needs "fallback_sender" (the '
                                               'sender for candidates without an owner)'))


if __name__ == "__main__":
    import unittest
    unittest.main()
