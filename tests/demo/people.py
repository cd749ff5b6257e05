"""Simulated people for `make demo`, acting only through warmbench's real
interfaces: the tracking endpoint over HTTP with a browser's User-Agent,
mail dropped into the sender's Dovecot maildir as an MDA would (a reply, an
out-of-office, a DSN to the VERP address, an ARF complaint), and a signed
`candidate.rejected` to POST /ats/events. Everything they need comes from
the mail the SMTP sink received (pixel, links, List-Unsubscribe,
Message-ID, envelope sender), as it would for a person.

    people.py act   --mail DIR --imap-state FILE --config CFG --warmbench BIN
                    --ats-dir DIR
        acts, then waits until warmbench shows each consequence (events,
        enrollment states, handoffs verified at the ATS, the rejected
        candidate enrolled and mailed); exit 1 naming the first that did
        not happen.
    people.py check --stats FILE
        exit 1 unless the `warmbench stats --json` in FILE counts opens,
        clicks, replies, auto-replies, bounces, unsubscribes, hand-offs, a
        machine open and (when stats has the key) complaints."""
import argparse
import datetime
import email
import email.policy
import email.utils
import glob
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import imapd  # noqa: E402

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Safari/605.1.15")
# Gmail's image proxy fetches the pixel whether or not anyone reads the mail.
GOOGLE_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
WAIT_S = 60

# Who does what. Each address must have received step 1 of the sequence named.
BACKEND, DATA = "backend-silver-medallists", "data-passive-prospects"
CAST = [
    ("zoe.martin@example.com", BACKEND, "opens, reads the blog, clicks apply"),
    ("jose.garcia@example.net", DATA, 'opens, replies "yes, interested"'),
    ("sofia.rossi@example.net", DATA, "is away: an out-of-office answers"),
    ("kenji.sato@example.net", BACKEND, "bounces: a DSN 5.1.1 to the VERP address"),
    ("juergen.bauer@example.org", BACKEND, "unsubscribes with the one-click POST"),
    ("mehmet.yilmaz@example.net", DATA, "marks it as spam: an ARF report comes back"),
    ("emily.chen@example.org", BACKEND, "never reads it: Gmail's image proxy loads the pixel"),
    ("asa.lindqvist@example.com", BACKEND, "opens, reads the blog"),
    ("olivia.brown@example.com", BACKEND, "opens, reads the blog"),
    ("ines.costa@example.net", BACKEND, "opens, reads the blog"),
    ("liam.oconnor@example.org", BACKEND, "opens"),
    ("lukas.novak@example.com", BACKEND, "opens"),
    ("mei.lin@example.org", DATA, "opens, meets the team"),
    ("chloe.dubois@example.net", DATA, "opens, meets the team"),
    ("nguyen.linh@example.org", DATA, "opens"),
    ("amelia.jones@example.net", DATA, "opens"),
]
SILVER = {"email": "rui.santos@example.com", "first_name": "Rui", "last_name": "Santos",
          "title": "Senior Backend Engineer", "company": "Adventure Works",
          "location": "Porto, Portugal", "timezone": "Europe/Lisbon",
          "consent": "legitimate_interest", "source": "ats"}


class Failed(Exception):
    pass


def say(*a):
    print(*a, flush=True)


def wait_for(what, fn, timeout=WAIT_S):
    """Polls fn until it returns something true; Failed names `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failed("%s: not seen within %d s" % (what, timeout))
        time.sleep(0.3)


class Sent:
    """One message the SMTP sink kept: what its recipient can see in it."""

    def __init__(self, eml):
        with open(eml, "rb") as f:
            self.msg = email.message_from_binary_file(f, policy=email.policy.default)
        with open(eml[:-4] + ".json") as f:
            self.envelope = json.load(f)
        self.to = email.utils.parseaddr(str(self.msg["To"]))[1].lower()
        self.subject = str(self.msg["Subject"])
        self.message_id = str(self.msg["Message-ID"]).strip()
        fid = str(self.msg.get("Feedback-ID", "")).split(":")
        self.step, self.sequence = (int(fid[0]), fid[1]) if len(fid) == 4 else (0, "")
        html = self.msg.get_body(("html",))
        self.html = html.get_content() if html else ""
        unsub = re.match(r"<(.+)>", str(self.msg.get("List-Unsubscribe", "")))
        self.unsubscribe = unsub.group(1) if unsub else None

    def pixel(self):
        return re.search(r'src="([^"]+/o/[^"]+\.gif)"', self.html).group(1)

    def link(self, text):
        """The tracked URL of the anchor whose text starts with `text`."""
        m = re.search(r'<a href="([^"]+/c/[^"]+)">' + re.escape(text), self.html)
        if not m:
            raise Failed("no link %r in the mail to %s" % (text, self.to))
        return m.group(1)

    def verp_token(self):
        m = re.match(r"b\+([^@]+)@", self.envelope["mail_from"])
        if not m:
            raise Failed("envelope sender %r is not VERP" % self.envelope["mail_from"])
        return m.group(1)


def load_mail(maildir):
    """Every message the sink has finished storing: it writes the .json
    after the .eml, so a message without its .json may be incomplete."""
    return [Sent(p) for p in sorted(glob.glob(os.path.join(maildir, "*.eml")))
            if os.path.exists(p[:-4] + ".json")]


def first_mail(maildir, addr, sequence):
    for s in load_mail(maildir):
        if s.to == addr and s.sequence == sequence and s.step == 1:
            return s
    raise Failed("%s got no step 1 of %s" % (addr, sequence))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def http(url, ua=FIREFOX, data=None, headers=None):
    """(status, headers, body) without following redirects."""
    h = {"User-Agent": ua}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=h, method="POST" if data else "GET")
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def open_mail(s, ua=FIREFOX):
    status, h, _ = http(s.pixel(), ua)
    if status != 200 or h["Content-Type"] != "image/gif":
        raise Failed("open pixel for %s answered %s %s" % (s.to, status, h["Content-Type"]))


def click(s, text):
    status, h, _ = http(s.link(text), SAFARI)
    if status != 302:
        raise Failed("click %r for %s answered %s" % (text, s.to, status))
    return h["Location"]


def ats_post(url, secret, body):
    raw = json.dumps(body).encode()
    t = str(int(time.time()))
    sig = hmac.new(secret, t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    status, _, answer = http(url, "demo-ats/1.0", raw, {
        "Content-Type": "application/json", "Warmbench-Signature": "t=%s,v1=%s" % (t, sig)})
    return status, answer.decode("utf-8", "replace")


class Mailbox:
    """The maildir of the demo's Dovecot, written as imapd.Dovecot.deliver does."""

    def __init__(self, state_file):
        with open(state_file) as f:
            st = json.load(f)
        self.box = imapd.Dovecot(user=st["user"])
        self.box.maildir, self.box.mail_uid, self.box.mail_gid = (
            st["maildir"], st["mail_uid"], st["mail_gid"])

    def deliver(self, headers, body):
        self.box.deliver(imapd.message(headers, body))


def quote(s):
    text = s.msg.get_body(("plain",)).get_content()
    return "".join("> " + line + "\n" for line in text.splitlines()[:6])


def reply_mail(s, name, text):
    date = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc))
    return ([("From", "%s <%s>" % (name, s.to)), ("To", str(s.msg["Reply-To"] or s.msg["From"])),
             ("Subject", "Re: " + s.subject), ("In-Reply-To", s.message_id),
             ("References", s.message_id),
             ("Message-ID", "<%s.%d@%s>" % (hashlib.sha1(s.message_id.encode()).hexdigest()[:16],
                                            int(time.time()), s.to.split("@")[1]))],
            text + "\n\nOn %s, Ana Ruiz wrote:\n" % date + quote(s))


def ooo_mail(s, back):
    return ([("From", s.to), ("To", str(s.msg["Reply-To"] or s.msg["From"])),
             ("Subject", "Automatic reply: " + s.subject), ("In-Reply-To", s.message_id),
             ("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")],
            "I am out of the office until %s with limited access to email.\n"
            "I will answer when I am back.\n" % back.isoformat())


def dsn_mail(s, bounce_domain):
    tok = s.verp_token()
    return ([("From", "MAILER-DAEMON@mx.%s (Mail Delivery System)" % s.to.split("@")[1]),
             ("To", "b+%s@%s" % (tok, bounce_domain)),
             ("Subject", "Undelivered Mail Returned to Sender"),
             ("Auto-Submitted", "auto-replied"), ("MIME-Version", "1.0"),
             ("Content-Type", 'multipart/report; report-type=delivery-status; boundary="BB"')],
            "--BB\nContent-Type: text/plain\n\nThis is the mail system. Your message could not "
            "be delivered.\n\n--BB\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.%s\n\nFinal-Recipient: rfc822; %s\nAction: failed\n"
            "Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <%s>: user unknown\n\n"
            "--BB\nContent-Type: text/rfc822-headers\n\nReturn-Path: <b+%s@%s>\n"
            "Message-ID: %s\n--BB--\n" % (s.to.split("@")[1], s.to, s.to, tok, bounce_domain,
                                          s.message_id))


def arf_mail(s, bounce_domain):
    return ([("From", "fbl@feedback.mail.example"), ("To", "fbl@example.com"),
             ("Subject", "Abuse report for a message from 127.0.0.1"), ("MIME-Version", "1.0"),
             ("Content-Type", 'multipart/report; report-type=feedback-report; boundary="FB"')],
            "--FB\nContent-Type: text/plain\n\nA user marked this message as spam.\n\n"
            "--FB\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
            "User-Agent: DemoFBL/1.0\nVersion: 1\n\n"
            "--FB\nContent-Type: text/rfc822-headers\n\nReturn-Path: <b+%s@%s>\n"
            "From: %s\nTo: %s\nMessage-ID: %s\n--FB--\n"
            % (s.verp_token(), bounce_domain, s.msg["From"], s.to, s.message_id))


class Warmbench:
    def __init__(self, binary, config):
        self.cmd = [binary, "--config", config]

    def show(self, addr):
        p = subprocess.run(self.cmd + ["show", addr, "--json"], capture_output=True, text=True)
        return json.loads(p.stdout) if p.returncode == 0 else None


def has_event(wb, addr, etype, **want):
    """The person's first event of type `etype` whose detail holds `want` (machine
    events only when want says machine=True)."""
    doc = wb.show(addr)
    machine = want.pop("machine", False)
    for e in (doc or {}).get("timeline", []):
        d = e.get("detail") or {}
        if e["type"] == etype and bool(e.get("machine")) == machine and \
                all(d.get(k) == v for k, v in want.items()):
            return e
    return None


def sent_at(wb, addr):
    """When the daemon recorded step 1 as sent to addr (UNIX time), or None."""
    for e in (wb.show(addr) or {}).get("timeline", []):
        if e["type"] == "sent" and e.get("step") == 1:
            return datetime.datetime.fromisoformat(e["at"]).timestamp()
    return None


def state_of(wb, addr, sequence):
    for e in (wb.show(addr) or {}).get("enrollments", []):
        if e["sequence"] == sequence:
            return e["state"], e.get("stop_reason")
    return None, None


def handoff_file(ats_dir, addr, reason):
    for p in sorted(glob.glob(os.path.join(ats_dir, "[0-9][0-9][0-9].json"))):
        with open(p) as f:
            body = json.load(f)
        if body["candidate"]["email"] == addr and body["reason"] == reason:
            return p
    return None


def act(a):
    with open(a.config) as f:
        cfg = json.load(f)
    machine_click_s = cfg["http"].get("machine_click_s", 5)
    bounce_domain = cfg["bounce_domain"]
    base = cfg["http"]["public_url"]
    with open(os.path.join(os.path.dirname(a.config), cfg["ats"]["secret_file"]), "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    wb = Warmbench(a.warmbench, a.config)
    box = Mailbox(a.imap_state)
    mail = {addr: first_mail(a.mail, addr, seq) for addr, seq, _ in CAST}
    for addr, _, what in CAST:
        say("  %-27s %s" % (addr, what))

    # Opens first: a person reads before clicking.
    for addr, _, what in CAST:
        if what.startswith("opens"):
            open_mail(mail[addr])
    open_mail(mail["emily.chen@example.org"], GOOGLE_PROXY)

    # Mail arrives in the sender's mailbox; the daemon polls it.
    jose = mail["jose.garcia@example.net"]
    box.deliver(*reply_mail(jose, "José García",
                            "Yes, interested! Thursday afternoon works for me.\n\nJosé"))
    back = datetime.date.today() + datetime.timedelta(days=12)
    box.deliver(*ooo_mail(mail["sofia.rossi@example.net"], back))
    box.deliver(*dsn_mail(mail["kenji.sato@example.net"], bounce_domain))
    box.deliver(*arf_mail(mail["mehmet.yilmaz@example.net"], bounce_domain))

    juergen = mail["juergen.bauer@example.org"]
    if not juergen.unsubscribe:
        raise Failed("the mail to %s has no List-Unsubscribe" % juergen.to)
    status, _, body = http(juergen.unsubscribe, FIREFOX,
                           b"List-Unsubscribe=One-Click")
    if status != 200:
        raise Failed("one-click unsubscribe answered %s: %s" % (status, body[:200]))

    # A click within machine_click_s of the send (as the daemon recorded
    # it) counts as a scanner's: the people click after that, as people do.
    clickers = [addr for addr, _, w in CAST if "blog" in w or "team" in w or "apply" in w]
    latest = max(wait_for("%s's send recorded" % addr, lambda x=addr: sent_at(wb, x))
                 for addr in clickers)
    time.sleep(max(0.0, latest + machine_click_s + 1.0 - time.time()))
    for addr, _, what in CAST:
        if "blog" in what:
            click(mail[addr], "engineering blog")
        if "team" in what:
            click(mail[addr], "Meet the team")
    target = click(mail["zoe.martin@example.com"], "See the backend role")
    say("  (zoe's apply link redirects to %s)" % target)

    # The ATS sends a rejected finalist back for later roles.
    status, answer = ats_post(base + "/ats/events", secret, {
        "type": "candidate.rejected", "id": "demo-rejected-%d" % int(time.time()),
        "candidate": SILVER, "tags": ["silver-medallist", "backend"], "enroll": BACKEND})
    say("  %-27s rejected at the final round: the ATS posts candidate.rejected -> %s %s"
        % (SILVER["email"], status, answer))
    if status != 202 or json.loads(answer).get("enroll") != "enrolled":
        raise Failed("POST /ats/events: %s %s" % (status, answer))

    say("== waiting for warmbench to notice each of them (warmbench show, the ATS's files)")
    checks = [
        ("zoe.martin@example.com clicked apply",
         lambda: has_event(wb, "zoe.martin@example.com", "click", link="apply")),
        ("zoe.martin@example.com handed off at the ATS, signature verified",
         lambda: handoff_file(a.ats_dir, "zoe.martin@example.com", "click:apply")),
        ("jose.garcia@example.net replied, intent interested",
         lambda: has_event(wb, "jose.garcia@example.net", "reply", intent="interested")),
        ("jose.garcia@example.net handed off at the ATS, signature verified",
         lambda: handoff_file(a.ats_dir, "jose.garcia@example.net", "reply:interested")),
        ("jose.garcia@example.net's sequence ended as handed_off",
         lambda: state_of(wb, "jose.garcia@example.net", DATA)[0] == "handed_off"),
        ("sofia.rossi@example.net out-of-office recorded as auto_reply",
         lambda: has_event(wb, "sofia.rossi@example.net", "auto_reply")),
        ("kenji.sato@example.net hard bounce, sequence stopped",
         lambda: has_event(wb, "kenji.sato@example.net", "bounce", kind="hard")
         and state_of(wb, "kenji.sato@example.net", BACKEND) == ("stopped", "bounce")),
        ("juergen.bauer@example.org unsubscribed",
         lambda: has_event(wb, "juergen.bauer@example.org", "unsubscribe")),
        ("mehmet.yilmaz@example.net complaint, suppressed",
         lambda: has_event(wb, "mehmet.yilmaz@example.net", "complaint")
         and (wb.show("mehmet.yilmaz@example.net") or {}).get("suppressed")),
        ("emily.chen@example.org proxy open recorded as a machine open",
         lambda: has_event(wb, "emily.chen@example.org", "open", machine=True)),
        ("rui.santos@example.com enrolled from the ATS event",
         lambda: state_of(wb, SILVER["email"], BACKEND)[0] in ("active", "finished")),
        ("rui.santos@example.com mailed step 1",
         lambda: any(s.to == SILVER["email"] and s.step == 1 for s in load_mail(a.mail))),
    ]
    for addr, _, what in CAST:
        if what.startswith("opens"):
            checks.append(("%s opened" % addr, lambda x=addr: has_event(wb, x, "open")))
        for link in ("blog", "team"):
            if link in what:
                checks.append(("%s clicked %s" % (addr, link),
                               lambda x=addr, n=link: has_event(wb, x, "click", link=n)))
    deadline = time.monotonic() + WAIT_S
    for what, fn in checks:
        wait_for(what, fn, max(1, deadline - time.monotonic()))
        say("  ok  " + what)


def check(a):
    with open(a.stats) as f:
        seqs = json.load(f)["sequences"]
    total = {}
    for seq in seqs:
        for k, v in seq.items():
            if isinstance(v, int):
                total[k] = total.get(k, 0) + v
    want = ["sent", "opened", "clicked", "replied", "auto_replied", "bounced", "unsubscribed",
            "handed_off", "opened_machine"]
    # SPEC lists `complained` among stats' keys; this build's stats has no
    # such count yet (the complaint itself is checked through show in act).
    if "complained" in total:
        want.append("complained")
    else:
        say("  note: warmbench stats has no `complained` count (SPEC lists one)")
    missing = [k for k in want if not total.get(k)]
    if missing:
        raise Failed("warmbench stats counts none of: " + ", ".join(missing))
    say("  ok  stats: " + ", ".join("%s %d" % (k, total[k]) for k in want))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("act")
    p.add_argument("--mail", required=True)
    p.add_argument("--imap-state", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--warmbench", required=True)
    p.add_argument("--ats-dir", required=True)
    p = sub.add_parser("check")
    p.add_argument("--stats", required=True)
    a = ap.parse_args()
    try:
        (act if a.cmd == "act" else check)(a)
    except Failed as e:
        print("DEMO FAILED: %s" % e, file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
