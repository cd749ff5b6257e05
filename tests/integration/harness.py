"""Shared harness for the integration tests: a throwaway PostgreSQL cluster
(run as the `postgres` user when we are root, since PostgreSQL refuses root),
one fresh database per test, and helpers to run the warmbench programs."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("WB_BUILD", "build"))
WARMBENCH = os.path.join(BUILD, "warmbench")
WARMBENCHD = os.path.join(BUILD, "warmbenchd")
PGBIN = os.environ.get("WB_PGBIN", "/usr/lib/postgresql/15/bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(cmd):
    """Prefix cmd so it runs as the postgres user when we are root."""
    if os.geteuid() == 0:
        # From /: postgres may not enter the caller's folder (a clone in /root).
        return ["runuser", "-u", "postgres", "--", "sh", "-c", 'cd / && exec "$@"', "sh"] + cmd
    return cmd


class PgCluster:
    """initdb in a temp folder, a free port, removed on stop()."""

    def __init__(self):
        self.dir = None
        self.port = None

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="wbpg-")
        os.chmod(self.dir, 0o700)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        subprocess.run(as_postgres([PGBIN + "/initdb", "-D", data, "-A", "trust",
                                    "-U", "postgres", "--no-sync", "-E", "UTF8",
                                    "--locale=C"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.port = free_port()
        self._ctl("start", "-w", "-l", os.path.join(self.dir, "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=200")
        return self

    def _ctl(self, *args):
        data = os.path.join(self.dir, "data")
        subprocess.run(as_postgres([PGBIN + "/pg_ctl", "-D", data] + list(args)),
                       check=True, stdout=subprocess.DEVNULL)

    def restart(self):
        self._ctl("restart", "-w", "-m", "fast")

    def stop(self):
        if not self.dir:
            return
        try:
            self._ctl("stop", "-m", "immediate")
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def url(self, db="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, db, sql, *args):
        """Runs sql; returns rows as lists of strings (unaligned, | separated)."""
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-d", self.url(db), "-c", sql] + list(args),
                             check=True, capture_output=True, text=True).stdout
        return [line.split("|") for line in out.splitlines() if line != ""]

    def createdb(self, name):
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}"')
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)


CLUSTER = None


def cluster():
    global CLUSTER
    if CLUSTER is None:
        CLUSTER = PgCluster().start()
    return CLUSTER


def stop_cluster():
    global CLUSTER
    if CLUSTER is not None:
        CLUSTER.stop()
        CLUSTER = None


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return path


DEFAULT_SEQUENCE = {
    "id": "nurture",
    "sender": "ana",
    "audience": {"tags_any": ["backend"]},
    "window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
               "start": "00:00", "end": "23:59", "timezone": "UTC"},
    "links": {"apply": "https://example.com/jobs/backend"},
    "steps": [
        {"after": "0d", "subject": "{{first_name|Hi}}, about backend",
         "text": "intro.txt", "html": "intro.html"},
        {"after": "3d", "subject": "Re: {{first_name|Hi}}, about backend",
         "text": "follow-up.txt", "thread": True},
    ],
    "stop_on": ["reply", "unsubscribe", "bounce"],
    "handoff_on": ["reply"],
}

DEFAULT_TEMPLATES = {
    "intro.txt": "Hello {{first_name|there}},\nSee {{links.apply}}\n"
                 "Unsubscribe: {{unsubscribe_url}}\n",
    "intro.html": "<p>Hello {{first_name|there}},</p><p><a href=\"{{links.apply}}\">apply</a></p>"
                  "<p><a href=\"{{unsubscribe_url}}\">unsubscribe</a></p>\n",
    "follow-up.txt": "Hi again {{first_name|there}}.\n",
}


class WbTestCase(unittest.TestCase):
    """A fresh database and config folder per test."""

    def setUp(self):
        self.pg = cluster()
        self.dbname = ("t_" + self.id().split(".", 1)[-1].replace(".", "_"))[:60].lower()
        self.db = self.pg.createdb(self.dbname)
        self.tmp = tempfile.mkdtemp(prefix="wbt-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = []
        self.addCleanup(self._kill_procs)

    def _kill_procs(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def config(self, sequences=None, templates=None, **over):
        """Writes warmbench.json (+ secret, sequences, templates) into self.tmp."""
        cfg = {
            "database": self.db,
            "http": {"listen": "127.0.0.1:%d" % free_port(),
                     "public_url": "http://127.0.0.1:8025"},
            "secret_file": "secret.key",
            "smtp": {"url": "smtp://127.0.0.1:%d" % free_port(), "tls": "off",
                     "connections": 4, "timeout_s": 10, "retry_base_s": 1},
            "bounce_domain": "bounces.example.com",
            "senders": {"ana": {"from": "Ana Ruiz <ana@example.com>",
                                "reply_to": "ana@example.com",
                                "daily_limit": 100000, "min_interval_s": 0}},
            "sequences_dir": "sequences",
            "templates_dir": "templates",
            "log": {"level": "info", "format": "text"},
        }
        for k, v in over.items():
            cfg[k] = v
        write(os.path.join(self.tmp, "secret.key"), "test-secret-0123456789abcdef-0123456789\n", 0o600)
        for seq in (sequences if sequences is not None else [DEFAULT_SEQUENCE]):
            write(os.path.join(self.tmp, "sequences", seq["id"] + ".json"), json.dumps(seq, indent=2))
        for name, text in (templates if templates is not None else DEFAULT_TEMPLATES).items():
            write(os.path.join(self.tmp, "templates", name), text)
        self.cfg_path = write(os.path.join(self.tmp, "warmbench.json"), json.dumps(cfg, indent=2))
        return self.cfg_path

    def wb(self, *args, check=None, input=None, env=None):
        """Runs warmbench --config self.cfg_path ARGS; returns CompletedProcess.
        check: expected exit code (asserted when given)."""
        e = dict(os.environ)
        if env:
            e.update(env)
        cmd = [WARMBENCH]
        if getattr(self, "cfg_path", None) and "--config" not in args:
            cmd += ["--config", self.cfg_path]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, input=input,
                           env=e, timeout=300)
        if check is not None:
            self.assertEqual(p.returncode, check,
                             f"warmbench {' '.join(args)} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def sql(self, query, *args):
        return self.pg.psql(self.dbname, query, *args)

    def scalar(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None
