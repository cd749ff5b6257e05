"""Reply intent through the real path: 30 replies written after the
classifier was frozen (tests/corpus/unseen.json, six languages, none in the
training or held-out corpus) land in a private Dovecot as mail clients send
them (plain with a quote, HTML-only, quoted-printable, ISO-8859-1,
multipart/alternative), the IMAP poller (drv_mailbox) reads them, and the
intent is read back from each reply event. Prints every verdict; holds
every unsubscribe and an accuracy floor of 0.8. Measured when the set was
written (commit 9dfe65a's classifier): 25 of 30 (0.83), 6 of 6
unsubscribes, short of issue 19's 0.9 per language that the held-out split
shows (0.91 to 1.0): this set was written after the rules and model were
frozen and nothing was tuned on it, so it is the fairer figure. Raise the
floor when the classifier gets better on it; do not tune on it."""
import json
import os
import quopri

import imapd
import test_mailbox

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNSEEN = os.path.join(ROOT, "tests", "corpus", "unseen.json")
QUOTED = ("On Tue, Mar 5, 2024 at 9:12 AM Ana Ruiz <ana@example.com> wrote:\n"
          "> Would you be interested in a backend role at Example?\n"
          "> Unsubscribe: https://go.example.com/u/AbCdEf\n")
HTML_QUOTE = ('<div class="gmail_quote"><div class="gmail_attr">On Tue, Mar 5, 2024 Ana Ruiz '
              '&lt;ana@example.com&gt; wrote:</div><blockquote>Would you be interested? '
              'Unsubscribe: https://go.example.com/u/AbCdEf</blockquote></div>')


def html_of(text):
    esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<div dir="ltr">{esc}</div><br>{HTML_QUOTE}'


def mail(r, to_msgid):
    """The raw message for reply r in its form."""
    head = [("From", f"{r['id']}@corp.example"), ("To", "ana@example.com"),
            ("Subject", "Re: backend role"), ("In-Reply-To", f"<{to_msgid}>"), ("MIME-Version", "1.0")]
    plain = r["text"] + "\n\n" + QUOTED
    form = r["form"]
    if form == "plain":
        return imapd.message(head + [("Content-Type", "text/plain; charset=utf-8")], plain)
    if form == "html":
        return imapd.message(head + [("Content-Type", "text/html; charset=utf-8")], html_of(r["text"]))
    if form == "qp":
        body = quopri.encodestring(plain.encode("utf-8")).decode("ascii")
        return imapd.message(head + [("Content-Type", "text/plain; charset=utf-8"),
                                     ("Content-Transfer-Encoding", "quoted-printable")], body)
    if form == "latin1":
        lines = [f"{k}: {v}" for k, v in head + [("Content-Type", "text/plain; charset=iso-8859-1"),
                                                 ("Content-Transfer-Encoding", "8bit")]]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + plain.replace("\n", "\r\n").encode(
            "iso-8859-1", errors="replace")
    body = ("--ALT\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
            + quopri.encodestring(plain.encode("utf-8")).decode("ascii")
            + "\n--ALT\nContent-Type: text/html; charset=utf-8\n\n" + html_of(r["text"]) + "\n--ALT--\n")
    return imapd.message(head + [("Content-Type", 'multipart/alternative; boundary="ALT"')], body)


class IntentEndToEndTest(test_mailbox.MailboxTest):
    # The mailbox's own tests run in test_mailbox, not again here.
    test_reply_ooo_bounce_garbage_huge_and_restart = None
    test_stop_mid_poll_then_restart_records_each_once = None
    test_uidvalidity_change_starts_over = None
    test_unreachable_server_keeps_polling = None

    def test_unseen_replies_through_dovecot(self):
        with open(UNSEEN, encoding="utf-8") as f:
            replies = json.load(f)
        people = []
        for r in replies:
            p = self.person(r["id"].replace("-", ""))
            people.append(p)
            self.imap.deliver(mail(r, p[3]))
        poller = self.start_poller()
        self.wait_uid(len(replies), poller)
        self.stop_poller(poller)

        right, unsub, unsub_right, lines = 0, 0, 0, []
        for r, p in zip(replies, people):
            ev = self.events(p[2])
            self.assertEqual([t for t, _ in ev], ["reply"], r["id"])
            d = json.loads(ev[0][1])
            got, conf = d["intent"], d.get("confidence")
            if conf is not None:  # the model decided: its probability
                self.assertTrue(0 < conf <= 1, d)
            right += got == r["intent"]
            if r["intent"] == "unsubscribe":
                unsub += 1
                unsub_right += got == "unsubscribe"
                if got == "unsubscribe":  # and the person is suppressed
                    self.assertEqual(self.scalar(
                        "SELECT count(*) FROM suppressions WHERE email = "
                        f"'{r['id'].replace('-', '')}@corp.example'"), "1")
            lines.append(f"  {r['id']} {r['lang']} {r['form']:<11} want {r['intent']:<14} got {got:<14}"
                         f" {'' if conf is None else f'p={conf:.2f}'}{'' if got == r['intent'] else '  MISS'}")
        print(f"\nunseen replies through Dovecot: {right}/{len(replies)} right, "
              f"unsubscribe {unsub_right}/{unsub}\n" + "\n".join(lines))

        # show carries the intent (and the confidence when the model gave one).
        shown = json.loads(self.wb("show", "u01@corp.example", "--json", check=0).stdout)
        detail = [e["detail"] for e in shown["timeline"] if e["type"] == "reply"][0]
        self.assertIn("intent", detail)

        self.assertEqual(unsub_right, unsub)
        self.assertGreaterEqual(right, 0.8 * len(replies))


if __name__ == "__main__":
    import unittest
    unittest.main()
