"""The tracking endpoint (SPEC "HTTP endpoint", machine opens and clicks)
against a real PostgreSQL, through tests/drivers/drv_http (http_loop +
tracking + eventq + metrics on pg_loop, wired as in warmbenchd)."""
import concurrent.futures
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import time

import harness
from daemon_util import SANITIZER_MARKS, wait_until

DRV = os.path.join(harness.BUILD, "tests", "drv_http")
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.0 Safari/605.1.15")
GOOGLE = ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
          "(via ggpht.com GoogleImageProxy)")

SEQ = {
    "id": "nurture",
    "sender": "ana",
    "audience": {"tags_any": ["backend"]},
    "links": {"apply": "https://example.com/jobs/backend?x=1&y=2",
              "blog": "https://example.com/eng"},
    "steps": [{"after": "0d", "subject": "Hi", "text": "intro.txt", "html": "intro.html"}],
    "stop_on": ["reply", "unsubscribe", "bounce", "click:apply"],
    "handoff_on": ["reply", "click:apply"],
}
TEMPLATES = {"intro.txt": "See {{links.apply}} {{links.blog}}\n{{unsubscribe_url}}\n",
             "intro.html": "<p><a href=\"{{links.apply}}\">apply</a></p>\n"}


class HttpTest(harness.WbTestCase):
    def start(self, env=None, seq=SEQ, admin=False, database=None, **http):
        h = {"listen": "127.0.0.1:%d" % harness.free_port(),
             "public_url": "http://127.0.0.1:8025", "machine_click_s": 5}
        if admin:
            h["admin_listen"] = "127.0.0.1:%d" % harness.free_port()
        h.update(http)
        over = {"http": h}
        if database:
            over["database"] = database
        self.config(sequences=[seq], templates=TEMPLATES, **over)
        if not database:
            self.wb("migrate", check=0)
            self.sql("INSERT INTO sequences (id, content_hash, definition) VALUES "
                     "('nurture', 'x', $$%s$$::jsonb)" % json.dumps(seq))
        e = dict(os.environ)
        e.update(env or {})
        self.err_path = os.path.join(self.tmp, "drv.err")
        self.drv = subprocess.Popen([DRV, "--config", self.cfg_path], stdout=subprocess.PIPE,
                                    stderr=open(self.err_path, "w"), text=True, env=e)
        self.procs.append(self.drv)
        line = self.drv.stdout.readline().split()
        self.assertEqual(line[:1], ["READY"], self.stderr())
        self.port, self.admin_port = int(line[1]), int(line[2])
        self.addCleanup(self.check_sanitizers)

    def wait_healthy(self, port=None):
        """/healthz is 503 until the first connection is made."""
        wait_until(lambda: self.request("GET", "/healthz", port=port)[0] == 200, 10, "healthz 200")

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def check_sanitizers(self):
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, err, err)

    def stop(self):
        """SIGTERM: the driver flushes queued events and exits 0."""
        self.drv.send_signal(signal.SIGTERM)
        self.assertEqual(self.drv.wait(20), 0, self.stderr())

    def token(self, kind, mid, link=0):
        out = subprocess.run([DRV, "--config", self.cfg_path, "token", kind, str(mid), str(link)],
                             check=True, capture_output=True, text=True).stdout
        return out.strip()

    def message(self, sent_ago_s=60, email=None):
        """A candidate, an active enrollment and a sent message; returns
        (message id, enrollment id, candidate id)."""
        email = email or "p%d@example.com" % random.randrange(10**9)
        cid = self.scalar("INSERT INTO candidates (email, consent) VALUES ('%s', 'opt_in') "
                          "RETURNING id" % email)
        eid = self.scalar("INSERT INTO enrollments (candidate_id, sequence_id, step) "
                          "VALUES (%s, 'nurture', 1) RETURNING id" % cid)
        mid = self.scalar("INSERT INTO messages (enrollment_id, candidate_id, sequence_id, step, "
                          "sender, state, sent_at) VALUES (%s, %s, 'nurture', 1, 'ana', 'sent', "
                          "now() - interval '%d seconds') RETURNING id" % (eid, cid, sent_ago_s))
        return int(mid), int(eid), int(cid)

    def request(self, method, path, ua=BROWSER, body=None, headers=None, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        h = {"User-Agent": ua} if ua else {}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def events(self, extra=""):
        return self.sql("SELECT message_id, type, machine, detail FROM events "
                        "WHERE type NOT IN ('handoff') %s ORDER BY id" % extra)

    def wait_events(self, n):
        return wait_until(lambda: len(self.events()) >= n and self.events(), 10, "%d events" % n)

    # ---- opens ----
    def test_pixel_returns_gif_and_records_human_open(self):
        self.start()
        mid, _, _ = self.message()
        st, h, body = self.request("GET", "/o/%s.gif" % self.token("open", mid))
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "image/gif")
        self.assertEqual(len(body), 43)
        self.assertTrue(body.startswith(b"GIF89a"))
        self.assertIn("no-store", h["Cache-Control"])
        ev = self.wait_events(1)
        self.assertEqual(ev, [[str(mid), "open", "f", "{}"]])

    def test_privacy_proxy_opens_are_machine(self):
        self.start()
        # One message each: repeats of one message within a minute are not
        # recorded again.
        path = lambda: "/o/%s.gif" % self.token("open", self.message()[0])
        for ua in ("Mozilla/5.0", GOOGLE, "YahooMailProxy; https://help.yahoo.com", None):
            self.assertEqual(self.request("GET", path(), ua=ua)[0], 200)
        st, _, _ = self.request("GET", path(), headers={"Sec-Purpose": "prefetch"})
        self.assertEqual(st, 200)
        st, h, body = self.request("HEAD", path())
        self.assertEqual((st, h["Content-Type"], body), (200, "image/gif", b""))
        ev = self.wait_events(6)
        self.assertEqual(len(ev), 6)
        for e in ev:
            self.assertEqual(e[1:3], ["open", "t"])
            self.assertTrue(json.loads(e[3])["machine"])
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates "
                                     "WHERE last_engaged_at IS NOT NULL"), "0")

    # ---- clicks ----
    def test_click_redirects_to_the_configured_url_and_records_the_link(self):
        self.start()
        mid, _, _ = self.message()
        st, h, body = self.request("GET", "/c/%s" % self.token("click", mid, 1))
        self.assertEqual(st, 302)
        self.assertEqual(h["Location"], "https://example.com/eng")
        st, h, _ = self.request("GET", "/c/%s?utm=zz" % self.token("click", mid, 0))
        self.assertEqual(st, 302)
        self.assertEqual(h["Location"], "https://example.com/jobs/backend?x=1&y=2")
        ev = self.wait_events(2)
        self.assertEqual([(e[1], e[2], json.loads(e[3])) for e in ev],
                         [("click", "f", {"link": "blog"}), ("click", "f", {"link": "apply"})])

    def test_click_sooner_than_machine_click_s_is_machine(self):
        self.start()
        mid, _, _ = self.message(sent_ago_s=1)
        st, h, _ = self.request("GET", "/c/%s" % self.token("click", mid, 1))
        self.assertEqual((st, h["Location"]), (302, "https://example.com/eng"))
        ev = self.wait_events(1)
        self.assertEqual(ev[0][2], "t")
        self.assertEqual(json.loads(ev[0][3]), {"link": "blog", "machine": True, "why": "too-soon"})

    def test_head_click_is_machine_and_has_no_body(self):
        self.start()
        mid, _, _ = self.message()
        st, h, body = self.request("HEAD", "/c/%s" % self.token("click", mid, 1))
        self.assertEqual((st, h["Location"], body), (302, "https://example.com/eng", b""))
        ev = self.wait_events(1)
        self.assertEqual(ev[0][1:3], ["click", "t"])

    def test_scanner_click_is_machine(self):
        self.start()
        for ua in ("Barracuda Sentinel (EE)", "python-requests/2.31", "curl/7.88.1"):
            mid, _, _ = self.message()
            self.assertEqual(self.request("GET", "/c/%s" % self.token("click", mid, 1), ua=ua)[0],
                             302)
        ev = self.wait_events(3)
        self.assertEqual({e[2] for e in ev}, {"t"})

    def test_bad_tokens_get_404_and_record_nothing(self):
        self.start()
        mid, _, _ = self.message()
        o, c, u = self.token("open", mid), self.token("click", mid, 0), self.token("unsub", mid)
        b = self.token("bounce", mid)
        flip = lambda t, i: t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1:]
        paths = [
            "/o/%s.gif" % flip(o, 3), "/o/%s.gif" % flip(o, len(o) - 1), "/o/%s.gif" % o[:-1],
            "/o/%s" % o, "/o/%s.png" % o, "/o/%s.gif/x" % o, "/o/.gif", "/o/",
            "/c/%s" % flip(c, 0), "/c/%s" % c[:-2], "/c/%sA" % c, "/c/%s/" % c,
            "/u/%s" % flip(u, 10), "/u/%s" % u[:20],
            "/c/%s" % o, "/c/%s" % u, "/o/%s.gif" % c, "/o/%s.gif" % u, "/u/%s" % c,
            "/u/%s" % o, "/u/%s" % b, "/c/%s" % b, "/c/%s" % c.lower(),
            "/c/" + "A" * 36, "/", "/x", "/o", "/c", "/u", "/healthz/x", "/%2e%2e/etc/passwd",
        ]
        for p in paths:
            self.assertEqual(self.request("GET", p)[0], 404, p)
        for m, p in (("POST", "/o/%s.gif" % o), ("POST", "/c/%s" % c), ("PUT", "/u/%s" % u),
                     ("DELETE", "/c/%s" % c), ("OPTIONS", "/c/%s" % c), ("POST", "/u/%s" % c)):
            self.assertEqual(self.request(m, p, body=b"")[0], 404, (m, p))
        # A good token still works after all of that.
        self.assertEqual(self.request("GET", "/c/%s" % c)[0], 302)
        self.stop()
        self.assertEqual(len(self.events()), 1)

    def test_click_for_an_unknown_message_or_link_is_404(self):
        self.start()
        mid, _, _ = self.message()
        self.assertEqual(self.request("GET", "/c/%s" % self.token("click", mid + 1000, 0))[0], 404)
        self.assertEqual(self.request("GET", "/c/%s" % self.token("click", mid, 7))[0], 404)
        self.stop()
        self.assertEqual(self.events(), [])

    # ---- unsubscribe ----
    def test_unsubscribe_page_then_one_click_post(self):
        self.start()
        mid, eid, cid = self.message(email="Una@Example.com")
        path = "/u/%s" % self.token("unsub", mid)
        st, h, body = self.request("GET", path)
        self.assertEqual(st, 200)
        self.assertIn("text/html", h["Content-Type"])
        self.assertIn(('<form method="post" action="%s">' % path).encode(), body)
        self.assertEqual(self.events(), [])  # the page alone records nothing
        st, _, body = self.request("POST", path, body=b"List-Unsubscribe=One-Click",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200)
        self.assertIn(b"Unsubscribed", body)
        # Answered only once stored: no waiting here.
        self.assertEqual(self.scalar("SELECT reason FROM suppressions WHERE email = 'una@example.com'"),
                         "unsubscribe")
        self.assertEqual(self.scalar("SELECT state FROM enrollments WHERE id = %d" % eid), "stopped")
        self.assertEqual([e[1:3] for e in self.events()], [["unsubscribe", "f"]])

    def test_unsubscribe_post_with_any_body(self):
        self.start()
        mid, eid, _ = self.message()
        st, _, _ = self.request("POST", "/u/%s" % self.token("unsub", mid), body=b"x" * 5000)
        self.assertEqual(st, 200)
        self.assertEqual(self.scalar("SELECT state FROM enrollments WHERE id = %d" % eid), "stopped")

    # ---- rules ----
    def test_click_rule_fires_for_a_human_click_only(self):
        self.start()
        human, he, hc = self.message()
        robot, re_, rc = self.message()
        self.assertEqual(self.request("GET", "/c/%s" % self.token("click", human, 0))[0], 302)
        self.assertEqual(self.request("GET", "/c/%s" % self.token("click", robot, 0),
                                      ua="Mimecast Link Checker")[0], 302)
        self.stop()
        self.assertEqual(self.scalar("SELECT state FROM enrollments WHERE id = %d" % he), "handed_off")
        self.assertEqual(self.scalar("SELECT count(*) FROM handoffs WHERE candidate_id = %d" % hc), "1")
        self.assertEqual(self.scalar("SELECT state FROM enrollments WHERE id = %d" % re_), "active")
        self.assertEqual(self.scalar("SELECT count(*) FROM handoffs WHERE candidate_id = %d" % rc), "0")
        self.assertEqual(self.scalar("SELECT machine FROM events WHERE message_id = %d" % robot), "t")

    # ---- health and metrics ----
    def test_healthz_ok_then_503_when_the_database_is_away(self):
        self.start()
        self.wait_healthy()
        self.assertEqual(self.request("GET", "/healthz")[2], b"ok\n")
        self.stop()
        dead = "postgresql://postgres@127.0.0.1:%d/x" % harness.free_port()
        self.start(database=dead)
        st, _, _ = self.request("GET", "/healthz")
        self.assertEqual(st, 503)
        self.stop()

    def test_healthz_503_after_the_connection_is_killed(self):
        self.start()
        self.wait_healthy()
        # Block new connections to this database, then kill ours.
        self.pg.psql("postgres", 'ALTER DATABASE "%s" ALLOW_CONNECTIONS false' % self.dbname)
        self.addCleanup(self.pg.psql, "postgres",
                        'ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % self.dbname)
        self.pg.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = '%s'" % self.dbname)
        wait_until(lambda: self.request("GET", "/healthz")[0] == 503, 10, "healthz 503")
        self.pg.psql("postgres", 'ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % self.dbname)
        wait_until(lambda: self.request("GET", "/healthz")[0] == 200, 20, "healthz 200 again")

    def test_a_stalled_database_gets_503_within_the_deadline(self):
        self.start()
        self.wait_healthy()
        mid, eid, _ = self.message()
        # Another session holds events locked: our batch waits behind it,
        # and everything after it in the connection's queue.
        locker = subprocess.Popen(["psql", "-X", "-q", "-d", self.db, "-c",
                                   "BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE; "
                                   "SELECT pg_sleep(8); COMMIT;"], stdout=subprocess.DEVNULL)
        self.procs.append(locker)
        wait_until(lambda: self.scalar("SELECT count(*) FROM pg_locks WHERE relation = "
                                       "'events'::regclass AND mode = 'AccessExclusiveLock' "
                                       "AND granted") == "1", 10, "the lock")
        self.assertEqual(self.request("GET", "/o/%s.gif" % self.token("open", mid))[0], 200)
        time.sleep(0.2)  # the batch goes out and blocks
        t0 = time.monotonic()
        self.assertEqual(self.request("GET", "/healthz")[0], 503)
        self.assertLess(time.monotonic() - t0, 4.5)
        locker.wait(20)
        self.wait_healthy()
        self.assertEqual([e[1] for e in self.wait_events(1)], ["open"])
        # And the endpoint is whole again.
        st, _, _ = self.request("POST", "/u/%s" % self.token("unsub", mid), body=b"")
        self.assertEqual(st, 200)
        self.assertEqual(self.scalar("SELECT state FROM enrollments WHERE id = %d" % eid), "stopped")

    def test_events_queued_while_the_database_is_away_are_stored_after_reconnect(self):
        self.start(env={"WB_EVENTQ_DELAY_MS": "1500"})
        self.wait_healthy()
        mid, eid, _ = self.message()
        deny = 'ALTER DATABASE "%s" ALLOW_CONNECTIONS %s'
        self.addCleanup(self.pg.psql, "postgres", deny % (self.dbname, "true"))
        self.assertEqual(self.request("GET", "/c/%s" % self.token("click", mid, 1))[0], 302)
        self.pg.psql("postgres", deny % (self.dbname, "false"))
        self.pg.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = '%s'" % self.dbname)
        time.sleep(2.5)  # the batch falls due while there is no connection
        metrics = self.request("GET", "/metrics")[2].decode()
        self.assertIn("warmbench_tracking_queue_depth 1\n", metrics)
        self.assertIn("warmbench_database_up 0\n", metrics)
        self.pg.psql("postgres", deny % (self.dbname, "true"))
        ev = self.wait_events(1)
        time.sleep(0.5)
        self.assertEqual(len(self.events()), 1)
        self.assertEqual(json.loads(ev[0][3]), {"link": "blog"})
        self.stop()

    def test_metrics_is_prometheus_text(self):
        self.start()
        mid, _, _ = self.message()
        self.request("GET", "/o/%s.gif" % self.token("open", mid), ua=GOOGLE)
        self.wait_events(1)
        st, h, body = self.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                            r'[-+0-9.eE]+|[-+]Inf|NaN$')
        for line in text.splitlines():
            if line.startswith("#"):
                self.assertRegex(line, r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$")
            else:
                self.assertRegex(line, sample)
        self.assertIn('warmbench_build_info{version="0.1.0"} 1\n', text)
        self.assertIn('warmbench_messages{state="sent"} 1\n', text)
        self.assertIn('warmbench_events{type="open",machine="true"} 1\n', text)
        self.assertIn("warmbench_due_enrollments ", text)
        self.assertIn('warmbench_smtp_duration_seconds_bucket{outcome="sent",le="+Inf"} 0\n', text)
        self.assertIn("warmbench_tracking_queue_depth 0\n", text)
        self.assertIn("# TYPE warmbench_smtp_duration_seconds histogram\n", text)

    def test_admin_listen_takes_healthz_and_metrics(self):
        self.start(admin=True)
        self.assertNotEqual(self.admin_port, 0)
        self.assertEqual(self.request("GET", "/healthz")[0], 404)
        self.assertEqual(self.request("GET", "/metrics")[0], 404)
        self.wait_healthy(port=self.admin_port)
        self.assertEqual(self.request("GET", "/metrics", port=self.admin_port)[0], 200)
        mid, _, _ = self.message()
        tok = self.token("open", mid)
        self.assertEqual(self.request("GET", "/o/%s.gif" % tok, port=self.admin_port)[0], 404)
        self.assertEqual(self.request("GET", "/o/%s.gif" % tok)[0], 200)

    # ---- queue bound and shutdown ----
    def test_full_queue_answers_and_counts_the_lost_and_sigterm_flushes(self):
        """A full queue: the person still gets the pixel and the redirect
        (counted as lost, issue 18 defect 4); an unsubscribe, which must be
        stored, is a 503."""
        self.start(env={"WB_EVENTQ_MAX": "3", "WB_EVENTQ_DELAY_MS": "600000",
                        "WB_EVENTQ_BATCH": "1000"})
        self.wait_healthy()
        paths = ["/o/%s.gif" % self.token("open", self.message()[0]) for _ in range(3)]
        self.assertEqual([self.request("GET", p)[0] for p in paths], [200] * 3)
        mid, _, _ = self.message()
        st, h, body = self.request("GET", "/o/%s.gif" % self.token("open", mid))
        self.assertEqual((st, h["Content-Type"], len(body)), (200, "image/gif", 43))
        st, h, _ = self.request("GET", "/c/%s" % self.token("click", mid, 0))
        self.assertEqual((st, h["Location"]), (302, "https://example.com/jobs/backend?x=1&y=2"))
        self.assertEqual(self.metric('warmbench_tracking_lost_total{type="open"}'), 1)
        self.assertEqual(self.metric('warmbench_tracking_lost_total{type="click"}'), 1)
        st, h, _ = self.request("POST", "/u/%s" % self.token("unsub", mid), body=b"")
        self.assertEqual(st, 503)
        self.assertIn("Retry-After", h)
        # A repeat needs no room in the queue: it is answered as usual.
        self.assertEqual(self.request("GET", paths[0])[0], 200)
        self.assertEqual(self.events(), [])  # still waiting for the batch delay
        self.stop()
        self.assertEqual(len(self.events()), 3)

    def test_listen_address_in_use_fails_setup(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            self.config(sequences=[SEQ], templates=TEMPLATES,
                        http={"listen": "127.0.0.1:%d" % s.getsockname()[1],
                              "public_url": "http://127.0.0.1:8025"})
            p = subprocess.run([DRV, "--config", self.cfg_path], capture_output=True, text=True,
                               timeout=20)
        self.assertEqual(p.returncode, 69, p.stderr)
        self.assertIn("cannot listen on 127.0.0.1:", p.stderr)

    # ---- hostile input ----
    def test_garbage_requests_leave_it_up_and_record_nothing(self):
        self.start()
        mid, _, _ = self.message()
        good = [self.token("open", mid), self.token("click", mid, 0), self.token("unsub", mid)]
        rnd = random.Random(8058)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

        def mutate(t):
            t = list(t)
            for _ in range(rnd.randint(1, 3)):
                i = rnd.randrange(len(t))
                t[i] = rnd.choice([c for c in alphabet if c != t[i]])
            return "".join(t)

        def path():
            k = rnd.randrange(9)
            if k == 0:
                return "/o/%s.gif" % mutate(good[0])
            if k == 1:
                return "/c/%s" % mutate(good[1])
            if k == 2:
                return "/u/%s" % mutate(good[2])
            if k == 3:
                return "/" + "".join(rnd.choice(alphabet + "/%.") for _ in range(rnd.randint(0, 300)))
            if k == 4:
                return "/c/" + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(30, 40)))
            if k == 5:
                return "/o/" + "A" * rnd.randint(1, 20000) + ".gif"
            if k == 6:
                return rnd.choice(["*", "http://evil.example/", "/c/%00", "/../../etc/passwd",
                                   "//c/" + good[1], "/C/" + good[1], "/c/" + good[1] + "%2f"])
            if k == 7:
                return "/" + "".join(chr(rnd.randrange(0x21, 0x7f)) for _ in range(40))
            return "/u/" + good[2][: rnd.randrange(len(good[2]))]

        def request():
            method = rnd.choice(["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "BREW",
                                 "G\tET", "GET GET", "", "X" * 300])
            head = "%s %s HTTP/1.%d\r\n" % (method, path(), rnd.choice([0, 1, 1, 9]))
            head = head.encode("latin-1")
            hdrs = b"Host: x\r\nUser-Agent: " + BROWSER.encode() + b"\r\n"
            k = rnd.randrange(6)
            if k == 0:
                hdrs += b"X-Big: " + b"a" * 65536 + b"\r\n"
            elif k == 1:
                hdrs += b"Content-Length: 1000\r\n\r\n" + b"x" * rnd.randrange(1000)
                return head + hdrs  # truncated body
            elif k == 2:
                hdrs += b"Transfer-Encoding: chunked\r\n\r\n5\r\nab"
                return head + hdrs
            elif k == 3:
                return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000)))
            elif k == 4:
                hdrs += b"Bad Header Without Colon\r\n"
            return head + hdrs + b"\r\n"

        def send(data):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                # MHD keeps a half-closed connection with an unfinished
                # request line until its timeout: don't wait for that.
                s.settimeout(0.3)
                while s.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                s.close()

        # 10,000 requests, made up front (one seeded generator), sent by 16
        # clients at once so the file stays quick.
        reqs = [request() for _ in range(10000)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for i, _ in enumerate(pool.map(send, reqs)):
                if i % 1000 == 0:
                    self.assertIsNone(self.drv.poll(), self.stderr())
        self.assertIsNone(self.drv.poll(), self.stderr())
        # Half-sent requests hold their connections until MHD's timeout
        # (15 s), and the per-IP limit refuses more meanwhile: the endpoint
        # must be back to answering once they are gone.
        deadline = time.time() + 40
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            self.assertLess(time.time(), deadline, "healthz never answered 200 again")
            time.sleep(0.5)
        self.stop()
        self.assertEqual(self.events(), [])

    # ---- repeats: one open per message, one click per link, a minute ----
    def metric(self, sample):
        """The value of one sample line of /metrics, e.g. 'name{type="open"}'."""
        text = self.request("GET", "/metrics")[2].decode()
        m = re.search(r"^%s (\S+)$" % re.escape(sample), text, re.M)
        self.assertIsNotNone(m, text)
        return float(m.group(1))

    def repeats(self, kind):
        return self.metric('warmbench_tracking_repeats_total{type="%s"}' % kind)

    @staticmethod
    def same_minute(need_s):
        """Waits, if need be, until the next need_s seconds lie in one
        calendar minute (the window repeats are counted in)."""
        left = 60 - time.time() % 60
        if left < need_s:
            time.sleep(left + 0.2)

    def test_repeated_pixel_hits_store_one_open_and_count_the_repeats(self):
        self.start()
        mid, _, _ = self.message()
        other, _, _ = self.message()
        path = "/o/%s.gif" % self.token("open", mid)
        self.same_minute(20)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: self.request("GET", path), range(40)))
        for st, h, body in answers:
            self.assertEqual((st, h["Content-Type"], len(body)), (200, "image/gif", 43))
        self.assertEqual(self.request("GET", "/o/%s.gif" % self.token("open", other))[0], 200)
        self.assertEqual((self.repeats("open"), self.repeats("click")), (39, 0))
        self.stop()
        self.assertEqual([e[:3] for e in self.events()],
                         [[str(mid), "open", "f"], [str(other), "open", "f"]])

    def test_clicks_on_two_links_of_one_message_store_two_clicks(self):
        self.start()
        mid, _, _ = self.message()
        self.same_minute(15)
        for _ in range(3):
            for link, url in ((0, SEQ["links"]["apply"]), (1, SEQ["links"]["blog"])):
                st, h, _ = self.request("GET", "/c/%s" % self.token("click", mid, link))
                self.assertEqual((st, h["Location"]), (302, url))
        self.assertEqual((self.repeats("open"), self.repeats("click")), (0, 4))
        self.stop()
        self.assertEqual([(e[1], e[2], json.loads(e[3])) for e in self.events()],
                         [("click", "f", {"link": "apply"}), ("click", "f", {"link": "blog"})])

    def test_repeats_keep_machine_and_human_hits_apart(self):
        """A proxy's open or a scanner's too-soon click does not hide the
        person's own a moment later, and machine_click_s still applies."""
        self.start(machine_click_s=2)
        mid, _, _ = self.message(sent_ago_s=0)
        self.same_minute(20)
        click = "/c/%s" % self.token("click", mid, 1)
        for _ in range(2):
            self.assertEqual(self.request("GET", click)[0], 302)  # too soon: machine
        opened = "/o/%s.gif" % self.token("open", mid)
        for ua in (GOOGLE, GOOGLE, BROWSER, BROWSER):
            self.assertEqual(self.request("GET", opened, ua=ua)[0], 200)
        time.sleep(2.5)
        for _ in range(2):
            self.assertEqual(self.request("GET", click)[0], 302)  # the person
        self.assertEqual((self.repeats("open"), self.repeats("click")), (2, 2))
        self.stop()
        ev = [(e[1], e[2], json.loads(e[3]).get("why")) for e in self.events()]
        self.assertEqual(ev, [("click", "t", "too-soon"), ("open", "t", "google-proxy"),
                              ("open", "f", None), ("click", "f", None)])

    def test_a_refused_hit_is_not_remembered(self):
        self.start(env={"WB_EVENTQ_MAX": "1", "WB_EVENTQ_DELAY_MS": "1500"})
        self.wait_healthy()
        a, _, _ = self.message()
        b, _, _ = self.message()
        pa, pb = ("/o/%s.gif" % self.token("open", m) for m in (a, b))
        click = "/c/%s" % self.token("click", b, 0)
        self.same_minute(20)
        self.assertEqual(self.request("GET", pa)[0], 200)  # queued: the queue is full
        self.assertEqual(self.request("GET", pb)[0], 200)  # answered, not recorded
        self.assertEqual(self.request("GET", click)[0], 302)  # the same
        self.assertEqual(self.request("GET", pa)[0], 200)  # a repeat needs no room
        self.wait_events(1)
        self.assertEqual(self.request("GET", pb)[0], 200)  # the retry is recorded
        self.wait_events(2)
        self.assertEqual(self.request("GET", click)[0], 302)
        self.wait_events(3)
        self.assertEqual(self.repeats("open"), 1)
        self.stop()
        self.assertEqual([e[:2] for e in self.events()],
                         [[str(a), "open"], [str(b), "open"], [str(b), "click"]])

    def test_unsubscribe_posts_are_never_deduplicated(self):
        self.start()
        mid, eid, _ = self.message()
        path = "/u/%s" % self.token("unsub", mid)
        for _ in range(3):
            self.assertEqual(self.request("POST", path, body=b"")[0], 200)
        self.assertEqual(self.scalar("SELECT state FROM enrollments WHERE id = %d" % eid), "stopped")
        self.assertEqual(self.scalar("SELECT count(*) FROM events WHERE type = 'unsubscribe' "
                                     "AND message_id = %d" % mid), "3")
        self.assertEqual((self.repeats("open"), self.repeats("click")), (0, 0))
