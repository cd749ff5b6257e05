"""PostgreSQL failover (SPEC "Scale and failover", issue 18): a primary and
a streaming standby made with pg_basebackup, the primary waiting for it on
every commit (synchronous_standby_names naming it, synchronous_commit on);
two warmbenchd sending to aiosmtpd through one multi-host URL. The primary
is killed (-9, the postmaster and every backend) mid-send and the standby
promoted. Every daemon goes on on the new primary; no message reaches the
SMTP server twice; what is not sent is `unknown`. Prints the time from the
kill to the first message marked on the new primary and to "settled" (no
`sending` row left). Also the warning: several hosts and no synchronous
standby make warmbenchd say so and /metrics show warmbench_db_sync_standby 0.

Run alone: WB_TESTS=test_failover.py /usr/bin/python3 tests/integration/run.py
(WB_FAILOVER_N sets the number of messages, 1500 by default)."""
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import harness
from daemon_util import wait_until
from test_daemon import DaemonCase

MESSAGES = int(os.environ.get("WB_FAILOVER_N", "1500"))
CONNECTIONS = 4
STANDBY_NAME = "wbstandby"
SETTLE_GOAL_S = 15.0


class Node:
    """One PostgreSQL server of the pair, in its own folder and port, run as
    the postgres user like the harness's cluster (fsync off: the test is about
    what reaches the standby, not the disk)."""

    def __init__(self, base, name):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o700)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = harness.free_port()

    def run(self, cmd, **kw):
        return subprocess.run(harness.as_postgres(cmd), check=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, **kw)

    def initdb(self):
        self.run([harness.PGBIN + "/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C"])
        return self

    def basebackup_from(self, primary):
        self.run([harness.PGBIN + "/pg_basebackup", "-D", self.data, "-X", "stream", "-R",
                  "-d", "host=127.0.0.1 port=%d user=postgres" % primary.port])
        # The name the primary's synchronous_standby_names gives it.
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            f.write("primary_conninfo = 'host=127.0.0.1 port=%d user=postgres "
                    "application_name=%s'\n" % (primary.port, STANDBY_NAME))
        return self

    def start(self):
        self.run([harness.PGBIN + "/pg_ctl", "-D", self.data, "-w", "-l",
                  os.path.join(self.dir, "log"), "start", "-o",
                  "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c full_page_writes=off -c max_connections=100 -c wal_level=replica "
                  "-c max_wal_senders=4 -c synchronous_commit=on" % (self.port, self.dir)])
        return self

    def promote(self):
        self.run([harness.PGBIN + "/pg_ctl", "-D", self.data, "-w", "promote"])

    def kill9(self):
        """SIGKILL to the postmaster and all its children at once, as a
        crash of the server would leave them (no shutdown checkpoint, no
        goodbye to clients but the kernel's reset)."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            pm = int(f.readline())
        pids = [pm]
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    with open("/proc/%s/stat" % p) as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pm:
                            pids.append(int(p))
                except (OSError, ValueError, IndexError):
                    pass
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self):
        try:
            subprocess.run(harness.as_postgres([harness.PGBIN + "/pg_ctl", "-D", self.data,
                                                "stop", "-m", "immediate"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        except Exception:
            pass

    def psql(self, db, sql):
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                              "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, db),
                              "-c", sql], check=True, capture_output=True, text=True).stdout
        return [line.split("|") for line in out.splitlines() if line != ""]


class Pair:
    """What WbTestCase calls self.pg: psql and URLs through the multi-host
    URL, so they reach whichever node is the primary."""

    def __init__(self, nodes):
        self.nodes = nodes

    def url(self, db="postgres"):
        hosts = ",".join("127.0.0.1:%d" % n.port for n in self.nodes)
        return "postgresql://postgres@%s/%s?target_session_attrs=read-write" % (hosts, db)

    def psql(self, db, sql, *args):
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-d", self.url(db), "-c", sql] + list(args),
                             check=True, capture_output=True, text=True).stdout
        return [line.split("|") for line in out.splitlines() if line != ""]


def sent_count(http_port):
    """The daemon's own count of SMTP transactions that ended `sent`."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http_port, timeout=10) as r:
        text = r.read().decode()
    m = re.search(r'^warmbench_smtp_duration_seconds_count\{outcome="sent"\} (\d+)$', text, re.M)
    return int(m.group(1)), text


class FailoverCase(DaemonCase):
    """A DaemonCase on its own primary (and standby), not the shared cluster."""

    STANDBY = True

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="wbt-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        base = tempfile.mkdtemp(prefix="wbfo-")
        os.chmod(base, 0o711)
        self.addCleanup(shutil.rmtree, base, True)
        self.primary = Node(base, "primary").initdb().start()
        self.addCleanup(self.primary.stop)
        nodes = [self.primary]
        if self.STANDBY:
            self.standby = Node(base, "standby").basebackup_from(self.primary).start()
            self.addCleanup(self.standby.stop)
            nodes.append(self.standby)
        else:
            # A second host nobody listens on: libpq goes on to the next.
            class Absent:
                port = harness.free_port()
            nodes.append(Absent)
        self.pg = Pair(nodes)
        self.procs = []
        self.addCleanup(self._kill_procs)
        self.daemons = []
        self.smtpds = []
        self.addCleanup(self._finish)
        self.dbname = "wb"
        self.primary.psql("postgres", "CREATE DATABASE wb")
        self.db = self.pg.url("wb")

    def make_synchronous(self):
        self.primary.psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '%s'"
                          % STANDBY_NAME)
        self.primary.psql("postgres", "SELECT pg_reload_conf()")
        wait_until(lambda: self.primary.psql(
            "postgres", "SELECT 1 FROM pg_stat_replication WHERE application_name = '%s' "
            "AND sync_state = 'sync' AND state = 'streaming'" % STANDBY_NAME), 30,
            "the standby streaming as the synchronous one")

    def second_config(self):
        """The same config with its own HTTP port, for a second daemon."""
        with open(self.cfg_path) as f:
            cfg = json.load(f)
        port = harness.free_port()
        cfg["http"]["listen"] = "127.0.0.1:%d" % port
        path = harness.write(os.path.join(self.tmp, "warmbench-2.json"), json.dumps(cfg))
        return path, port

    def http_port(self, path):
        with open(path) as f:
            return int(json.load(f)["http"]["listen"].rsplit(":", 1)[1])


class FailoverTest(FailoverCase):
    def failover(self, n, kill_at, promote_after=1.0):
        """n messages, two daemons; the primary killed once kill_at of them
        reached the SMTP server, the standby promoted a second later.
        Returns the figures, after checking none twice and all accounted."""
        self.make_synchronous()
        smtp = self.smtpd("--delay-ms", "5")
        self.setup_world(smtp, n, connections=CONNECTIONS, timeout_s=5)
        cfg2, port2 = self.second_config()
        ports = [self.http_port(self.cfg_path), port2]
        d1 = self.daemon()
        d2 = self.daemon(cfg_path=cfg2)
        for d in (d1, d2):
            self.assertNotIn("no synchronous standby", d.text())
        wait_until(lambda: smtp.count() >= kill_at, 60,
                   "%d messages at the SMTP server" % kill_at, interval=0.01)
        scraped = [sent_count(p) for p in ports]
        before = [k for k, _ in scraped]
        for _, text in scraped:
            self.assertRegex(text, r"(?m)^warmbench_db_sync_standby 1$")
        self.primary.kill9()
        t_kill = time.time()  # nothing can start on the old primary after this
        at_kill = smtp.count()
        # A failover manager notices and promotes within about a second.
        time.sleep(promote_after)
        self.standby.promote()
        t_promoted = time.time()
        # Settled: every message sent or unknown, so none `sending` either.
        settled = wait_until(lambda: self.count("state IN ('sent', 'unknown')") == n
                             and time.time(), 90,
                             "every message sent or unknown (%s)" % self.states(), interval=0.1)
        first_on_new = self.scalar(
            "SELECT extract(epoch FROM min(sending_at)) FROM messages "
            "WHERE state = 'sent' AND sending_at > to_timestamp(%f)" % t_kill)
        for d in (d1, d2):
            d.wait_log("database connection restored", 5)
            # The new primary has no standby: the warning says so.
            d.wait_log("no synchronous standby (synchronous_standby_names is empty)", 10)
        scraped = [sent_count(p) for p in ports]
        after = [k for k, _ in scraped]
        for _, text in scraped:
            self.assertRegex(text, r"(?m)^warmbench_db_sync_standby 0$")
        d1.stop()
        d2.stop()
        got = smtp.messages()
        mids = [m["msg"]["Message-ID"].strip("<>") for m in got]
        rcpts = [r for m in got for r in m["rcpt_tos"]]
        dup = [m for m, k in collections.Counter(mids).items() if k > 1]
        self.assertEqual(dup, [], "delivered twice")
        self.assertEqual([r for r, k in collections.Counter(rcpts).items() if k > 1], [],
                         "one person got two messages")
        sent = {r[0] for r in self.sql("SELECT message_id FROM messages WHERE state = 'sent'")}
        unknown = {r[0] for r in self.sql(
            "SELECT message_id FROM messages WHERE state = 'unknown'")}
        self.assertEqual(sent - set(mids), set(), "marked sent, never received")
        self.assertEqual(set(mids) - sent - unknown, set(), "received, neither sent nor unknown")
        self.assertEqual(len(sent) + len(unknown), n)
        self.assertLessEqual(len(unknown), 2 * 2 * CONNECTIONS,
                             "more unknown than the two daemons' windows")
        print("\n  failover: %d messages, killed at %d; %d sent, %d unknown, none twice; "
              "first sent on the new primary %s after the kill; settled (all sent or unknown) "
              "%.1f s after the kill, %.1f s after the promote; per daemon sent before/after "
              "%s/%s" % (n, at_kill, len(sent), len(unknown),
                         "%.1f s" % (float(first_on_new) - t_kill) if first_on_new else "(none)",
                         settled - t_kill, settled - t_promoted, before, after))
        return before, after, settled - t_kill, settled - t_promoted

    def test_kill_primary_mid_send_and_promote(self):
        before, after, settle, _ = self.failover(MESSAGES, MESSAGES // 3)
        # Every daemon goes on: more sent than the window it had in flight.
        for i in range(2):
            self.assertGreater(after[i] - before[i], 2 * CONNECTIONS + 20,
                               "daemon %d sent %d before the kill, %d at the end"
                               % (i + 1, before[i], after[i]))
        self.assertLess(settle, SETTLE_GOAL_S, "settled too late")

    def test_kill_primary_after_the_last_send(self):
        """The last outcomes of a burst are staged by a window statement that
        marks nothing, which commits without waiting for the standby."""
        n = 300
        _, _, settle, _ = self.failover(n, n)
        self.assertLess(settle, SETTLE_GOAL_S, "settled too late")

    def test_a_slow_promote_is_found_within_seconds(self):
        """A failover manager that takes 13 s to promote: with several hosts
        the daemons try again every 2 s at most (one host: up to 10 s), so
        they are back on the new primary a few seconds after the promote."""
        _, _, _, after_promote = self.failover(300, 100, promote_after=13.0)
        self.assertLess(after_promote, 5.0, "found the new primary too late")


class NoSyncStandbyTest(FailoverCase):
    STANDBY = False

    def test_warns_and_sets_the_gauge(self):
        smtp = self.smtpd()
        self.setup_world(smtp, 0)
        d = self.daemon()
        d.wait_log("no synchronous standby (synchronous_standby_names is empty)", 10)
        self.assertEqual(d.text().count("no synchronous standby"), 1, "once per connection")
        n, text = sent_count(self.http_port(self.cfg_path))
        self.assertRegex(text, r"(?m)^warmbench_db_sync_standby 0$")


class OneHostTest(DaemonCase):
    def test_one_host_no_warning_no_gauge(self):
        smtp = self.smtpd()
        self.setup_world(smtp, 0)
        d = self.daemon()
        _, text = sent_count(self.http_port(self.cfg_path))
        self.assertNotIn("warmbench_db_sync_standby", text)
        self.assertNotIn("synchronous standby", d.text())

    def http_port(self, path):
        with open(path) as f:
            return int(json.load(f)["http"]["listen"].rsplit(":", 1)[1])
