"""Operations: the systemd unit (systemd-analyze verify, offline security
exposure), sd_notify from warmbenchd under a test NOTIFY_SOCKET (READY=1,
WATCHDOG=1, STATUS=, clean SIGTERM), `make install` into a DESTDIR with the
installed paths compiled in, and the man pages rendering without warnings."""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness

ROOT = harness.ROOT
UNIT = os.path.join(ROOT, "systemd", "warmbenchd.service")
MAN_PAGES = sorted(glob.glob(os.path.join(ROOT, "man", "*.[158]")))
JOBS = "-j%d" % max(2, min(8, os.cpu_count() or 2))


def make_install(destdir, prefix):
    """Runs `make install` into destdir; returns the CompletedProcess."""
    # Not the settings of a `make check` this may run under (BUILD, SAN, ...).
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "BUILD", "SAN",
                        "SQL_DIR_DEFAULT", "SHARE_DIR_DEFAULT", "DESTDIR", "PREFIX")}
    return subprocess.run(["make", "--no-print-directory", JOBS, "install",
                           "DESTDIR=" + destdir, "PREFIX=" + prefix],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)


class InstallTree:
    """One `make install DESTDIR=... PREFIX=/usr` shared by the tests of a
    class (building the install copy takes a while)."""
    dest = None
    result = None

    @classmethod
    def get(cls):
        if cls.result is None:
            cls.dest = tempfile.mkdtemp(prefix="wbinst-")
            cls.result = make_install(cls.dest, "/usr")
        return cls.dest, cls.result

    @classmethod
    def cleanup(cls):
        if cls.dest:
            shutil.rmtree(cls.dest, ignore_errors=True)
        cls.dest = cls.result = None


def tearDownModule():
    InstallTree.cleanup()


class InstallCase(harness.WbTestCase):
    def installed(self):
        dest, r = InstallTree.get()
        self.assertEqual(r.returncode, 0, f"make install failed\nstdout:\n{r.stdout}\n"
                                          f"stderr:\n{r.stderr}")
        return dest


class TestMakeInstall(InstallCase):
    def test_layout(self):
        dest = self.installed()
        for rel, mode in [("usr/bin/warmbench", 0o755), ("usr/sbin/warmbenchd", 0o755),
                          ("lib/systemd/system/warmbenchd.service", 0o644),
                          ("usr/share/warmbench/sql/001_domain.sql", 0o644),
                          ("usr/share/warmbench/examples/warmbench.json", 0o644),
                          ("usr/share/warmbench/examples/pool.csv", 0o644),
                          ("usr/share/man/man1/warmbench.1", 0o644),
                          ("usr/share/man/man5/warmbench.json.5", 0o644),
                          ("usr/share/man/man8/warmbenchd.8", 0o644)]:
            path = os.path.join(dest, rel)
            self.assertTrue(os.path.isfile(path), f"{rel} not installed")
            self.assertEqual(os.stat(path).st_mode & 0o777, mode, rel)
        self.assertEqual(sorted(os.listdir(os.path.join(dest, "usr/share/warmbench/sql"))),
                         sorted(os.listdir(os.path.join(ROOT, "sql"))))
        for sub in ("sequences", "templates"):
            self.assertEqual(
                sorted(os.listdir(os.path.join(dest, "usr/share/warmbench/examples", sub))),
                sorted(os.listdir(os.path.join(ROOT, "config", sub))))
        if os.path.exists(os.path.join(ROOT, "config", "intent.json")):
            self.assertTrue(os.path.isfile(os.path.join(dest, "usr/share/warmbench/intent.json")))
        self.assertFalse(os.path.exists(
            os.path.join(dest, "usr/share/warmbench/examples/secret.key")))
        unit = open(os.path.join(dest, "lib/systemd/system/warmbenchd.service")).read()
        self.assertIn("\nExecStart=/usr/sbin/warmbenchd\n", unit)
        self.assertNotIn("/usr/local", unit)
        self.assertNotIn("/usr/local",
                         open(os.path.join(dest, "usr/share/man/man8/warmbenchd.8")).read())

    def test_compiled_paths_are_the_installed_ones(self):
        dest = self.installed()
        for prog in ("usr/bin/warmbench", "usr/sbin/warmbenchd"):
            data = open(os.path.join(dest, prog), "rb").read()
            self.assertIn(b"/usr/share/warmbench/sql\0", data, prog)
            self.assertNotIn(os.path.join(ROOT, "sql").encode() + b"\0", data, prog)
        # Without WARMBENCH_SQL_DIR the installed tool looks in /usr/share
        # (absent here, as nothing is installed outside DESTDIR).
        if os.path.exists("/usr/share/warmbench/sql"):
            self.skipTest("/usr/share/warmbench/sql exists on this machine")
        self.config()
        env = dict(os.environ)
        env.pop("WARMBENCH_SQL_DIR", None)
        p = subprocess.run([os.path.join(dest, "usr/bin/warmbench"), "--config", self.cfg_path,
                            "migrate"], capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot read migrations in /usr/share/warmbench/sql", p.stderr)

    def test_installed_tool_migrates_and_checks_config(self):
        dest = self.installed()
        wb = os.path.join(dest, "usr/bin/warmbench")
        sql_dir = os.path.join(dest, "usr/share/warmbench/sql")
        env = dict(os.environ, WARMBENCH_SQL_DIR=sql_dir)
        cfg = self.config()
        p = subprocess.run([wb, "--config", cfg, "migrate"], capture_output=True, text=True,
                           env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        n = len(glob.glob(os.path.join(sql_dir, "*.sql")))
        self.assertIn(f"migrations: {n} applied", p.stdout)
        p = subprocess.run([wb, "--config", cfg, "migrate"], capture_output=True, text=True,
                           env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("migrations: 0 applied", p.stdout)
        p = subprocess.run([wb, "--config", cfg, "check-config"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # The installed example configuration is complete once it has a secret.
        ex = os.path.join(self.tmp, "example")
        shutil.copytree(os.path.join(dest, "usr/share/warmbench/examples"), ex)
        harness.write(os.path.join(ex, "secret.key"), "example-secret-0123456789-0123456789abcdef\n", 0o600)
        p = subprocess.run([wb, "--config", os.path.join(ex, "warmbench.json"), "check-config"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("config ok", p.stdout)
        # The installed daemon answers too.
        p = subprocess.run([os.path.join(dest, "usr/sbin/warmbenchd"), "--version"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("warmbenchd "))

    def test_prefix_usr_local(self):
        dest = tempfile.mkdtemp(prefix="wbinst-local-")
        self.addCleanup(shutil.rmtree, dest, True)
        r = make_install(dest, "/usr/local")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        unit = os.path.join(dest, "usr/local/lib/systemd/system/warmbenchd.service")
        self.assertIn("\nExecStart=/usr/local/sbin/warmbenchd\n", open(unit).read())
        data = open(os.path.join(dest, "usr/local/bin/warmbench"), "rb").read()
        self.assertIn(b"/usr/local/share/warmbench/sql\0", data)
        self.assertTrue(os.path.isfile(os.path.join(dest, "usr/local/share/man/man8/warmbenchd.8")))
        self.assertFalse(os.path.exists(os.path.join(dest, "lib")))


@unittest.skipUnless(shutil.which("systemd-analyze"),
                     "systemd-analyze is not installed (make deps installs the systemd package)")
class TestUnit(InstallCase):
    def verify(self, unit_text, dest):
        """systemd-analyze verify on unit_text with ExecStart pointing into
        dest; returns (returncode, all output)."""
        d = tempfile.mkdtemp(prefix="wbunit-", dir=self.tmp)
        path = os.path.join(d, "warmbenchd.service")
        text = re.sub(r"^ExecStart=(/\S*)?/sbin/warmbenchd$",
                      "ExecStart=" + os.path.join(dest, "usr/sbin/warmbenchd"),
                      unit_text, flags=re.M)
        self.assertNotEqual(text, unit_text, "no ExecStart=.../sbin/warmbenchd line")
        harness.write(path, text)
        env = dict(os.environ, MANPATH=os.path.join(dest, "usr/share/man"),
                   SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="")
        p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                           env=env, timeout=120)
        return p.returncode, p.stdout + p.stderr, path

    def test_verify_is_clean(self):
        dest = self.installed()
        for name, text in [("source unit", open(UNIT).read()),
                           ("installed unit", open(os.path.join(
                               dest, "lib/systemd/system/warmbenchd.service")).read())]:
            rc, out, _ = self.verify(text, dest)
            self.assertEqual((rc, out), (0, ""), f"systemd-analyze verify of the {name}:\n{out}")

    def test_verify_notices_a_bad_unit(self):
        # The check above would pass vacuously if verify ignored the file.
        dest = self.installed()
        rc, out, _ = self.verify(open(UNIT).read() + "\n[Service]\nNoSuchKey=1\n", dest)
        self.assertIn("NoSuchKey", out)

    def test_unit_settings(self):
        text = open(UNIT).read()
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                     "User=warmbench", "Environment=WARMBENCH_CONFIG=/etc/warmbench/warmbench.json",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes", "PrivateDevices=yes", "CapabilityBoundingSet=",
                     "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                     "SystemCallFilter=@system-service"]:
            self.assertIn("\n" + line + "\n", text)
        self.assertRegex(text, r"\nWatchdogSec=\d+s?\n")
        self.assertRegex(text, r"\nLoadCredential=secret\.key:/etc/warmbench/secret\.key\n")

    def test_security_exposure_offline(self):
        dest = self.installed()
        rc, out, path = self.verify(open(UNIT).read(), dest)
        p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                            path], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER=""))
        if "--offline" in p.stderr and "unrecognized" in p.stderr:
            self.skipTest("this systemd-analyze has no --offline")
        m = re.search(r"Overall exposure level for warmbenchd\.service: ([0-9.]+)", p.stdout)
        self.assertTrue(m, p.stdout + p.stderr)
        print(f"\n  systemd-analyze security --offline: exposure {m.group(1)}", end=" ")
        self.assertEqual(p.returncode, 0, f"exposure {m.group(1)} above 2.0\n{p.stdout}")


class TestNotify(harness.WbTestCase):
    def test_ready_watchdog_status_and_clean_stop(self):
        self.config()
        self.wb("migrate", check=0)
        sock_path = os.path.join(self.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(sock_path)
        s.settimeout(0.5)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="2000000")
        env.pop("WATCHDOG_PID", None)
        log = open(os.path.join(self.tmp, "warmbenchd.log"), "w+")
        self.addCleanup(log.close)
        d = subprocess.Popen([harness.WARMBENCHD, "--config", self.cfg_path], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(d)
        lines = []
        ready_at = None
        deadline = time.monotonic() + 30
        # READY=1, at least two WATCHDOG=1 after it, and the periodic STATUS=
        # with queue figures (every 5 s).
        while time.monotonic() < deadline:
            try:
                msg = s.recv(4096).decode()
            except socket.timeout:
                self.assertIsNone(d.poll(), "warmbenchd exited early:\n" + self._log(log))
                continue
            for line in msg.split("\n"):
                if line:
                    lines.append(line)
                if line == "READY=1" and ready_at is None:
                    ready_at = len(lines)
            after = lines[ready_at:] if ready_at is not None else []
            if (ready_at is not None and after.count("WATCHDOG=1") >= 2
                    and any(x.startswith("STATUS=") and "in flight" in x for x in lines)):
                break
        self.assertIn("READY=1", lines, "no READY=1\n" + self._log(log))
        self.assertGreaterEqual(lines.count("WATCHDOG=1"), 2, lines)
        self.assertIn("STATUS=running", lines)
        status = [x for x in lines if x.startswith("STATUS=") and "in flight" in x]
        self.assertTrue(status, lines)
        self.assertRegex(status[-1], r"^STATUS=running; ready \d+, in flight \d+")
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait(30), 0, self._log(log))
        try:
            while True:
                lines.extend(x for x in s.recv(4096).decode().split("\n") if x)
        except socket.timeout:
            pass
        self.assertIn("STOPPING=1", lines)

    def test_pending_migration_is_never_ready(self):
        self.config()
        sock_path = os.path.join(self.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind(sock_path)
        s.settimeout(0.2)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        p = subprocess.run([harness.WARMBENCHD, "--config", self.cfg_path], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("warmbench migrate", p.stderr)
        got = []
        try:
            while True:
                got.extend(s.recv(4096).decode().split("\n"))
        except socket.timeout:
            pass
        self.assertNotIn("READY=1", got)

    def test_a_skipped_earlier_migration_is_pending(self):
        """Every migration must be applied, not only the newest: a database
        missing an earlier one (numbers skip; one can land late) is refused."""
        self.config()
        self.wb("migrate", check=0)
        self.sql("DELETE FROM schema_migrations WHERE version = 2")
        p = subprocess.run([harness.WARMBENCHD, "--config", self.cfg_path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("warmbench migrate", p.stderr)

    @staticmethod
    def _log(f):
        f.flush()
        f.seek(0)
        return f.read()


@unittest.skipUnless(shutil.which("man"), "man is not installed (make deps installs man-db)")
class TestManPages(unittest.TestCase):
    def test_pages_exist(self):
        names = sorted(os.path.basename(p) for p in MAN_PAGES)
        self.assertEqual(names, ["warmbench.1", "warmbench.json.5", "warmbenchd.8"])

    def test_render_without_warnings(self):
        for page in MAN_PAGES:
            p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                               text=True, timeout=60,
                               env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0",
                                        MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8"))
            self.assertEqual(p.returncode, 0, page)
            self.assertEqual(p.stderr, "", f"{page}:\n{p.stderr}")
            self.assertIn("NAME", re.sub(".\x08", "", p.stdout))

    def test_cli_commands_documented(self):
        text = open(os.path.join(ROOT, "man", "warmbench.1")).read().replace("\\-", "-")
        for cmd in ("migrate", "check-config", "import", "enroll", "stats", "show", "suppress",
                    "forget", "export", "handoff", "webhooks"):
            self.assertRegex(text, r"\.(B|BI|BR) \"?%s\b" % re.escape(cmd), cmd)
        for opt in ("--config", "--tag", "--email", "--json", "--help", "--version"):
            self.assertIn(opt, text)
        for code in ("64", "65", "69", "78"):
            self.assertIn(".B " + code, text)


if __name__ == "__main__":
    unittest.main()
