"""The demo sender's mailbox: a private Dovecot started the way the
integration tests start it (tests/integration/imapd.py), kept running
until SIGTERM or SIGINT, then stopped and its temp folder removed.

    mailbox.py --state FILE --password-file PW
        writes PW (the IMAP password, 0600) and FILE (JSON: port, user, URL,
        maildir, the uid/gid mail is delivered as, Dovecot's pid and folder),
        and prints Dovecot's pid and folder

people.py reads FILE to drop mail into the maildir as an MDA would."""
import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import imapd  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", required=True)
    ap.add_argument("--password-file", required=True,
                    help="written with the IMAP password, mode 0600, for warmbench.json")
    args = ap.parse_args()
    stop = {"now": False}

    def on_signal(_sig, _frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    imap = imapd.Dovecot(user="ana", password="demo imap pw")
    try:
        imap.start()
        fd = os.open(args.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(imap.password + "\n")
        state = {"port": imap.port, "user": imap.user, "url": imap.url(),
                 "maildir": imap.maildir, "mail_uid": imap.mail_uid,
                 "mail_gid": imap.mail_gid, "dir": imap.dir, "dovecot_pid": imap.proc.pid}
        with open(args.state + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(args.state + ".tmp", args.state)
        # The log keeps where Dovecot ran, for a check that it was stopped.
        print("dovecot pid %d dir %s port %d" % (imap.proc.pid, imap.dir, imap.port), flush=True)
        while not stop["now"]:
            if imap.proc.poll() is not None:
                print("dovecot exited: " + imap.log(), file=sys.stderr)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        imap.stop()


if __name__ == "__main__":
    sys.exit(main())
