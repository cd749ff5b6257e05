"""A/B variants (SPEC "Talent intelligence"): warmbenchd sends each
enrollment one variant of a step, chosen by a hash of candidate and step;
the split is even, the choice survives a rerun, and `warmbench stats`
reports sent/opened/clicked/replied per variant with a z-test p-value."""
import collections
import json
import math
import os
import re
import struct
import urllib.error
import urllib.request

import harness
from daemon_util import wait_until
from test_daemon import DaemonCase, OPEN_WINDOW

TEMPLATES = {
    "base.txt": "Base text {{first_name|there}}\n{{unsubscribe_url}}\n",
    "a.txt": "Version A for {{first_name|there}}: {{links.apply}}\n{{unsubscribe_url}}\n",
    "b.txt": "Version B for {{first_name|there}}: {{links.apply}}\n{{unsubscribe_url}}\n",
    "c.txt": "Version C for {{first_name|there}}: {{links.apply}}\n{{unsubscribe_url}}\n",
    "b.html": "<html><body><p>Version B for {{first_name|there}}</p>"
              "<p><a href=\"{{links.apply}}\">apply</a></p></body></html>\n",
    "plain.txt": "Plain {{first_name|there}}\n{{unsubscribe_url}}\n",
}

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def ab_sequence(n_variants=2, sid="ab", tag="backend"):
    names = "abc"[:n_variants]
    variants = [{"subject": "Variant %s for {{first_name|you}}" % v.upper(), "text": v + ".txt"}
                for v in names]
    if n_variants > 1:
        variants[1]["html"] = "b.html"
    return {
        "id": sid, "sender": "ana",
        "audience": {"tags_any": [tag], "exclusive": False},
        "window": OPEN_WINDOW,
        "links": {"apply": "https://example.com/jobs/backend"},
        "steps": [{"after": "0s", "subject": "Base {{first_name|you}}", "text": "base.txt",
                   "variants": variants}],
        "stop_on": ["unsubscribe", "bounce"],
    }


def plain_sequence():
    return {
        "id": "plain", "sender": "ana",
        "audience": {"tags_any": ["plain"], "exclusive": False},
        "window": OPEN_WINDOW,
        "steps": [{"after": "0s", "subject": "Plain", "text": "plain.txt"}],
        "stop_on": ["unsubscribe", "bounce"],
    }


def model_pick(candidate_id, step, n):
    """The variant choice re-implemented from its description: FNV-1a over
    the little-endian bytes of candidate id and step, MurmurHash3's fmix64,
    modulo the number of variants."""
    m = (1 << 64) - 1
    h = 1469598103934665603
    for b in struct.pack("<qQ", candidate_id, step):
        h = ((h ^ b) * 1099511628211) & m
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & m
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & m
    h ^= h >> 33
    return h % n


def ztest_p(x1, n1, x2, n2):
    """Two-sided p of the pooled two-proportion z-test, from the textbook
    formula (independent of lib/report/abtest.c)."""
    p = (x1 + x2) / (n1 + n2)
    if p in (0, 1):
        return 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


class VariantsTest(DaemonCase):
    def world(self, smtp, n, seqs, rows=None, **http):
        self.setup_world(smtp, n=n, sequences=seqs, templates=TEMPLATES, rows=rows)
        if http:
            # setup_world writes the config; the tracking endpoint needs a
            # public_url the test can reach and no machine-click window.
            port = harness.free_port()
            cfg = json.load(open(self.cfg_path))
            cfg["http"] = {"listen": "127.0.0.1:%d" % port,
                           "public_url": "http://127.0.0.1:%d" % port, "machine_click_s": 0}
            harness.write(self.cfg_path, json.dumps(cfg))

    def variants_by_email(self):
        return dict((r[0], int(r[1])) for r in self.sql(
            "SELECT c.email, m.variant FROM messages m JOIN candidates c ON c.id = m.candidate_id"
            " WHERE m.step = 1"))

    def test_even_split_sent_by_the_daemon_and_stable_across_a_rerun(self):
        smtp = self.smtpd()
        self.world(smtp, 1000, [ab_sequence(2)])
        self.daemon()
        self.wait_sent(1000, timeout=180)

        split = dict((int(r[0]), int(r[1])) for r in self.sql(
            "SELECT variant, count(*) FROM messages WHERE state = 'sent' GROUP BY variant"))
        self.assertEqual(sorted(split), [0, 1], split)
        for v, n in split.items():
            self.assertTrue(450 <= n <= 550, "variant %d got %d of 1000" % (v, n))
        # The daemon chose by candidate and step, exactly as described.
        rows = self.sql("SELECT candidate_id, step, variant, message_id FROM messages")
        wrong = [r for r in rows if model_pick(int(r[0]), int(r[1]), 2) != int(r[2])]
        self.assertEqual(wrong, [])
        # What reached SMTP is the chosen variant: subject, text and html.
        variant_of = dict((r[3], int(r[2])) for r in rows)
        for m in smtp.messages():
            v = variant_of[m["msg"]["Message-ID"].strip("<>")]
            self.assertTrue(str(m["msg"]["Subject"]).startswith("Variant %s for" % "AB"[v]),
                            m["msg"]["Subject"])
            text = m["msg"].get_body(("plain",)).get_content()
            self.assertIn("Version %s for" % "AB"[v], text)
            self.assertEqual(m["msg"].get_body(("html",)) is not None, v == 1)

        # Rerun: the same people enrolled again from scratch get the same variants.
        before = self.variants_by_email()
        self.daemons[0].stop()
        self.sql("DELETE FROM events; DELETE FROM handoffs; DELETE FROM messages;"
                 " DELETE FROM enrollments")
        self.wb("enroll", "ab", check=0)
        self.daemon()
        wait_until(lambda: smtp.count() >= 2000, 180, "the rerun's 1000 messages", interval=0.2)
        self.wait_sent(1000, timeout=30)
        self.assertEqual(self.variants_by_email(), before)

    def test_stats_per_variant_with_p_values(self):
        smtp = self.smtpd()
        rows = ["plain%02d@example.org,Q%d,Last,UTC,plain,opt_in" % (i, i) for i in range(5)]
        self.world(smtp, 300, [ab_sequence(3), plain_sequence()], rows=rows, http=True)
        self.daemon()
        self.wait_sent(305, timeout=60)
        ids = collections.defaultdict(list)
        for r in self.sql("SELECT variant, id, message_id FROM messages WHERE sequence_id = 'ab'"
                          " ORDER BY id"):
            ids[int(r[0])].append((int(r[1]), r[2]))
        sent = {v: len(ids[v]) for v in range(3)}
        self.assertEqual(sum(sent.values()), 300)

        # Human opens through the daemon's pixel (3 people of variant 1, the
        # only one with HTML; one of them twice), clicks through its redirect
        # (2 of variant 1).
        mails = {m["msg"]["Message-ID"].strip("<>"): m["msg"] for m in smtp.messages()}

        def get(url):
            class NoRedirect(urllib.request.HTTPRedirectHandler):
                def redirect_request(self, *a, **k):
                    return None
            try:
                with urllib.request.build_opener(NoRedirect).open(
                        urllib.request.Request(url, headers={"User-Agent": FIREFOX})) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
        port = json.load(open(self.cfg_path))["http"]["listen"].rsplit(":", 1)[1]
        for _, mid in ids[1][:3] + ids[1][:1]:
            html = mails[mid].get_body(("html",)).get_content()
            pixel = re.search(r'src="(http://[^"]+/o/[^"]+\.gif)"', html).group(1)
            self.assertIn(":%s/" % port, pixel)
            self.assertEqual(get(pixel), 200)
        for _, mid in ids[1][:2]:
            text = mails[mid].get_body(("plain",)).get_content()
            link = re.search(r"(http://\S+/c/\S+)", text).group(1)
            self.assertEqual(get(link), 302)
        # The second open of one message within the minute is answered but
        # not stored (one open per message per minute): 3 opens, 2 clicks.
        wait_until(lambda: int(self.scalar("SELECT count(*) FROM events WHERE type IN"
                                           " ('open', 'click')")) >= 5, 20, "opens and clicks")

        # Replies (as the mailbox poller records them) and machine opens.
        def record(msg_ids, type_, machine=False, detail="{}"):
            self.sql("SELECT wb_record_events(ARRAY[%s]::bigint[], array_fill('%s'::text, ARRAY[%d]),"
                     " array_fill(%s, ARRAY[%d]), array_fill('%s'::jsonb, ARRAY[%d]),"
                     " array_fill(now(), ARRAY[%d]))"
                     % (",".join(str(i) for i in msg_ids), type_, len(msg_ids),
                        "true" if machine else "false", len(msg_ids), detail, len(msg_ids),
                        len(msg_ids)))
        replies = {0: 6, 1: 24, 2: 0}
        for v, n in replies.items():
            if n:
                record([i for i, _ in ids[v][:n]], "reply", detail='{"intent": "interested"}')
        record([i for i, _ in ids[2][:5]], "open", machine=True)
        # A second reply from one person counts once.
        record([ids[1][0][0]], "reply", detail='{"intent": "neutral"}')

        out = self.wb("stats", "--json", check=0).stdout
        doc = {s["id"]: s for s in json.loads(out)["sequences"]}
        self.assertNotIn("variants", doc["plain"]["steps"][0])
        got = doc["ab"]["steps"][0]["variants"]
        self.assertEqual([g["variant"] for g in got], [0, 1, 2])
        self.assertEqual([(g["sent"], g["opened"], g["clicked"], g["replied"]) for g in got],
                         [(sent[0], 0, 0, 6), (sent[1], 3, 2, 24), (sent[2], 0, 0, 0)])
        self.assertIsNone(got[0]["p_value"])
        for v in (1, 2):
            want = ztest_p(replies[v], sent[v], replies[0], sent[0])
            self.assertAlmostEqual(got[v]["p_value"] / want, 1.0, delta=1e-3,
                                   msg="variant %d: %r vs %r" % (v, got[v]["p_value"], want))
            self.assertAlmostEqual(got[v]["reply_rate"], replies[v] / sent[v], delta=1e-3)
        # 24 of ~100 against 6 of ~100 is a clear difference; 0 vs 6 is weaker.
        self.assertLess(got[1]["p_value"], 0.01)
        self.assertGreater(got[2]["p_value"], got[1]["p_value"])

        text = self.wb("stats", "ab", check=0).stdout
        self.assertIn("step 1 A/B", text)
        line = next(ln for ln in text.splitlines() if ln.strip().startswith("variant 1 "))
        self.assertEqual(line.split()[:6], ["variant", "1", str(sent[1]), "3", "2", "24"])
        self.assertIn("%.1f%%" % (100.0 * 24 / sent[1]), line)
        self.assertIn("%.4f" % got[1]["p_value"], line)

    def test_a_step_of_variants_only_is_accepted_and_sent(self):
        """Issue 15's contract fix: a step that carries variants needs no
        subject or body of its own (each variant is a complete set); the
        step's own fields stay optional defaults."""
        smtp = self.smtpd()
        seq = ab_sequence(2, sid="only", tag="backend")
        seq["steps"] = [{"after": "0s", "variants": [
            {"subject": "A for {{first_name|you}}", "text": "a.txt"},
            {"subject": "B for {{first_name|you}}", "text": "a.txt"}]}]
        # A second step: the variants borrow the step's text and html.
        seq["steps"].append({"after": "0s", "text": "b.txt", "html": "b.html",
                             "variants": [{"subject": "Again A"}, {"subject": "Again B"}]})
        self.world(smtp, 40, [seq])
        out = self.wb("check-config", check=0).stdout
        self.assertIn("1 sequence, 2 steps", out)
        self.daemon()
        self.wait_sent(80, timeout=60)
        got = collections.Counter()
        for m in smtp.messages():
            subj = str(m["msg"]["Subject"])
            text = m["msg"].get_body(("plain",)).get_content()
            if subj.startswith("Again"):
                self.assertIn("Version B for", text)
                self.assertIsNotNone(m["msg"].get_body(("html",)))
            else:
                self.assertRegex(subj, r"^[AB] for P\d+$")
                self.assertIn("Version A for", text)
            got[subj.split()[0] + subj.split()[1][:1]] += 1
        # Both variants went out at both steps, 40 mails each step.
        self.assertEqual(got["Af"] + got["Bf"], 40, got)
        self.assertEqual(got["AgainA"] + got["AgainB"], 40, got)
        self.assertTrue(min(got.values()) > 5, got)

    def test_a_variant_with_nothing_to_fall_back_on_is_an_error(self):
        seq = ab_sequence(2, sid="broken")
        seq["steps"] = [{"after": "0s", "variants": [{"subject": "A", "text": "a.txt"},
                                                     {"text": "b.txt"},
                                                     {"subject": "C"}]}]
        self.config(sequences=[seq], templates=TEMPLATES)
        err = self.wb("check-config", check=78).stderr
        self.assertRegex(err, r"broken\.json:\d+:\d+: .*missing key \"subject\"")
        self.assertRegex(err, r"broken\.json:\d+:\d+: .*needs \"text\" or \"html\"")
        self.assertEqual(len(err.strip().splitlines()), 2, err)
        # A plain step (no variants) still needs its own.
        seq["steps"] = [{"after": "0s", "text": "a.txt"}]
        self.config(sequences=[seq], templates=TEMPLATES)
        err = self.wb("check-config", check=78).stderr
        self.assertIn("missing key \"subject\"", err)
