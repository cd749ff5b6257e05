"""Helpers for the warmbenchd acceptance tests: the test SMTP server and the
daemon as subprocesses, and wait-until helpers that poll (never a fixed long
sleep)."""
import email
import email.policy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import harness

SMTPD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtpd.py")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "ERROR: UndefinedBehaviorSanitizer")


def wait_until(fn, timeout, what, interval=0.05):
    """Calls fn until it returns something truthy; returns that. Raises
    AssertionError naming `what` after timeout seconds."""
    end = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class Smtpd:
    """tests/integration/smtpd.py on a port (free unless given), its files in
    a temp folder. start() waits for READY."""

    def __init__(self, *args, port=None):
        self.args = list(args)
        self.port = port or harness.free_port()
        self.dir = tempfile.mkdtemp(prefix="wbsmtpd-")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", SMTPD, "--port", str(self.port),
                                      "--outdir", self.dir] + self.args,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError("smtpd did not start: %r" % line)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def stats(self):
        try:
            with open(os.path.join(self.dir, "stats.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"connections": 0, "max_concurrent": 0, "messages": 0, "refused": 0}

    def count(self):
        return self.stats()["messages"]

    def messages(self):
        """Every stored message as a dict: n, raw, msg (parsed, policy.default),
        mail_from, rcpt_tos, mtime. Only those stats.json already counts."""
        out = []
        n = self.count()
        for i in range(1, n + 1):
            base = os.path.join(self.dir, "%06d" % i)
            with open(base + ".eml", "rb") as f:
                raw = f.read()
            with open(base + ".json") as f:
                env = json.load(f)
            out.append({"n": i, "raw": raw,
                        "msg": email.message_from_bytes(raw, policy=email.policy.default),
                        "mail_from": env["mail_from"], "rcpt_tos": env["rcpt_tos"],
                        "auth_user": env.get("auth_user"),
                        "mtime": os.stat(base + ".eml").st_mtime})
        return out


class Daemon:
    """warmbenchd --config CFG with stdout+stderr in a log file."""

    def __init__(self, cfg_path, log_path, env=None):
        self.cfg_path = cfg_path
        self.log_path = log_path
        self.env = env
        self.proc = None
        self.returncode = None
        self.killed = False

    def start(self, wait_ready=True, timeout=15):
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        e.pop("NOTIFY_SOCKET", None)
        if self.env:
            e.update(self.env)
        self.log = open(self.log_path, "ab")
        self.mark = self.log.tell()
        self.proc = subprocess.Popen([harness.WARMBENCHD, "--config", self.cfg_path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)
        self.returncode = None
        if wait_ready:
            self.wait_log("ready:", timeout)
        return self

    def text(self, since_start=False):
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self.mark)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, needle, timeout=10, since_start=True):
        def seen():
            if self.proc.poll() is not None and needle not in self.text(since_start):
                raise AssertionError(f"warmbenchd exited {self.proc.returncode} before logging "
                                     f"{needle!r}:\n{self.text()}")
            return needle in self.text(since_start)
        return wait_until(seen, timeout, f"warmbenchd to log {needle!r}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("warmbenchd did not stop within %ss of SIGTERM:\n%s"
                                     % (timeout, self.text()))
        self.returncode = self.proc.returncode
        self.log.close()
        return self.returncode

    def kill9(self):
        self.killed = True
        self.proc.kill()
        self.proc.wait()
        self.returncode = self.proc.returncode
        self.log.close()

    def sanitizer_report(self):
        t = self.text()
        for mark in SANITIZER_MARKS:
            if mark in t:
                return t
        return None
