"""pg_loop against a real PostgreSQL: the query queue, LISTEN/NOTIFY,
reconnect after a server restart or a killed backend, backoff without a
server, and close with work pending (build/tests/drv_pg_loop)."""
import os
import queue
import resource
import socket
import subprocess
import threading
import time

from harness import BUILD, WbTestCase

DRV = os.path.join(BUILD, "tests", "drv_pg_loop")


class Driver:
    """drv_pg_loop in the background; its stdout lines arrive on a queue."""

    def __init__(self, test, *args, env=None):
        e = dict(os.environ)
        if env is not None:
            e = env
        self.proc = subprocess.Popen([DRV] + [str(a) for a in args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=e)
        test.procs.append(self.proc)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix, timeout=20):
        """Waits for a line starting with prefix; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line {prefix!r} in time; saw {self.seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"driver ended before {prefix!r}; saw {self.seen}; "
                                     f"stderr: {self.proc.stderr.read()}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def finish(self, test, timeout=60):
        """Waits for exit; asserts status 0 and no FAIL line; returns all lines."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        while True:
            line = self.lines.get(timeout=10)
            if line is None:
                break
            self.seen.append(line)
        err = self.proc.stderr.read()
        test.assertEqual(self.proc.returncode, 0, f"stdout: {self.seen}\nstderr: {err}")
        test.assertFalse([l for l in self.seen if l.startswith("FAIL")], self.seen)
        return self.seen


def fields(line, skip=1):
    """'done ok 3 lost 1' -> {'ok': 3, 'lost': 1}"""
    words = line.split()[skip:]
    return {k: int(float(v)) for k, v in zip(words[0::2], words[1::2])}


class PgLoopTest(WbTestCase):
    def test_queue_fifo_errors_and_large_params(self):
        out = Driver(self, self.db, "basic", 1000).finish(self)
        self.assertIn("ok 1000", out)

    def test_socket_change_while_connecting(self):
        # The first host refuses: libpq moves to a new socket for the second.
        dead = self._closed_port()
        url = f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{self.pg.port}/{self.dbname}"
        out = Driver(self, url, "basic", 50).finish(self)
        self.assertIn("ok 50", out)

    def test_host_names_resolved_off_the_loop(self):
        # "localhost" goes through uv_getaddrinfo and reaches libpq as hostaddr.
        url = f"postgresql://postgres@localhost:{self.pg.port}/{self.dbname}"
        self.assertIn("ok 20", Driver(self, url, "basic", 20).finish(self))
        dead = self._closed_port()
        kv = f"host=localhost,localhost port={dead},{self.pg.port} user=postgres dbname={self.dbname}"
        self.assertIn(f"app warmbenchd db {self.dbname}", Driver(self, kv, "app").finish(self))

    def test_unresolvable_host_name(self):
        out = Driver(self, "postgresql://postgres@wb-no-such-host.invalid/x", "bad", 2000).finish(self)
        why = [l for l in out if l.startswith("disconnect ")]
        if not why:
            self.skipTest("the resolver gave no answer within 2 s")
        self.assertIn('could not translate host name "wb-no-such-host.invalid"', why[0])

    def test_application_name(self):
        out = Driver(self, self.db, "app").finish(self)
        self.assertIn(f"app warmbenchd db {self.dbname}", out)
        out = Driver(self, self.db + "?application_name=mine", "app").finish(self)
        self.assertIn(f"app mine db {self.dbname}", out)

    def test_empty_conninfo_uses_libpq_environment(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.pg.port), PGUSER="postgres",
                   PGDATABASE=self.dbname)
        out = Driver(self, "", "app", env=env).finish(self)
        self.assertIn(f"app warmbenchd db {self.dbname}", out)
        env["PGAPPNAME"] = "fromenv"
        out = Driver(self, "", "app", env=env).finish(self)
        self.assertIn(f"app fromenv db {self.dbname}", out)

    def test_notify(self):
        d = Driver(self, self.db, "notify", 3)
        d.expect("ready 1")
        # "Wb B" is LISTENed from on_connect; a round trip makes sure it landed.
        time.sleep(0.3)
        self.sql("NOTIFY wb_a, 'one'")
        self.assertEqual(d.expect("notify"), "notify wb_a one")
        self.sql("SELECT pg_notify('Wb B', 'two words')")
        self.assertEqual(d.expect("notify"), "notify Wb B two words")
        self.sql("NOTIFY wb_other, 'not for us'; NOTIFY wb_a, 'three'")
        self.assertEqual(d.expect("notify"), "notify wb_a three")
        d.finish(self)

    def test_listen_survives_restart(self):
        d = Driver(self, self.db, "notify", 2)
        d.expect("ready 1")
        time.sleep(0.3)
        self.sql("NOTIFY wb_a, 'before'")
        self.assertEqual(d.expect("notify"), "notify wb_a before")
        self.pg.restart()
        d.expect("disconnect")
        d.expect("ready 2")  # on_connect runs after the LISTENs are back
        self.sql("SELECT pg_notify('Wb B', 'after')")
        self.assertEqual(d.expect("notify"), "notify Wb B after")
        d.finish(self)

    def test_reconnect_after_server_restart(self):
        d = Driver(self, self.db, "reconnect", 4000)
        d.expect("connect 1")
        time.sleep(1.0)
        self.pg.restart()
        d.expect("connect 2", timeout=15)
        out = d.finish(self)
        done = fields([l for l in out if l.startswith("done")][0])
        self.assertGreaterEqual(done["disconnects"], 1, out)
        self.assertEqual(done["connects"], 2, out)
        self.assertGreater(done["ok_since_connect"], 5, out)
        self.assertGreater(done["ok"], done["ok_since_connect"], out)
        self.assertEqual(done["errors"], 0, out)

    def test_killed_backend_fails_inflight_and_reconnects(self):
        d = Driver(self, self.db, "inflight")
        d.expect("sent")
        deadline = time.monotonic() + 10
        killed = []
        while not killed and time.monotonic() < deadline:
            killed = self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE datname = '{self.dbname}' AND application_name = 'warmbenchd' "
                              "AND query LIKE 'SELECT pg_sleep%'")
            time.sleep(0.05)
        self.assertTrue(killed)
        d.expect("lost")
        d.expect("disconnect")
        d.expect("ok after reconnect")
        d.finish(self)

    def test_close_with_pending_queries(self):
        out = Driver(self, self.db, "close").finish(self)
        self.assertIn("closed nulls 14 ok 2", out)

    def test_queue_cap_and_taking_queries_back(self):
        """Issue 18 defect 4: the queue is bounded (a stalled server cannot
        make it grow), and an owner that stops waiting takes its query back,
        queued or in flight."""
        out = Driver(self, self.db, "cap").finish(self)
        self.assertIn("cap answered 4", out)

    def _closed_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def test_unreachable_server_backs_off(self):
        url = f"postgresql://postgres@127.0.0.1:{self._closed_port()}/x"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = Driver(self, url, "bad", 2000).finish(self)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        last = fields([l for l in out if l.startswith("disconnects")][0], 0)
        # Attempts at 0, 0.1, 0.3, 0.7, 1.5 s: a handful, not a busy loop.
        self.assertGreaterEqual(last["disconnects"], 4, out)
        self.assertLessEqual(last["disconnects"], 7, out)
        self.assertEqual(last["connects"], 0, out)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.assertLess(cpu, 0.5, out)
        self.assertTrue(all("127.0.0.1" in l or "refused" in l.lower()
                            for l in out if l.startswith("disconnect ")), out)

    def test_silent_server_times_out(self):
        # Accepts TCP, never answers: only our connect deadline ends the wait.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        self.addCleanup(srv.close)
        url = f"postgresql://postgres@127.0.0.1:{srv.getsockname()[1]}/x?connect_timeout=2"
        d = Driver(self, url, "bad", 3000)
        line = d.expect("disconnect ", timeout=10)
        self.assertIn("timed out", line)
        out = d.finish(self)
        self.assertEqual(fields([l for l in out if l.startswith("disconnects")][0], 0)["disconnects"], 1, out)
