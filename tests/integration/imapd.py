"""A private Dovecot IMAP server for the integration tests: its own config
file, base_dir, log and Maildir in a temp folder, listening on 127.0.0.1 and
a free port, plaintext login allowed (loopback only, ssl = no), one user from
a passwd-file.

Dovecot never serves mail as root ("Mail access not allowed for root",
hard-coded). When the tests run as root (CI), mail is served as `nobody`
(first_valid_uid = 1 lets its uid through) and the Maildir and every file
deliver() writes are chowned to it. As a normal user, mail and Dovecot's
login and internal services all run as that user (Dovecot supports running
unprivileged that way).

Dovecot(oauth_introspect_url=URL) swaps the password login for an `oauth2`
passdb that introspects each bearer token at URL (RFC 7662, e.g.
oauthd.py's /introspect; the token must be active and its `username` the
login's user), with `auth_mechanisms` = oauth_mechanisms (default
"xoauth2 oauthbearer"). The user's mail is served as before."""
import email.utils
import os
import pwd
import grp
import shutil
import socket
import subprocess
import tempfile
import time

import harness

DOVECOT = os.environ.get("WB_DOVECOT", "/usr/sbin/dovecot")


class Dovecot:
    def __init__(self, user="wbtest", password="s3cret pw", oauth_introspect_url=None,
                 oauth_mechanisms="xoauth2 oauthbearer"):
        self.user = user
        self.password = password
        self.oauth_introspect_url = oauth_introspect_url
        self.oauth_mechanisms = oauth_mechanisms
        self.dir = None
        self.proc = None
        self.port = None
        self._seq = 0

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="wbimap-")
        self.port = harness.free_port()
        self.maildir = os.path.join(self.dir, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        uid, gid = os.getuid(), os.getgid()
        me = pwd.getpwuid(uid).pw_name
        if uid == 0:
            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            for d, _, _ in os.walk(self.maildir):
                os.chown(d, uid, gid)
        self.mail_uid, self.mail_gid = uid, gid
        group = grp.getgrgid(gid).gr_name
        # The auth process runs as Dovecot's internal user: it must reach
        # the passwd-file (a throwaway test password).
        os.chmod(self.dir, 0o711)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            # uid/gid left empty: passwd-file refuses 0 there; mail_uid applies.
            f.write(f"{self.user}:{{PLAIN}}{self.password}:::::\n")
        os.chmod(os.path.join(self.dir, "passwd"), 0o644)
        unprivileged = "" if os.getuid() == 0 else (
            f"default_login_user = {me}\ndefault_internal_user = {me}\n")
        mechanisms = "plain login"
        passdb = f"""passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.dir}/passwd
}}"""
        if self.oauth_introspect_url:
            mechanisms = self.oauth_mechanisms
            harness.write(os.path.join(self.dir, "oauth2.conf"), f"""
introspection_mode = post
introspection_url = {self.oauth_introspect_url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
""", 0o644)
            passdb = f"""passdb {{
  driver = oauth2
  mechanisms = {mechanisms}
  args = {self.dir}/oauth2.conf
}}"""
        conf = f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
info_log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
mail_location = maildir:{self.maildir}
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
first_valid_gid = 1
mail_privileged_group = {group}
{unprivileged}
{passdb}
userdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
        self.conf = harness.write(os.path.join(self.dir, "dovecot.conf"), conf)
        os.makedirs(os.path.join(self.dir, "state"))
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.proc.stderr.read().decode()
                                   + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not listen on %d: %s" % (self.port, self.log()))

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def url(self, mailbox="INBOX"):
        return f"imap://127.0.0.1:{self.port}/{mailbox}"

    def deliver(self, raw):
        """Drops one message (bytes or str) into Maildir/new, as an MDA does
        (written in tmp/, then renamed)."""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        self._seq += 1
        name = "%d.M%dP%d.wbtest" % (int(time.time()), self._seq, os.getpid())
        tmp = os.path.join(self.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(raw)
        if os.getuid() == 0:
            os.chown(tmp, self.mail_uid, self.mail_gid)
        os.rename(tmp, os.path.join(self.maildir, "new", name))
        return name

    def remove_all(self):
        """Empties the mailbox and its index so Dovecot assigns a new
        UIDVALIDITY on the next access."""
        for sub in ("cur", "new", "tmp"):
            d = os.path.join(self.maildir, sub)
            for n in os.listdir(d):
                os.unlink(os.path.join(d, n))
        for n in os.listdir(self.maildir):
            if n.startswith("dovecot"):
                p = os.path.join(self.maildir, n)
                if os.path.isdir(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)


def message(headers, body):
    """An RFC 5322 message from a list of (name, value) and a body (str)."""
    lines = [f"{k}: {v}" for k, v in headers]
    if not any(k.lower() == "date" for k, _ in headers):
        lines.append("Date: " + email.utils.formatdate())
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode("utf-8")
