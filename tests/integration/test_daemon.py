"""Acceptance tests of the sending engine: warmbenchd against a throwaway
PostgreSQL and the aiosmtpd test server (SPEC.md "Mail that goes out",
"Signals and service"; ARCHITECTURE.md "State machines")."""
import collections
import datetime
import email.utils
import json
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import WbTestCase, write
from daemon_util import Daemon, Smtpd, wait_until

PUBLIC = "https://go.example.com"
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
OPEN_WINDOW = {"days": ALL_DAYS, "start": "00:00", "end": "24:00", "timezone": "UTC"}

TEMPLATES = {
    "s1.txt": "Hello {{first_name|there}},\nApply: {{links.apply}}\nBlog: {{links.blog}}\n"
              "Unsubscribe: {{unsubscribe_url}}\n",
    "s1.html": "<html><body><p>Hello {{first_name|there}},</p>"
               "<p><a href=\"{{links.apply}}\">apply</a> <a href=\"{{links.blog}}\">blog</a></p>"
               "<p><a href=\"{{unsubscribe_url}}\">unsubscribe</a></p></body></html>\n",
    "s2.txt": "Hi again {{first_name|there}}.\n",
}


def sequence(steps=None, window=None, sid="nurture", sender="ana"):
    return {
        "id": sid,
        "sender": sender,
        "audience": {"tags_any": ["backend"]},
        "window": window or OPEN_WINDOW,
        "links": {"apply": "https://example.com/jobs/backend", "blog": "https://example.com/eng"},
        "steps": steps or [{"after": "0s", "subject": "S1 {{first_name|Hi}}, about backend",
                            "text": "s1.txt", "html": "s1.html"}],
        "stop_on": ["reply", "unsubscribe", "bounce"],
        "handoff_on": ["reply"],
    }


def addr(i):
    return "p%03d@example.org" % i


class DaemonCase(WbTestCase):
    def setUp(self):
        super().setUp()
        self.daemons = []
        self.smtpds = []
        self.addCleanup(self._finish)

    def _finish(self):
        """Stops what is still running (SIGTERM: must exit 0) and fails on any
        sanitizer report in a daemon's log."""
        problems = []
        for d in self.daemons:
            rc = d.stop() if d.alive() else d.returncode
            if not d.killed and rc != 0:
                problems.append(f"warmbenchd exited {rc} on SIGTERM:\n{d.text()[-4000:]}")
            rep = d.sanitizer_report()
            if rep:
                problems.append("sanitizer report in %s:\n%s" % (d.log_path, rep[-8000:]))
        for s in self.smtpds:
            s.cleanup()
        if problems:
            self.fail("\n\n".join(problems))

    # --- setup helpers ---------------------------------------------------

    def smtpd(self, *args, port=None, start=True):
        s = Smtpd(*args, port=port)
        self.smtpds.append(s)
        return s.start() if start else s

    def daemon(self, wait_ready=True, cfg_path=None):
        d = Daemon(cfg_path or self.cfg_path,
                   os.path.join(self.tmp, "warmbenchd-%d.log" % len(self.daemons)))
        self.daemons.append(d)
        return d.start(wait_ready=wait_ready)

    def setup_world(self, smtp, n=0, sequences=None, templates=None, senders=None, rows=None,
                    timeout_s=2, connections=4, enroll=True, migrate_env=None):
        """Config pointing at smtp (a Smtpd), migrate (migrate_env: its
        environment), import n candidates (p000@example.org...) plus extra
        rows, enroll into every sequence."""
        self.seqs = sequences or [sequence()]
        self.config(
            sequences=self.seqs, templates=templates or TEMPLATES,
            http={"listen": "127.0.0.1:%d" % harness.free_port(), "public_url": PUBLIC},
            smtp={"url": smtp.url, "tls": "off", "connections": connections,
                  "timeout_s": timeout_s, "retry_base_s": 1},
            senders=senders or {"ana": {"from": "Ana Ruiz <ana@example.com>",
                                        "reply_to": "ana@example.com",
                                        "daily_limit": 100000, "min_interval_s": 0}})
        self.wb("migrate", check=0, env=migrate_env)
        lines = ["email,first_name,last_name,timezone,tags,consent"]
        lines += ["%s,P%d,Last,UTC,backend,opt_in" % (addr(i), i) for i in range(n)]
        lines += rows or []
        if len(lines) > 1:
            csv = write(os.path.join(self.tmp, "pool.csv"), "\n".join(lines) + "\n")
            self.wb("import", csv, check=0)
        if enroll:
            for s in self.seqs:
                self.wb("enroll", s["id"], check=0)

    def count(self, where):
        return int(self.scalar(f"SELECT count(*) FROM messages WHERE {where}"))

    LOCK = ("FROM pg_locks WHERE locktype = 'advisory' AND classid = 7426352"
            " AND objsubid = 2 AND objid = hashtext('%s')::oid")

    def hold_lock(self, owner):
        """Makes `owner` a live daemon as recovery sees it: a session holds its
        liveness lock (sql/010_liveness.sql) until release_lock(owner)."""
        p = subprocess.Popen(["psql", "-X", "-q", "-d", self.db, "-c",
                              "SELECT wb_owner_lock('%s'), pg_sleep(3600)" % owner],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_until(lambda: self.scalar("SELECT count(*) " + self.LOCK % owner) == "1", 10,
                   "the liveness lock of " + owner)

    def release_lock(self, owner):
        self.sql("SELECT pg_terminate_backend(pid) " + self.LOCK % owner)
        wait_until(lambda: self.scalar("SELECT count(*) " + self.LOCK % owner) == "0", 10,
                   "the liveness lock of %s released" % owner)

    def states(self):
        return dict((r[0], int(r[1])) for r in
                    self.sql("SELECT state, count(*) FROM messages GROUP BY state"))

    def wait_sent(self, n, timeout=30):
        wait_until(lambda: self.count("state = 'sent'") >= n, timeout,
                   f"{n} messages sent (states {self.states()})", interval=0.1)

    def received_by_mid(self, smtp):
        """Counter of Message-ID (without <>) over what smtpd stored."""
        return collections.Counter(m["msg"]["Message-ID"].strip("<>") for m in smtp.messages())

    def assert_once_each(self, smtp, expect_all_sent=True):
        """Every stored message maps to a messages row; none twice (by
        Message-ID and by (recipient, subject))."""
        msgs = smtp.messages()
        by_mid = collections.Counter(m["msg"]["Message-ID"].strip("<>") for m in msgs)
        by_rcpt = collections.Counter((tuple(m["rcpt_tos"]), str(m["msg"]["Subject"]))
                                      for m in msgs)
        self.assertEqual([k for k, v in by_mid.items() if v > 1], [], "a Message-ID twice")
        self.assertEqual([k for k, v in by_rcpt.items() if v > 1], [],
                         "one (recipient, subject) twice")
        rows = {r[0]: (r[1], r[2]) for r in
                self.sql("SELECT message_id, state, enrollment_id || ':' || step FROM messages "
                         "WHERE message_id IS NOT NULL")}
        for mid in by_mid:
            self.assertIn(mid, rows, "received a message the database does not know")
        sent = {mid for mid, (st, _) in rows.items() if st == "sent"}
        if expect_all_sent:
            self.assertEqual(sent - set(by_mid), set(), "marked sent but never received")
        return msgs, rows


class HeadersTest(DaemonCase):
    def test_headers_and_parts(self):
        s = self.smtpd()
        rows = ['zoe@example.org,Zoë,Ünal,Europe/Madrid,backend,opt_in',
                'evil@example.org,Evil,Doer,UTC,backend,opt_in']
        self.setup_world(s, 0, rows=rows, enroll=False)
        # A first name holding CR/LF and a header of its own.
        self.sql("UPDATE candidates SET first_name = E'Evil\\r\\nBcc: victim@example.com\\nX-Injected: 1'"
                 " WHERE email = 'evil@example.org'")
        self.wb("enroll", "nurture", check=0)
        d = self.daemon()
        wait_until(lambda: s.count() >= 2, 15, "2 messages at smtpd")
        self.wait_sent(2)
        d.stop()
        msgs = {m["rcpt_tos"][0]: m for m in s.messages()}
        self.assertEqual(sorted(msgs), ["evil@example.org", "zoe@example.org"])
        db = {r[0]: r[1:] for r in self.sql(
            "SELECT c.email, m.message_id, m.state, m.id FROM messages m "
            "JOIN candidates c ON c.id = m.candidate_id")}
        want_names = {"date", "from", "reply-to", "to", "subject", "message-id", "mime-version",
                      "content-type", "list-unsubscribe", "list-unsubscribe-post", "feedback-id"}
        expect = {
            "zoe@example.org": ("Zoë Ünal", "S1 Zoë, about backend", "Zoë"),
            "evil@example.org": ("Evil  Bcc: victim@example.com X-Injected: 1 Doer",
                                 "S1 Evil  Bcc: victim@example.com X-Injected: 1, about backend",
                                 None),
        }
        for rcpt, (to_name, subject, greet) in expect.items():
            m, msg = msgs[rcpt], msgs[rcpt]["msg"]
            head = m["raw"].split(b"\r\n\r\n", 1)[0]
            self.assertNotIn(b"\n", head.replace(b"\r\n", b""), "bare LF in the header block")
            self.assertEqual({k.lower() for k in msg.keys()}, want_names, rcpt)
            self.assertRegex(m["mail_from"], r"^b\+[A-Za-z0-9_=-]+@bounces\.example\.com$")
            self.assertEqual(m["rcpt_tos"], [rcpt])
            self.assertRegex(msg["Feedback-ID"], r"^1:[A-Za-z0-9._-]+:ana:warmbench$")
            self.assertEqual(msg["From"].addresses[0].display_name, "Ana Ruiz")
            self.assertEqual(msg["From"].addresses[0].addr_spec, "ana@example.com")
            self.assertEqual(msg["Reply-To"].addresses[0].addr_spec, "ana@example.com")
            self.assertEqual(len(msg["To"].addresses), 1)
            self.assertEqual(msg["To"].addresses[0].addr_spec, rcpt)
            self.assertEqual(msg["To"].addresses[0].display_name, to_name)
            self.assertEqual(str(msg["Subject"]), subject)
            when = email.utils.parsedate_to_datetime(msg["Date"]).timestamp()
            self.assertLess(abs(when - time.time()), 120)
            mid = msg["Message-ID"]
            self.assertRegex(mid, r"^<[^<>@\s]+@example\.com>$")
            self.assertEqual(mid.strip("<>"), db[rcpt][0], "messages.message_id")
            self.assertEqual(db[rcpt][1], "sent")
            unsub = re.fullmatch(r"<" + re.escape(PUBLIC) + r"/u/([A-Za-z0-9_-]+)>",
                                 msg["List-Unsubscribe"])
            self.assertIsNotNone(unsub, msg["List-Unsubscribe"])
            self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
            self.assertEqual(msg.get_content_type(), "multipart/alternative")
            parts = [p.get_content_type() for p in msg.iter_parts()]
            self.assertEqual(sorted(parts), ["text/html", "text/plain"])
            text = msg.get_body(("plain",)).get_content()
            html = msg.get_body(("html",)).get_content()
            for part in (text, html):
                links = re.findall(re.escape(PUBLIC) + r"/c/[A-Za-z0-9_-]+", part)
                self.assertEqual(len(set(links)), 2, part)  # apply and blog, tracked
                self.assertNotIn("https://example.com/jobs", part)
                self.assertIn(PUBLIC + "/u/" + unsub.group(1), part)
            self.assertRegex(html, r'<img src="' + re.escape(PUBLIC) + r'/o/[A-Za-z0-9_-]+\.gif"')
            self.assertNotIn("/o/", text)
            if greet:
                self.assertIn(f"Hello {greet},", text)
                self.assertIn(f"Hello {greet},", html)


class OrderTest(DaemonCase):
    def test_two_steps_in_order_delayed_and_threaded(self):
        s = self.smtpd()
        steps = [{"after": "0s", "subject": "S1 {{first_name|Hi}}", "text": "s1.txt",
                  "html": "s1.html"},
                 {"after": "2s", "subject": "S2 {{first_name|Hi}}", "text": "s2.txt",
                  "thread": True}]
        self.setup_world(s, 10, sequences=[sequence(steps=steps)])
        d = self.daemon()
        wait_until(lambda: s.count() >= 20, 30, "20 messages at smtpd")
        wait_until(lambda: self.scalar("SELECT count(*) FROM enrollments WHERE state = 'finished'")
                   == "10", 10, "10 finished enrollments")
        d.stop()
        self.assertEqual(s.count(), 20)
        per = collections.defaultdict(dict)
        for m in s.messages():
            step = str(m["msg"]["Subject"]).split()[0]
            self.assertNotIn(step, per[m["rcpt_tos"][0]], "a step twice")
            per[m["rcpt_tos"][0]][step] = m
        self.assertEqual(len(per), 10)
        for rcpt, st in per.items():
            one, two = st["S1"], st["S2"]
            self.assertGreater(two["n"], one["n"], rcpt)  # arrival order
            self.assertGreaterEqual(two["mtime"] - one["mtime"], 1.9, rcpt)
            self.assertIsNone(one["msg"]["In-Reply-To"])
            self.assertEqual(two["msg"]["In-Reply-To"], one["msg"]["Message-ID"])
            self.assertEqual(two["msg"]["References"], one["msg"]["Message-ID"])
            self.assertEqual(two["msg"].get_content_type(), "text/plain")
        gaps = self.sql("SELECT extract(epoch FROM b.sending_at - a.sent_at) FROM messages a "
                        "JOIN messages b ON b.enrollment_id = a.enrollment_id AND b.step = 2 "
                        "WHERE a.step = 1")
        self.assertEqual(len(gaps), 10)
        self.assertTrue(all(float(g[0]) >= 1.9 for g in gaps), gaps)
        self.assertEqual(self.states(), {"sent": 20})


class WindowTest(DaemonCase):
    def test_outside_window_waits_for_the_next_opening(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        if now.minute == 59 and now.second > 40:  # keep the hour fixed for the test
            time.sleep(61 - now.second)
            now = datetime.datetime.now(datetime.timezone.utc)
        # The window is the hour that is now current six hours east of UTC:
        # a candidate in Etc/GMT-6 (UTC+6) is inside it, one in UTC is not.
        start = (now.hour + 6) % 24
        win = {"days": ALL_DAYS, "start": "%02d:00" % start,
               "end": "%02d:00" % (start + 1), "timezone": "candidate"}
        s = self.smtpd()
        rows = ["in@example.org,In,Side,Etc/GMT-6,backend,opt_in",
                "out@example.org,Out,Side,UTC,backend,opt_in"]
        self.setup_world(s, 0, sequences=[sequence(window=win)], rows=rows)
        opening = now.replace(hour=start, minute=0, second=0, microsecond=0)
        if start < now.hour:
            opening += datetime.timedelta(days=1)
        due = self.scalar("SELECT extract(epoch FROM e.next_due_at) FROM enrollments e "
                          "JOIN candidates c ON c.id = e.candidate_id "
                          "WHERE c.email = 'out@example.org'")
        self.assertEqual(float(due), opening.timestamp())
        d = self.daemon()
        wait_until(lambda: s.count() >= 1, 10, "mail for the candidate inside the window")
        time.sleep(3)  # the daemon ticks (at least once a second while idle)
        d.stop()
        self.assertEqual([m["rcpt_tos"] for m in s.messages()], [["in@example.org"]])
        out = self.sql("SELECT e.state, e.step, extract(epoch FROM e.next_due_at),"
                       " (SELECT count(*) FROM messages m WHERE m.enrollment_id = e.id)"
                       " FROM enrollments e JOIN candidates c ON c.id = e.candidate_id"
                       " WHERE c.email = 'out@example.org'")
        self.assertEqual(out[0][0:2], ["active", "0"])
        self.assertEqual(float(out[0][2]), opening.timestamp())
        self.assertEqual(out[0][3], "0")


class NotifyTest(DaemonCase):
    def test_enroll_while_running_is_picked_up_at_once(self):
        s = self.smtpd()
        self.setup_world(s, 3, enroll=False)
        d = self.daemon()
        time.sleep(1.5)  # let the idle scheduler settle into its long sleep
        self.wb("enroll", "nurture", "--email", addr(1), check=0)
        t0 = time.monotonic()
        wait_until(lambda: s.count() >= 1, 5, "mail after enroll")
        took = time.monotonic() - t0
        self.assertLess(took, 2.0)
        self.assertEqual(s.messages()[0]["rcpt_tos"], [addr(1)])
        d.stop()


class FaultTest(DaemonCase):
    def test_tempfail_451_retried_until_each_delivered_once(self):
        s = self.smtpd("--fail-rate", "0.3", "--fail-code", "451", "--seed", "7")
        self.setup_world(s, 40)
        d = self.daemon()
        self.wait_sent(40, timeout=60)
        d.stop()
        self.assertEqual(s.count(), 40)
        self.assertGreater(s.stats()["refused"], 0)
        self.assert_once_each(s)
        self.assertEqual(self.states(), {"sent": 40})
        self.assertGreater(int(self.scalar("SELECT max(attempts) FROM messages")), 1)

    def test_550_511_is_a_hard_bounce_never_retried(self):
        s = self.smtpd("--reject-rcpt-regex", "^p003@", "--reject-code", "550",
                       "--reject-status", "5.1.1")
        self.setup_world(s, 6)
        d = self.daemon()
        self.wait_sent(5)
        wait_until(lambda: self.count("state = 'failed'") == 1, 10, "the bounce stored")
        time.sleep(2.5)  # a retry (retry_base_s 1) would have come by now
        d.stop()
        self.assertEqual(s.count(), 5)
        self.assertEqual(s.stats()["refused"], 1)
        self.assertNotIn(addr(3), [m["rcpt_tos"][0] for m in s.messages()])
        row = self.sql("SELECT m.state, m.attempts, e.state, e.stop_reason FROM messages m "
                       "JOIN enrollments e ON e.id = m.enrollment_id "
                       "JOIN candidates c ON c.id = m.candidate_id WHERE c.email = '%s'" % addr(3))
        self.assertEqual(row, [["failed", "1", "stopped", "bounce"]])
        self.assertEqual(self.sql("SELECT email, reason FROM suppressions"), [[addr(3), "bounce"]])
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE type = 'bounce'"), "1")

    def test_554_fails_without_suppressing(self):
        s = self.smtpd("--reject-rcpt-regex", "^p002@", "--reject-code", "554",
                       "--reject-status", "5.7.1")
        self.setup_world(s, 4)
        d = self.daemon()
        self.wait_sent(3)
        wait_until(lambda: self.count("state = 'failed'") == 1, 10, "the failure stored")
        time.sleep(2.5)
        d.stop()
        self.assertEqual(s.stats()["refused"], 1)
        self.assertEqual(s.count(), 3)
        row = self.sql("SELECT m.state, m.attempts, e.state, e.stop_reason FROM messages m "
                       "JOIN enrollments e ON e.id = m.enrollment_id "
                       "JOIN candidates c ON c.id = m.candidate_id WHERE c.email = '%s'" % addr(2))
        self.assertEqual(row, [["failed", "1", "stopped", "failed"]])
        self.assertEqual(self.scalar("SELECT count(*) FROM suppressions"), "0")

    def test_smtp_server_absent_at_start(self):
        s = self.smtpd(start=False)
        self.setup_world(s, 20)
        d = self.daemon()
        wait_until(lambda: self.count("state = 'retry'") > 0, 10, "a first tempfail")
        time.sleep(3)
        self.assertEqual(self.count("state = 'sent'"), 0)
        s.start()
        self.wait_sent(20, timeout=40)
        d.stop()
        self.assertEqual(s.count(), 20)
        self.assert_once_each(s)
        self.assertEqual(self.states(), {"sent": 20})


class CrashTest(DaemonCase):
    def test_kill_9_mid_run_never_resends(self):
        s = self.smtpd("--delay-ms", "10")
        self.setup_world(s, 200)
        d = self.daemon()
        wait_until(lambda: s.count() >= 40, 30, "40 messages at smtpd")
        d.kill9()
        # A staged outcome (sql/032) is known: recovery applies it.
        at_kill = {r[0]: r[1] for r in self.sql(
            "SELECT id, CASE WHEN state = 'sending' AND out_outcome IS NOT NULL"
            " THEN 'staged' ELSE state END FROM messages")}
        in_flight = {i for i, st in at_kill.items() if st == "sending"}
        self.assertGreater(len(in_flight), 0, "nothing was in flight at the kill")
        # At most two per connection (4): one on the wire, one behind it.
        self.assertLessEqual(len(in_flight), 8, "marked sending beyond the window")
        # No lease has run out: the new daemon recovers what the dead one
        # held because its liveness lock is gone.
        d2 = self.daemon()
        wait_until(lambda: self.count("state IN ('sent', 'unknown')") == 200, 30,
                   "every message sent or unknown", interval=0.2)
        d2.stop()
        final = {r[0]: r[1] for r in self.sql("SELECT id, state FROM messages")}
        self.assertEqual(len(final), 200)
        unknown = {i for i, st in final.items() if st == "unknown"}
        self.assertLessEqual(unknown, in_flight, "unknown but not in flight at the kill")
        self.assertEqual({i for i, st in at_kill.items() if st == "sent"} - {
            i for i, st in final.items() if st == "sent"}, set())
        msgs, rows = self.assert_once_each(s)
        self.assertEqual(s.count(), len(msgs))
        self.assertGreaterEqual(len(msgs), 200 - len(unknown))
        self.assertEqual(int(self.scalar("SELECT count(*) FROM events WHERE type = 'unknown'")),
                         len(unknown))
        # unknown counts as sent for the sequence: it goes on (here: ends).
        self.assertEqual(self.sql("SELECT state, count(*) FROM enrollments GROUP BY state"),
                         [["finished", "200"]])
        # Claims given back after the crash no longer count as sends of the day.
        self.assertEqual(int(self.scalar("SELECT sum(sent) FROM sender_usage")), 200)


class RecoveryTest(DaemonCase):
    """Lease recovery (sql/009_send_hot.sql wb_recover) of what a crashed
    daemon left: claimed rows go back to the queue and are sent once;
    sending rows become unknown and are never sent; a claim with a message
    still under lease waits for it."""

    def test_recover_claimed_sending_and_live_leases(self):
        s = self.smtpd()
        self.setup_world(s, 12)
        # A daemon that hung (alive, its session holds its lock): 12 claimed
        # in two claims, 4 of them marked.
        self.hold_lock("ghost")
        ids = [int(r[0]) for r in self.sql(
            "SELECT id FROM wb_claim('ana', 8, 0, 0, 'ghost', 60, 'example.com')")]
        ids += [int(r[0]) for r in self.sql(
            "SELECT id FROM wb_claim('ana', 8, 0, 0, 'ghost', 60, 'example.com')")]
        self.assertEqual(len(ids), 12)
        rows = self.sql("SELECT id, message_id FROM messages ORDER BY id")
        for mid in [r[1] for r in rows]:
            self.assertRegex(mid, r"^wb\.[0-9]+\.[0-9a-f]{16}@example\.com$")
        marked = [int(r[0]) for r in rows[:4]]
        mids = [r[1] for r in rows[:4]]
        got = self.sql("SELECT id FROM wb_mark_sending('{%s}', '{%s}', '{a@x,b@x,c@x,d@x}',"
                       " '{s,s,s,s}', '{NULL,NULL,NULL,NULL}', 'ghost', 60)"
                       % (",".join(map(str, marked)), ",".join(mids)))
        self.assertEqual(sorted(int(r[0]) for r in got), marked)
        # A mark whose Message-ID is not the claim's is refused.
        self.assertEqual(self.sql(
            "SELECT id FROM wb_mark_sending(ARRAY[%s]::bigint[], '{wb.0.x@evil.example}',"
            " '{e@x}', '{s}', '{NULL}', 'ghost', 60)" % rows[4][0]), [])
        # One claimed row as a daemon older than migration 009 left it: no
        # Message-ID until its mark.
        legacy = int(rows[11][0])
        self.sql("UPDATE messages SET message_id = NULL WHERE id = %d" % legacy)
        # Nothing has expired: recovery changes nothing, keeps both claims.
        self.assertEqual(self.sql("SELECT * FROM wb_recover('tester')"), [["0", "0", "0"]])
        self.assertEqual(self.scalar("SELECT count(*) FROM send_claims"), "2")
        # Every lease runs out but one of the sending rows', which still has a minute.
        self.sql("UPDATE messages SET lease_until = now() - interval '1 second'")
        self.sql("UPDATE messages SET lease_until = now() + interval '1 minute' WHERE id = %d"
                 % marked[0])
        self.sql("UPDATE send_claims SET check_at = now() - interval '1 second'")
        self.assertEqual(self.sql("SELECT * FROM wb_recover('tester')"), [["8", "3", "0"]])
        self.assertEqual(self.states(), {"queued": 8, "unknown": 3, "sending": 1})
        self.assertEqual(self.count("state = 'queued' AND next_attempt_at IS NULL"), 0)
        self.assertEqual(self.count("state <> 'queued' AND next_attempt_at IS NOT NULL"), 0)
        # The claim holding the live lease waits for it; the other is done.
        left = self.sql("SELECT %d = ANY (ids), check_at > now() + interval '50 seconds'"
                        " FROM send_claims" % marked[0])
        self.assertEqual(left, [["t", "t"]])
        self.assertEqual(int(self.scalar("SELECT sum(sent) FROM sender_usage")), 4)
        # A daemon sends the 8 given back, each once, and none of the 4 marked.
        d = self.daemon()
        wait_until(lambda: self.count("state = 'sent'") == 8, 30, "8 requeued sent")
        d.stop()
        msgs, _ = self.assert_once_each(s, expect_all_sent=False)
        self.assertEqual(len(msgs), 8)
        got_mids = {m["msg"]["Message-ID"].strip("<>") for m in msgs}
        self.assertEqual(got_mids & set(mids), set(), "a marked message was sent")
        # The legacy row was given a Message-ID when claimed again, and sent.
        mid = self.scalar("SELECT message_id FROM messages WHERE id = %d AND state = 'sent'"
                          % legacy)
        self.assertRegex(mid or "", r"^wb\.%d\.[0-9a-f]{16}@example\.com$" % legacy)
        self.assertIn(mid, got_mids)
        # The hung daemon's session ends: its last message is unknown at once.
        self.release_lock("ghost")
        self.assertEqual(self.sql("SELECT * FROM wb_recover('tester')"), [["0", "1", "0"]])
        self.assertEqual(self.sql("SELECT count(*) FROM send_claims"), [["0"]])

    def test_dead_owner_recovered_at_once(self):
        """No lease has run out, but the owner's lock is gone: its claims are
        recovered at once, by anyone but the owner itself."""
        s = self.smtpd()
        self.setup_world(s, 8)
        ids = [int(r[0]) for r in self.sql(
            "SELECT id FROM wb_claim('ana', 8, 0, 0, 'dead', 600, 'example.com')")]
        rows = self.sql("SELECT id, message_id FROM messages WHERE id IN (%s) ORDER BY id LIMIT 3"
                        % ",".join(map(str, ids)))
        self.sql("SELECT wb_mark_sending('{%s}', '{%s}', '{a@x,b@x,c@x}', '{s,s,s}',"
                 " '{NULL,NULL,NULL}', 'dead', 600)"
                 % (",".join(r[0] for r in rows), ",".join(r[1] for r in rows)))
        # It heard back about one of the three and staged that before dying.
        self.assertEqual(self.scalar(
            "SELECT count(*) FROM wb_send_window('{}', '{}', '{}', '{}', '{}', 'dead', 600,"
            " '{%s}', '{sent}', '{250}', '{250 ok}', '{0}')" % rows[0][0]), "0")
        self.assertEqual(self.sql("SELECT state, out_outcome, last_reply FROM messages"
                                  " WHERE id = %s" % rows[0][0]), [["sending", "sent", "250 ok"]])
        self.hold_lock("dead")
        self.assertEqual(self.sql("SELECT * FROM wb_recover('tester')"), [["0", "0", "0"]])
        self.release_lock("dead")
        # The owner itself never takes its own claims as dead.
        self.assertEqual(self.sql("SELECT * FROM wb_recover('dead')"), [["0", "0", "0"]])
        self.assertEqual(self.sql("SELECT * FROM wb_recover('tester')"), [["5", "2", "0"]])
        self.assertEqual(self.states(), {"queued": 5, "unknown": 2, "sent": 1})
        self.assertEqual(self.scalar("SELECT state FROM messages WHERE id = %s" % rows[0][0]),
                         "sent")
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE type = 'sent'"), "1")
        self.assertEqual(self.sql("SELECT count(*) FROM send_claims"), [["0"]])
        self.assertEqual(self.sql("SELECT count(*) FROM messages WHERE out_outcome IS NOT NULL"),
                         [["0"]])

    def test_send_path_columns_are_not_indexed(self):
        """The rows of a message are rewritten in place (HOT) only while no
        index covers a column that claim -> sending -> sent changes."""
        s = self.smtpd()
        self.setup_world(s, 0)
        changed = {"state", "lease_owner", "lease_until", "rcpt", "subject", "variant",
                   "sending_at", "sent_at", "last_reply", "updated_at", "attempts",
                   "out_outcome", "out_code", "out_retry_s"}
        rows = self.sql("""SELECT i.indexrelid::regclass, a.attname FROM pg_index i
                           JOIN pg_attribute a ON a.attrelid = i.indrelid
                           WHERE i.indrelid = 'messages'::regclass AND a.attnum > 0
                             AND (a.attnum = ANY (i.indkey::int2[])
                                  OR pg_get_expr(i.indpred, i.indrelid) ~ ('\m' || a.attname || '\M')
                                  OR pg_get_expr(i.indexprs, i.indrelid) ~ ('\m' || a.attname || '\M'))""")
        self.assertTrue(rows)
        self.assertEqual([r for r in rows if r[1] in changed], [])


class UpgradeTest(DaemonCase):
    """Migration 009 on a database a daemon older than it was using: what
    that daemon had claimed, marked or given back is sent at most once."""

    def old_claim(self, n):
        return [r[0] for r in self.sql(
            "SELECT id FROM wb_claim('ana', %d, 0, 0, 'old', 60)" % n)]

    def test_rows_of_an_older_daemon_after_009(self):
        s = self.smtpd()
        # Migrations 001-008 as they were before the functions left them
        # (their function bodies are those such a daemon ran with), and no
        # sql/functions/.
        old_sql = os.path.join(self.tmp, "sql-008")
        shutil.copytree(os.path.join(harness.ROOT, "tests", "integration", "fixtures", "sql-008"),
                        old_sql)
        os.makedirs(os.path.join(old_sql, "functions"))
        self.setup_world(s, 0, enroll=False, migrate_env={"WARMBENCH_SQL_DIR": old_sql})
        self.assertEqual(self.scalar("SELECT max(version) FROM schema_migrations"), "8")
        # What that warmbench's import and enroll left (today's need the
        # functions of 011): eight candidates due in the sequence.
        self.sql("INSERT INTO sequences (id, content_hash, definition) VALUES"
                 " ('nurture', 'old', $$%s$$::jsonb)" % json.dumps(self.seqs[0]))
        self.sql("INSERT INTO candidates (email, first_name, last_name, timezone, tags, consent)"
                 " SELECT 'p' || lpad(i::text, 3, '0') || '@example.org', 'P' || i, 'Last',"
                 " 'UTC', '{backend}', 'opt_in' FROM generate_series(0, 7) i")
        self.sql("INSERT INTO enrollments (candidate_id, sequence_id, next_due_at)"
                 " SELECT id, 'nurture', now() FROM candidates")
        # The old daemon claimed 8 (no Message-ID until marked), marked 2
        # and gave 2 back at SIGTERM (its release leaves next_attempt_at).
        ids = sorted(int(i) for i in self.old_claim(8))
        self.assertEqual(len(ids), 8)
        self.sql("SELECT wb_mark_sending('{%d,%d}', '{wb.%d.a@example.com,wb.%d.b@example.com}',"
                 " '{a@x,b@x}', '{s,s}', '{NULL,NULL}', 'old', 60)"
                 % (ids[0], ids[1], ids[0], ids[1]))
        self.sql("UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL"
                 " WHERE id IN (%d, %d)" % (ids[2], ids[3]))
        self.assertEqual(self.count("message_id IS NULL"), 6)
        self.wb("migrate", check=0)
        self.assertGreaterEqual(int(self.scalar("SELECT max(version) FROM schema_migrations")), 9)
        # Still running across the migration, the old daemon marks one more
        # (the Message-ID is its own) and gives one back.
        got = self.sql("SELECT id FROM wb_mark_sending('{%d}', '{wb.%d.c@example.com}', '{c@x}',"
                       " '{s}', '{NULL}', 'old', 60)" % (ids[4], ids[4]))
        self.assertEqual(got, [[str(ids[4])]])
        self.sql("UPDATE messages SET state = 'queued', lease_owner = NULL, lease_until = NULL"
                 " WHERE id = %d" % ids[5])
        # Then it stops for good; its leases run out.
        self.sql("UPDATE messages SET lease_until = now() - interval '1 second'"
                 " WHERE state IN ('claimed', 'sending')")
        self.sql("UPDATE send_claims SET check_at = now() - interval '1 second'")
        d = self.daemon()
        wait_until(lambda: self.count("state = 'sent'") == 5, 30, "5 sent")
        wait_until(lambda: self.count("state = 'unknown'") == 3, 30, "3 unknown")
        d.stop()
        self.assertEqual(self.states(), {"sent": 5, "unknown": 3})
        msgs, _ = self.assert_once_each(s)
        self.assertEqual(len(msgs), 5)
        self.assertEqual(self.count("state = 'unknown' AND id NOT IN (%d, %d, %d)"
                                    % (ids[0], ids[1], ids[4])), 0)
        self.assertEqual(self.count("message_id IS NULL"), 0)


class PgRestartTest(DaemonCase):
    def test_postgresql_restart_mid_run(self):
        s = self.smtpd()
        self.setup_world(s, 100)
        d = self.daemon()
        wait_until(lambda: s.count() >= 20, 30, "20 messages at smtpd")
        self.assertLess(s.count(), 100, "all sent before the restart; nothing to test")
        self.pg.restart()
        d.wait_log("database connection restored", 20)
        self.wait_sent(100, timeout=60)
        d.stop()
        self.assertEqual(self.states(), {"sent": 100})
        self.assertEqual(s.count(), 100)
        self.assert_once_each(s)


class TwoDaemonsTest(DaemonCase):
    def test_two_daemons_share_the_work(self):
        s = self.smtpd()
        self.setup_world(s, 300)
        # Both start, then both race for the same queue. Each listens on its
        # own tracking port, as two daemons on one host must.
        other = json.load(open(self.cfg_path))
        other["http"]["listen"] = "127.0.0.1:%d" % harness.free_port()
        other_path = harness.write(os.path.join(self.tmp, "warmbench-2.json"), json.dumps(other))
        d1 = self.daemon(wait_ready=False)
        d2 = self.daemon(wait_ready=False, cfg_path=other_path)
        d1.wait_log("ready:")
        d2.wait_log("ready:")
        self.wait_sent(300, timeout=60)
        d1.stop()
        d2.stop()
        self.assertEqual(s.count(), 300)
        self.assert_once_each(s)
        self.assertEqual(self.states(), {"sent": 300})
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE lease_owner IS NOT NULL"
                                     " OR lease_until IS NOT NULL"), "0")
        self.assertEqual(self.scalar("SELECT sum(sent) FROM sender_usage"), "300")


class LimitsTest(DaemonCase):
    def test_daily_limit_holds_across_a_restart(self):
        s = self.smtpd()
        self.setup_world(s, 10, senders={"ana": {"from": "Ana Ruiz <ana@example.com>",
                                                 "daily_limit": 5, "min_interval_s": 0}})
        d = self.daemon()
        self.wait_sent(5)
        time.sleep(2.5)  # idle ticks come every second
        d.stop()
        self.assertEqual(s.count(), 5)
        d = self.daemon()
        time.sleep(2.5)
        d.stop()
        self.assertEqual(s.count(), 5)
        # The rest wait as due enrollments: a message is made only when claimed.
        self.assertEqual(self.states(), {"sent": 5})
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments WHERE step = 0"
                                     " AND next_due_at <= now()"), "5")
        self.assertEqual(self.scalar("SELECT sum(sent) FROM sender_usage"), "5")

    def test_daily_limit_not_used_up_by_released_claims(self):
        # One slow connection: the claim takes 20 (the limit), only the mark
        # window (8 per connection) is marked `sending` and goes out at the
        # SIGTERM; the rest go back to the queue unsent. They must not count
        # against the day's limit.
        s = self.smtpd("--delay-ms", "300")
        self.setup_world(s, 30, connections=1,
                         senders={"ana": {"from": "Ana Ruiz <ana@example.com>",
                                          "daily_limit": 20, "min_interval_s": 0}})
        d = self.daemon()
        wait_until(lambda: self.count("state = 'sending'") >= 1, 10, "a message in flight")
        self.assertEqual(d.stop(), 0)
        first = self.count("state = 'sent'")
        self.assertLess(first, 20, "everything went out before the SIGTERM; nothing to test")
        self.assertEqual(self.count("state IN ('claimed', 'sending', 'unknown')"), 0,
                         self.states())
        d = self.daemon()
        self.wait_sent(20, timeout=30)
        time.sleep(2.5)
        d.stop()
        self.assertEqual(s.count(), 20)
        # The other 10 wait: released claims as queued messages, the rest as
        # due enrollments (a message is made only when claimed).
        states = self.states()
        self.assertEqual(states.pop("sent"), 20)
        self.assertEqual(set(states) - {"queued"}, set(), states)
        due = int(self.scalar("SELECT count(*) FROM enrollments WHERE step = 0"
                              " AND next_due_at <= now()"))
        self.assertEqual(states.get("queued", 0) + due, 10)
        self.assertEqual(self.scalar("SELECT sum(sent) FROM sender_usage"), "20")

    def test_min_interval_spaces_sends(self):
        s = self.smtpd()
        self.setup_world(s, 3, senders={"ana": {"from": "Ana Ruiz <ana@example.com>",
                                                "daily_limit": 0, "min_interval_s": 1}})
        d = self.daemon()
        self.wait_sent(3, timeout=20)
        d.stop()
        starts = [float(r[0]) for r in self.sql(
            "SELECT extract(epoch FROM sending_at) FROM messages ORDER BY sending_at")]
        arrivals = sorted(m["mtime"] for m in s.messages())
        self.assertEqual(len(arrivals), 3)
        for a, b in zip(starts, starts[1:]):
            # The gap is kept between claims; the mark that starts SMTP
            # trails its claim by a query or two.
            self.assertGreaterEqual(b - a, 0.85, starts)
        for a, b in zip(arrivals, arrivals[1:]):
            self.assertGreaterEqual(b - a, 0.8, arrivals)
        self.assertGreaterEqual(arrivals[-1] - arrivals[0], 1.9, arrivals)


class SignalTest(DaemonCase):
    def test_sigterm_exits_0(self):
        s = self.smtpd()
        self.setup_world(s, 5)
        d = self.daemon()
        self.wait_sent(5)
        self.assertEqual(d.stop(), 0)
        self.assertIn("stopped", d.text())
        self.assertIsNone(d.sanitizer_report(), d.text())

    def test_sigterm_mid_run_finishes_in_flight(self):
        s = self.smtpd("--delay-ms", "50")
        self.setup_world(s, 60, connections=2)
        d = self.daemon()
        wait_until(lambda: s.count() >= 5, 15, "5 messages at smtpd")
        t0, at_term = time.monotonic(), s.count()
        self.assertEqual(d.stop(), 0)
        took = time.monotonic() - t0
        self.assertLess(took, 5)
        self.assertIn("stopped", d.text())
        st = self.states()
        self.assertLess(st.get("sent", 0), 60,
                        "all sent before the SIGTERM took effect (%d at SIGTERM, stop took "
                        "%.2fs):\n%s" % (at_term, took, d.text()))
        self.assertEqual(set(st) - {"sent", "queued"}, set(), st)  # nothing left in flight
        self.assertEqual(s.count(), st["sent"])
        self.assert_once_each(s)
        d = self.daemon()
        self.wait_sent(60, timeout=30)
        d.stop()
        self.assertEqual(s.count(), 60)
        self.assert_once_each(s)

    def test_sighup_broken_config_kept_valid_reload_applied(self):
        s = self.smtpd()
        self.setup_world(s, 3, enroll=False)
        d = self.daemon()
        good = open(self.cfg_path).read()
        cli = write(os.path.join(self.tmp, "cli.json"), good)  # the CLI keeps a good copy
        write(self.cfg_path, good[: len(good) // 2])  # truncated JSON
        d.signal(signal.SIGHUP)
        d.wait_log("keeping the configuration in use")
        self.assertTrue(d.alive())
        self.wb("--config", cli, "enroll", "nurture", "--email", addr(0), check=0)
        wait_until(lambda: s.count() >= 1, 10, "mail after a rejected reload")
        write(self.cfg_path, good)
        write(os.path.join(self.tmp, "templates", "s1.txt"), "Reloaded {{first_name}}: "
              "{{links.apply}} {{unsubscribe_url}}\n")
        d.signal(signal.SIGHUP)
        d.wait_log("configuration reloaded")
        self.wb("enroll", "nurture", "--email", addr(1), check=0)
        wait_until(lambda: s.count() >= 2, 10, "mail after a good reload")
        self.assertEqual(d.stop(), 0)
        msgs = {m["rcpt_tos"][0]: m["msg"] for m in s.messages()}
        self.assertIn("Hello P0,", msgs[addr(0)].get_body(("plain",)).get_content())
        self.assertTrue(msgs[addr(1)].get_body(("plain",)).get_content().startswith(
            "Reloaded P1: " + PUBLIC + "/c/"))
