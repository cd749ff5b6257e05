"""warmbench senders [--json]: per sender its state, today's sends against
the daily limit, the 7-day bounce rate and whose mailbox reads its replies,
on a database seeded by hand (sends and bounces with known times)."""
import json

from harness import WbTestCase, write

GOOGLE = {"token_url": "http://127.0.0.1:9/token", "client_id": "warmbench"}

# ana: 10 sends in the last 7 days, 2 of them bounced; 3 older sends that
# bounced do not count. 7 claimed today, 50 yesterday. Her token keeper
# stored needs_login (the reason carries an escape byte, as a server's
# text might). cy uses OAuth but has no stored state yet.
SEED = r"""
INSERT INTO sequences (id, content_hash, definition) VALUES ('s', 'x', '{}');
INSERT INTO candidates (email) SELECT 'p' || i || '@example.org' FROM generate_series(1, 13) i;
INSERT INTO enrollments (candidate_id, sequence_id) SELECT id, 's' FROM candidates;
INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, sender, state, sent_at)
SELECT e.id, e.candidate_id, 's', 1, 'ana', 'sent',
       CASE WHEN e.candidate_id <= 10 THEN now() - interval '24 hours'
            ELSE now() - interval '240 hours' END
FROM enrollments e;
INSERT INTO events (candidate_id, message_id, type, detail)
SELECT m.candidate_id, m.id, 'bounce', '{"kind": "hard"}' FROM messages m
WHERE m.candidate_id IN (1, 2, 11, 12, 13);
-- What wb_store_outcomes and wb_record_events keep for those sends.
INSERT INTO sender_stats (sender, day, sent, hard_bounces) VALUES
 ('ana', (now() AT TIME ZONE 'UTC')::date - 1, 10, 2),
 ('ana', (now() AT TIME ZONE 'UTC')::date - 10, 3, 3);
INSERT INTO sender_usage (sender, day, sent) VALUES
 ('ana', (now() AT TIME ZONE 'UTC')::date, 7),
 ('ana', (now() AT TIME ZONE 'UTC')::date - 1, 50);
INSERT INTO sender_state (sender, state, reason) VALUES
 ('ana', 'needs_login', E'invalid_grant: revoked\x1b[31m');
"""


class SendersTest(WbTestCase):
    def seeded(self):
        write(self.tmp + "/imap.pw", "pw\n", 0o600)
        self.config(
            oauth={"google": GOOGLE},
            mailbox={"url": "imap://127.0.0.1:1/INBOX", "username": "team",
                     "password_file": "imap.pw"},
            senders={
                "ana": {"from": "Ana <ana@example.com>", "daily_limit": 400,
                        "smtp": {"username": "ana@example.com", "auth": "xoauth2",
                                 "oauth": "google"},
                        "mailbox": {"username": "ana@example.com", "auth": "xoauth2",
                                    "oauth": "google"}},
                "bob": {"from": "Bob <bob@example.com>"},
                "cy": {"from": "Cy <cy@example.com>", "daily_limit": 50,
                       "smtp": {"username": "cy@example.com", "auth": "oauthbearer",
                                "oauth": "google"}}})
        self.wb("migrate", check=0)
        self.sql(SEED)

    def test_json(self):
        self.seeded()
        doc = json.loads(self.wb("senders", "--json", check=0).stdout)
        ana, bob, cy = doc["senders"]
        self.assertEqual(ana["sender"], "ana")
        self.assertEqual(ana["state"], "needs_login")
        self.assertEqual(ana["reason"], "invalid_grant: revoked\x1b[31m")
        self.assertIn("state_since", ana)
        self.assertEqual((ana["sent_today"], ana["daily_limit"]), (7, 400))
        self.assertEqual((ana["sent_7d"], ana["bounced_7d"]), (10, 2))
        self.assertAlmostEqual(ana["bounce_rate_7d"], 0.2)
        self.assertEqual((ana["smtp_auth"], ana["mailbox"]), ("xoauth2", "own"))
        self.assertEqual(bob, {"sender": "bob", "state": "ok", "reason": None,
                               "sent_today": 0, "daily_limit": None, "limit_today": None,
                               "sent_7d": 0, "bounced_7d": 0, "bounce_rate_7d": None,
                               "complained_7d": 0, "complaint_rate_7d": None,
                               "days_sending": None, "oauth_state": None,
                               "smtp_auth": "password", "mailbox": "shared"})
        self.assertEqual(cy["state"], "unknown")
        self.assertEqual(cy["reason"], "the daemon has not used its token yet")
        self.assertEqual((cy["smtp_auth"], cy["mailbox"], cy["daily_limit"]),
                         ("oauthbearer", "shared", 50))

    def test_text(self):
        self.seeded()
        out = self.wb("senders", check=0).stdout
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["SENDER", "STATE", "TODAY/LIMIT", "SMTP", "AUTH",
                                            "BOUNCES", "(7", "DAYS)", "MAILBOX", "REASON"])
        self.assertEqual(lines[1].split(), ["ana", "needs_login", "7/400", "xoauth2",
                                            "20.0%", "(2", "of", "10)", "own",
                                            "invalid_grant:", "revoked", "[31m"])
        self.assertEqual(lines[2].split(), ["bob", "ok", "0/-", "password", "-", "(none",
                                            "sent)", "shared"])
        self.assertTrue(lines[3].startswith("cy "), lines[3])
        self.assertNotIn("\x1b", out)
        self.assertEqual(len(lines), 4)

    def test_arguments(self):
        self.config()
        self.wb("migrate", check=0)
        p = self.wb("senders", "ana", check=64)
        self.assertIn("senders takes no arguments", p.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
