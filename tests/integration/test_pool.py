"""warmbench pool: exact figures on a database seeded by hand (candidates,
suppressions and engagement with known dates, relative to now())."""
import json

from harness import WbTestCase

# Hours, not days: '30 days' moves with a DST change in the session's zone.
SEED = r"""
INSERT INTO candidates (email, tags, score, score_at, last_engaged_at, created_at) VALUES
 -- ready: score 12 (not decayed: no score_at), engaged 10 days ago
 ('c1@example.com', ARRAY['backend', 'sre', E'evil\x1b[31m'], 12, NULL,
  now() - interval '240 hours', now() - interval '4800 hours'),
 -- dormant: engaged 100 days ago; high score but not engaged within 30 days
 ('c2@example.com', '{backend}', 15, NULL, now() - interval '2400 hours', now() - interval '4800 hours'),
 -- new 60 days ago, never engaged: neither engaged nor dormant
 ('c3@example.com', '{frontend}', 0, NULL, NULL, now() - interval '1440 hours'),
 -- new 10 days ago, engaged, score just under the threshold
 ('c4@example.com', '{backend}', 9.5, NULL, now() - interval '120 hours', now() - interval '240 hours'),
 -- new 20 days ago, ready: score exactly at the threshold
 ('c5@example.com', '{frontend,backend}', 10, NULL, now() - interval '48 hours', now() - interval '480 hours'),
 -- created 300 days ago, never engaged: dormant
 ('c6@example.com', '{}', 0, NULL, NULL, now() - interval '7200 hours'),
 -- stored 12 but 25 days of decay (half-life 30 days) make it 6.73: not ready
 ('c10@example.com', '{backend}', 12, now() - interval '600 hours', now() - interval '600 hours',
  now() - interval '2400 hours'),
 -- suppressed: not in the pool
 ('c7@example.com', '{backend}', 30, NULL, now() - interval '24 hours', now() - interval '3600 hours'),
 ('c8@example.com', '{backend}', 0, NULL, NULL, now() - interval '360 hours'),
 ('c9@example.com', '{backend}', 0, NULL, NULL, now() - interval '9600 hours');
INSERT INTO suppressions (email, email_hash, reason, created_at) VALUES
 ('c7@example.com', wb_email_hash('c7@example.com'), 'unsubscribe', now() - interval '480 hours'),
 ('C8@Example.com', wb_email_hash('c8@example.com'), 'bounce', now() - interval '120 hours'),
 ('c9@example.com', wb_email_hash('c9@example.com'), 'manual', now() - interval '4800 hours'),
 -- an erased person: no address left, 45 days ago
 (NULL, wb_email_hash('gone@example.com'), 'forget', now() - interval '1080 hours'),
 -- an address that was never in the pool: does not count as leaving it
 ('stranger@example.com', wb_email_hash('stranger@example.com'), 'manual', now() - interval '72 hours');
"""


def percentile_cont(values, f):
    v = sorted(values)
    pos = f * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


POOL_SCORES = [12, 15, 0, 9.5, 10, 0, 12 * 2 ** (-25 / 30)]


class PoolTest(WbTestCase):
    def seeded(self, **cfg):
        self.config(**cfg)
        self.wb("migrate", check=0)
        self.sql(SEED)

    def pool_json(self):
        return json.loads(self.wb("pool", "--json", check=0).stdout)

    def test_exact_figures(self):
        self.seeded()
        doc = self.pool_json()
        self.assertEqual(doc["size"], 7)
        self.assertEqual(doc["candidates"], 10)
        self.assertEqual(doc["suppressed"], 3)
        # 30 days: c4, c5, c8 arrive; c7 and c8 leave (the erasure is 45 days old).
        self.assertEqual(doc["growth"]["30d"], {"new": 3, "left": 2, "net": 1})
        # 90 days: c3 too arrives; the erasure leaves; the stranger never counts.
        self.assertEqual(doc["growth"]["90d"], {"new": 4, "left": 3, "net": 1})
        self.assertEqual(doc["engaged_90d"]["count"], 4)
        self.assertAlmostEqual(doc["engaged_90d"]["share"], 4 / 7, places=5)
        self.assertEqual(doc["dormant"]["count"], 2)
        self.assertEqual(doc["dormant"]["days"], 90)
        self.assertAlmostEqual(doc["dormant"]["share"], 2 / 7, places=5)
        deciles = doc["score_deciles"]
        self.assertEqual(len(deciles), 11)
        for i, got in enumerate(deciles):
            self.assertAlmostEqual(got, percentile_cont(POOL_SCORES, i / 10), places=3, msg=i)
        ready = doc["ready"]
        self.assertEqual(ready["threshold"], 10)
        self.assertEqual(ready["engaged_days"], 30)
        self.assertEqual(ready["total"], 2)
        self.assertEqual(ready["by_tag"], [
            {"tag": "backend", "size": 5, "ready": 2},
            {"tag": "frontend", "size": 2, "ready": 1},
            {"tag": "evil\x1b[31m", "size": 1, "ready": 1},
            {"tag": "sre", "size": 1, "ready": 1},
        ])

    def test_threshold_from_config(self):
        self.seeded(scoring={"ready_threshold": 11})
        ready = self.pool_json()["ready"]
        self.assertEqual(ready["threshold"], 11)
        self.assertEqual(ready["total"], 1)
        self.assertEqual([t["tag"] for t in ready["by_tag"] if t["ready"]],
                         ["backend", "evil\x1b[31m", "sre"])

    def test_text_output(self):
        self.seeded()
        out = self.wb("pool", check=0).stdout
        self.assertIn("pool: 7 candidate(s) can be mailed (10 in the database, 3 suppressed)", out)
        self.assertIn("30 days: 3 new, 2 left, net +1", out)
        self.assertIn("90 days: 4 new, 3 left, net +1", out)
        self.assertIn("engaged in the last 90 days: 4 (57.1%)", out)
        self.assertIn("dormant (no engagement in 90 days): 2 (28.6%)", out)
        self.assertIn("ready now (score >= 10, engaged within 30 days): 2", out)
        self.assertRegex(out, r"\n  backend +5 +2\n")
        # A tag is data: its escape sequence never reaches the terminal.
        self.assertNotIn("\x1b", out)
        self.assertIn("evil?[31m", out)

    def test_empty_pool(self):
        self.config()
        self.wb("migrate", check=0)
        doc = self.pool_json()
        self.assertEqual(doc["size"], 0)
        self.assertEqual(doc["score_deciles"], [])
        self.assertEqual(doc["engaged_90d"], {"count": 0, "share": 0})
        self.assertEqual(doc["ready"]["by_tag"], [])
        self.assertIn("none (empty pool)", self.wb("pool", check=0).stdout)

    def test_usage_errors(self):
        self.config()
        self.wb("migrate", check=0)
        p = self.wb("pool", "extra", check=64)
        self.assertIn("pool takes no arguments", p.stderr)
