"""The soak (issue 18, `make soak`): one warmbenchd under mixed load for
SOAK_S seconds (default 1800), then a drain, then the verdict.

Load, all against real servers on loopback:
  - sends to a slow SMTP server (aiosmtpd answering each message after
    SMTP_DELAY_MS): new people are imported and enrolled every IMPORT_EVERY_S
    into a two-step sequence (the second step 40 s after the first);
  - tracking: an open and a click for about half the messages received,
    some opened again (the once-a-minute rule answers those as repeats);
  - IMAP: a reply to about a tenth of the first steps dropped into a private
    Dovecot, which the daemon polls; a reply stops the person's sequence and
    hands them to the ATS;
  - the ATS receiver fails a random fifth of the webhooks (503);
  - SIGHUP every minute, alternating two configurations (a step's subject);
  - one PostgreSQL restart (fast shutdown) at 40% of the run.
warmbenchd's RSS and descriptors are sampled every 10 s.

Verdict (exit 1 on any failure):
  - flat: over the second half of the run, a least-squares slope of RSS
    under RSS_SLOPE_KB_MIN KB/min and of descriptors under FD_SLOPE_MIN per
    minute (thresholds printed with the figures);
  - nothing lost: every imported person enrolled; every message sent,
    unknown or cancelled (its enrollment stopped by a reply), none waiting;
    every enrollment finished, or handed off (or stopped) by a reply; every Message-ID the
    database calls sent received; every reply a handoff, every handoff
    delivered (or still retrying: pending), none dead; every open and click
    answered 200/302 recorded;
  - nothing doubled: no Message-ID and no (person, step) twice at the SMTP
    server; no reply recorded twice.

Run: SOAK_S=600 WB_BUILD=build/x /usr/bin/python3 tests/soak/soak.py
"""
import collections
import email
import email.policy
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402
import imapd  # noqa: E402
from daemon_util import Daemon, Smtpd, wait_until  # noqa: E402

SOAK_S = int(os.environ.get("SOAK_S", "1800"))
SMTP_DELAY_MS = 200
CONNECTIONS = 4
IMPORT_EVERY_S = 20
PER_IMPORT = int(os.environ.get("SOAK_PER_IMPORT", "40"))
SAMPLE_S = 10
HUP_S = 60
REPLY_SHARE = 0.10
TRACK_SHARE = 0.5
DRAIN_S = 240
RSS_SLOPE_KB_MIN = 64.0   # 3.75 MB an hour: a leak of one small block per message shows
FD_SLOPE_MIN = 0.05       # 3 descriptors an hour
ATS_SECRET = "ats-shared-secret-42"


def seq(subject2):
    return {
        "id": "soak", "sender": "ana", "audience": {"tags_any": ["soak"]},
        "window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "start": "00:00", "end": "24:00", "timezone": "UTC"},
        "links": {"apply": "https://example.com/jobs/backend", "blog": "https://example.com/eng"},
        "steps": [{"after": "0s", "subject": "{{first_name|Hi}}, about backend",
                   "text": "s1.txt", "html": "s1.html"},
                  {"after": "40s", "subject": subject2, "text": "s2.txt", "thread": True}],
        "stop_on": ["reply", "unsubscribe", "bounce"],
        "handoff_on": ["reply"],
    }


TEMPLATES = {
    "s1.txt": "Hello {{first_name|there}},\nApply: {{links.apply}}\nBlog: {{links.blog}}\n"
              "Unsubscribe: {{unsubscribe_url}}\n",
    "s1.html": "<p>Hello {{first_name|there}},</p><p><a href=\"{{links.apply}}\">apply</a> "
               "<a href=\"{{links.blog}}\">blog</a></p>"
               "<p><a href=\"{{unsubscribe_url}}\">unsubscribe</a></p>\n",
    "s2.txt": "Hi again {{first_name|there}}.\nUnsubscribe: {{unsubscribe_url}}\n",
}


def slope(points):
    """Least-squares slope of (t, v) points, per second."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


class Soak:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="wbsoak-")
        self.failures = []
        self.people = 0
        self.samples = []        # (t, rss_kb, fds)
        self.seen = 0            # SMTP messages read so far
        self.received = []       # (Message-ID, rcpt, subject)
        self.track_ok = {"open": set(), "click": set()}  # message ids answered 200/302
        self.track_http = collections.Counter()
        self.replied = set()     # Message-IDs replied to
        self.hups = 0
        self.restarted_at = None

    # --- setup -----------------------------------------------------------

    def start(self):
        # The schema as it is now: a migration or function file changed in
        # the work tree during the run would make the daemon's schema check
        # (on a reconnect after a reload) stop it.
        self.sql_dir = os.path.join(self.tmp, "sql")
        shutil.copytree(os.path.join(harness.ROOT, "sql"), self.sql_dir,
                        ignore=shutil.ignore_patterns("*.orig", "*.rej", "*~"))
        os.environ["WARMBENCH_SQL_DIR"] = self.sql_dir
        self.pg = harness.PgCluster().start()
        self.db = self.pg.createdb("soak")
        self.smtp = Smtpd("--delay-ms", str(SMTP_DELAY_MS)).start()
        self.imap = imapd.Dovecot().start()
        self.ats_out = os.path.join(self.tmp, "ats.jsonl")
        mode = harness.write(os.path.join(self.tmp, "ats-mode.json"),
                             json.dumps({"fail_rate": 0.2}))
        key = harness.write(os.path.join(self.tmp, "ats.key"), ATS_SECRET + "\n", 0o600)
        self.ats_port = harness.free_port()
        self.ats = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "..", "integration", "ats_receiver.py"),
             "--port", str(self.ats_port), "--secret-file", key, "--out", self.ats_out,
             "--mode", mode], stdout=subprocess.PIPE, text=True)
        if self.ats.stdout.readline().strip() != "READY":
            raise RuntimeError("ats_receiver did not start")
        self.http_port = harness.free_port()
        self.mailbox_tls = True
        self.write_config(0)
        # mailbox.tls (issue 18 defect 8) may not be in this build yet.
        p = subprocess.run([harness.WARMBENCH, "--config", self.cfg_path, "check-config"],
                           capture_output=True, text=True)
        if 'unknown key "tls"' in p.stdout + p.stderr:
            self.mailbox_tls = False
            self.write_config(0)
        self.wb("migrate")
        self.daemon = Daemon(self.cfg_path, os.path.join(self.tmp, "warmbenchd.log"))
        self.daemon.start()

    def write_config(self, variant):
        harness.write(os.path.join(self.tmp, "imap.pw"), self.imap.password + "\n", 0o600)
        harness.write(os.path.join(self.tmp, "secret.key"),
                      "soak-secret-0123456789abcdef-0123456789\n", 0o600)
        subj = ["Re: {{first_name|Hi}}, about backend", "Re: {{first_name|Hi}} - about backend"]
        harness.write(os.path.join(self.tmp, "sequences", "soak.json"),
                      json.dumps(seq(subj[variant % 2])))
        for name, text in TEMPLATES.items():
            harness.write(os.path.join(self.tmp, "templates", name), text)
        cfg = {
            "database": self.db,
            "http": {"listen": "127.0.0.1:%d" % self.http_port,
                     "public_url": "http://127.0.0.1:%d" % self.http_port},
            "secret_file": "secret.key",
            "smtp": {"url": self.smtp.url, "tls": "off", "connections": CONNECTIONS,
                     "timeout_s": 10, "retry_base_s": 1},
            "bounce_domain": "bounces.example.com",
            "senders": {"ana": {"from": "Ana Ruiz <ana@example.com>",
                                "reply_to": "ana@example.com",
                                "daily_limit": 1000000, "min_interval_s": 0}},
            "mailbox": {"url": self.imap.url(), "username": self.imap.user,
                        "password_file": "imap.pw", "poll_s": 5},
            "ats": {"webhook_url": "http://127.0.0.1:%d/hooks/warmbench" % self.ats_port,
                    "secret_file": "ats.key", "max_attempts": 1000, "retry_base_s": 1},
            "sequences_dir": "sequences",
            "templates_dir": "templates",
            "log": {"level": "info", "format": "text"},
        }
        if self.mailbox_tls:
            cfg["mailbox"]["tls"] = "off"
        self.cfg_path = harness.write(os.path.join(self.tmp, "warmbench.json"),
                                      json.dumps(cfg, indent=2))

    def wb(self, *args):
        p = subprocess.run([harness.WARMBENCH, "--config", self.cfg_path] + list(args),
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError("warmbench %s exited %d: %s%s"
                               % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p.stdout

    def sql(self, q):
        return self.pg.psql("soak", q)

    def scalar(self, q):
        rows = self.sql(q)
        return rows[0][0] if rows else None

    # --- load ------------------------------------------------------------

    def import_batch(self):
        lines = ["email,first_name,last_name,timezone,tags,consent"]
        for i in range(self.people, self.people + PER_IMPORT):
            lines.append("s%06d@example.org,P%d,Last,UTC,soak,opt_in" % (i, i))
        self.people += PER_IMPORT
        csv = harness.write(os.path.join(self.tmp, "batch.csv"), "\n".join(lines) + "\n")
        self.wb("import", csv)
        self.wb("enroll", "soak")

    def read_new_mail(self):
        """The SMTP server's new messages: Message-ID, recipient, and the
        tracking URLs of their bodies."""
        n = self.smtp.count()
        out = []
        for i in range(self.seen + 1, n + 1):
            base = os.path.join(self.smtp.dir, "%06d" % i)
            with open(base + ".eml", "rb") as f:
                msg = email.message_from_bytes(f.read(), policy=email.policy.default)
            with open(base + ".json") as f:
                rcpts = json.load(f)["rcpt_tos"]
            mid = (msg["Message-ID"] or "").strip().strip("<>")
            body = msg.get_body(("html", "plain"))
            text = body.get_content() if body else ""
            urls = re.findall(r"http://127\.0\.0\.1:%d/[^\s\"<>]+" % self.http_port, text)
            item = {"mid": mid, "rcpt": ",".join(rcpts), "subject": str(msg["Subject"]),
                    "urls": urls}
            self.received.append(item)
            out.append(item)
        self.seen = n
        return out

    def get(self, url):
        req = urllib.request.Request(url)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return 0

    def track(self, item):
        opens = [u for u in item["urls"] if "/o/" in u]
        clicks = [u for u in item["urls"] if "/c/" in u]
        if opens:
            st = self.get(opens[0])
            self.track_http["open %d" % st] += 1
            if st == 200:
                self.track_ok["open"].add(item["mid"])
        if clicks:
            st = self.get(random.choice(clicks))
            self.track_http["click %d" % st] += 1
            if st == 302:
                self.track_ok["click"].add(item["mid"])

    def reply(self, item):
        self.imap.deliver(imapd.message(
            [("From", item["rcpt"]), ("To", "ana@example.com"),
             ("Subject", "Re: " + item["subject"]), ("In-Reply-To", "<%s>" % item["mid"]),
             ("Message-ID", "<r.%s>" % item["mid"])],
            "Sounds good, let's talk on Thursday.\n"))
        self.replied.add(item["mid"])

    def sample(self, t0):
        pid = self.daemon.proc.pid
        with open("/proc/%d/status" % pid) as f:
            rss = int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))
        fds = len(os.listdir("/proc/%d/fd" % pid))
        self.samples.append((time.monotonic() - t0, rss, fds))

    def run(self):
        rng = random.Random(int(os.environ.get("SOAK_SEED", "18")))
        random.seed(rng.random())
        t0 = time.monotonic()
        nxt = {"import": 0.0, "sample": 0.0, "hup": HUP_S}
        restart_at = SOAK_S * 0.4
        last_report = 0.0
        while True:
            now = time.monotonic() - t0
            if now >= SOAK_S:
                break
            if not self.daemon.alive():
                self.failures.append("warmbenchd exited %s during the soak"
                                     % self.daemon.proc.returncode)
                return
            if now >= nxt["sample"]:
                self.sample(t0)
                nxt["sample"] += SAMPLE_S
            if now >= nxt["import"]:
                self.import_batch()
                nxt["import"] += IMPORT_EVERY_S
            if now >= nxt["hup"]:
                self.hups += 1
                self.write_config(self.hups)
                self.daemon.signal(signal.SIGHUP)
                nxt["hup"] += HUP_S
            if self.restarted_at is None and now >= restart_at:
                self.pg.restart()
                self.restarted_at = now
            for item in self.read_new_mail():
                if rng.random() < TRACK_SHARE:
                    self.track(item)
                    if rng.random() < 0.2:
                        self.track(item)  # a second look: answered, not stored again
                if "about backend" in item["subject"] and not item["subject"].startswith("Re:") \
                        and rng.random() < REPLY_SHARE:
                    self.reply(item)
            if now - last_report >= 60:
                last_report = now
                s = self.samples[-1]
                print("  %5.0f s: %d people, %d received, RSS %d KB, %d fds"
                      % (now, self.people, self.seen, s[1], s[2]), flush=True)
            time.sleep(0.5)

    # --- the verdict -------------------------------------------------------

    def drain(self):
        """No new work: waits until nothing is due, sending or undelivered."""
        def quiet():
            self.read_new_mail()
            busy = int(self.scalar(
                "SELECT (SELECT count(*) FROM messages WHERE state IN "
                "('queued', 'claimed', 'sending', 'retry'))"
                " + (SELECT count(*) FROM enrollments WHERE state = 'active')"
                " + (SELECT count(*) FROM handoffs WHERE state IN ('pending', 'delivering'))"))
            replies = int(self.scalar("SELECT count(*) FROM events WHERE type = 'reply'"))
            return busy == 0 and replies >= len(self.replied)
        t = time.monotonic()
        try:
            wait_until(quiet, DRAIN_S, "the queue, enrollments and handoffs to drain",
                       interval=1.0)
        except AssertionError as e:
            self.failures.append(str(e))
        return time.monotonic() - t

    def check(self, drain_s):
        f = self.failures
        states = dict((r[0], int(r[1])) for r in
                      self.sql("SELECT state, count(*) FROM messages GROUP BY state"))
        enr = dict((r[0], int(r[1])) for r in
                   self.sql("SELECT state || ':' || coalesce(stop_reason, ''), count(*) "
                            "FROM enrollments GROUP BY 1"))
        handoffs = dict((r[0], int(r[1])) for r in
                        self.sql("SELECT state, count(*) FROM handoffs GROUP BY state"))
        n_enrolled = int(self.scalar("SELECT count(*) FROM enrollments"))
        if n_enrolled != self.people:
            f.append("%d people imported, %d enrolled" % (self.people, n_enrolled))
        bad_states = {k: v for k, v in states.items()
                      if k not in ("sent", "unknown", "cancelled")}
        if bad_states:
            f.append("messages not sent, unknown or cancelled: %s" % bad_states)
        bad_enr = {k: v for k, v in enr.items()
                   if k not in ("finished:", "stopped:reply", "handed_off:reply")}
        if bad_enr:
            f.append("enrollments neither finished nor stopped by a reply: %s" % bad_enr)
        # Nothing doubled at the SMTP server.
        mids = collections.Counter(r["mid"] for r in self.received)
        dup = [m for m, n in mids.items() if n > 1]
        if dup:
            f.append("%d Message-ID(s) received twice, e.g. %s" % (len(dup), dup[:3]))
        steps = collections.Counter((r["rcpt"], r["subject"].startswith("Re:"))
                                    for r in self.received)
        dup = [k for k, n in steps.items() if n > 1]
        if dup:
            f.append("%d person/step pairs received twice, e.g. %s" % (len(dup), dup[:3]))
        # Nothing lost.
        sent = {r[0] for r in self.sql("SELECT message_id FROM messages WHERE state = 'sent'")}
        unknown = {r[0] for r in self.sql(
            "SELECT message_id FROM messages WHERE state = 'unknown'")}
        got = set(mids)
        if sent - got:
            f.append("%d message(s) sent in the database, never received" % len(sent - got))
        if got - sent - unknown:
            f.append("%d message(s) received, neither sent nor unknown" % len(got - sent - unknown))
        replies = int(self.scalar("SELECT count(*) FROM events WHERE type = 'reply'"))
        reply_msgs = int(self.scalar(
            "SELECT count(DISTINCT message_id) FROM events WHERE type = 'reply'"))
        if replies != len(self.replied) or reply_msgs != replies:
            f.append("%d replies dropped in, %d reply events on %d messages"
                     % (len(self.replied), replies, reply_msgs))
        n_handoffs = sum(handoffs.values())
        if handoffs.get("dead") or n_handoffs != len(self.replied):
            f.append("handoffs %s for %d replies" % (handoffs, len(self.replied)))
        ats = []
        with open(self.ats_out) as fh:
            ats = [json.loads(line) for line in fh if line.strip()]
        ats_ok = [r for r in ats if r["answer"] == 200]
        if not all(r["sig_ok"] for r in ats):
            f.append("an ATS request with a bad signature")
        if len(ats_ok) < handoffs.get("delivered", 0):
            f.append("%d handoffs delivered, the ATS answered 200 to %d"
                     % (handoffs.get("delivered", 0), len(ats_ok)))
        ev = {}
        for kind in ("open", "click"):
            have = {r[0] for r in self.sql(
                "SELECT DISTINCT m.message_id FROM events e JOIN messages m ON m.id = e.message_id "
                "WHERE e.type = '%s'" % kind)}
            missing = self.track_ok[kind] - have
            ev[kind] = (len(self.track_ok[kind]), len(have))
            if missing:
                f.append("%d %s(s) answered but not recorded" % (len(missing), kind))
        # Flat: the second half's trend.
        half = [s for s in self.samples if s[0] >= SOAK_S / 2]
        rss_slope = slope([(t, v) for t, v, _ in half]) * 60
        # For the eye: a heap still warming up slows down, a leak does not.
        quarter = [s for s in self.samples if s[0] >= SOAK_S * 3 / 4]
        rss_slope_q4 = slope([(t, v) for t, v, _ in quarter]) * 60
        fd_slope = slope([(t, v) for t, _, v in half]) * 60
        if rss_slope > RSS_SLOPE_KB_MIN:
            f.append("RSS grows %.1f KB/min over the second half (threshold %.0f)"
                     % (rss_slope, RSS_SLOPE_KB_MIN))
        if fd_slope > FD_SLOPE_MIN:
            f.append("descriptors grow %.3f/min over the second half (threshold %.2f)"
                     % (fd_slope, FD_SLOPE_MIN))
        log = self.daemon.text()
        for mark in ("AddressSanitizer", "runtime error:", "EMFILE", "Too many open files"):
            if mark in log:
                f.append("%r in the daemon's log" % mark)
        rss = [s[1] for s in self.samples]
        fds = [s[2] for s in self.samples]
        print("\nsoak: %d s (+%.0f s drain), %d people, %d messages received (%d unique), "
              "states %s" % (SOAK_S, drain_s, self.people, len(self.received), len(got), states))
        print("  enrollments %s; replies %d, handoffs %s; ATS requests %d (%d answered 200, "
              "%d 503)" % (enr, len(self.replied), handoffs, len(ats), len(ats_ok),
                           sum(1 for r in ats if r["answer"] == 503)))
        print("  tracking answers %s; answered/recorded messages: opens %d/%d, clicks %d/%d"
              % (dict(self.track_http), ev["open"][0], ev["open"][1], ev["click"][0],
                 ev["click"][1]))
        print("  SIGHUPs %d; PostgreSQL restarted at %.0f s; warnings in the log %d, errors %d"
              % (self.hups, self.restarted_at or -1, len(re.findall(r"(?m)^\S+ warn ", log)),
                 len(re.findall(r"(?m)^\S+ error ", log))))
        print("  RSS KB: first %d, min %d, max %d, last %d; second-half slope %.1f KB/min "
              "(threshold %.0f), last quarter's %.1f" % (rss[0], min(rss), max(rss), rss[-1],
                                                       rss_slope, RSS_SLOPE_KB_MIN, rss_slope_q4))
        print("  fds: first %d, min %d, max %d, last %d; second-half slope %.3f/min "
              "(threshold %.2f)" % (fds[0], min(fds), max(fds), fds[-1], fd_slope, FD_SLOPE_MIN))
        print("  samples (s, RSS KB, fds): %s" % " ".join(
            "%d/%d/%d" % (t, r, n) for t, r, n in self.samples[::6]))

    def stop(self):
        try:
            if self.daemon.alive():
                rc = self.daemon.stop()
                if rc != 0:
                    self.failures.append("warmbenchd exited %d on SIGTERM" % rc)
        except Exception as e:  # noqa: BLE001 - the verdict must still print
            self.failures.append("stopping warmbenchd: %s" % e)
        for p in (self.ats,):
            if p.poll() is None:
                p.kill()
                p.wait()
        self.smtp.cleanup()
        self.imap.stop()
        self.pg.stop()
        if os.environ.get("SOAK_KEEP"):
            print("  files kept in", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def main():
    s = Soak()
    try:
        s.start()
        print("soak: %d s of mixed load against warmbenchd (pid %d), log %s"
              % (SOAK_S, s.daemon.proc.pid, s.daemon.log_path), flush=True)
        s.run()
        drain_s = s.drain()
        s.check(drain_s)
    finally:
        log_tail = s.daemon.text()[-3000:] if getattr(s, "daemon", None) else ""
        s.stop()
    if s.failures:
        print("\nSOAK FAILED:\n  " + "\n  ".join(s.failures))
        print("daemon log tail:\n" + log_tail)
        return 1
    print("\nSOAK PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
