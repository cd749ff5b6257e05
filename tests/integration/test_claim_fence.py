"""A daemon that still holds messages another daemon recovered from it
must not send them (issue 18, failover). Seen in test_failover under load:
the primary went away with a window statement's marks uncommitted; the
other daemon reconnected first and, not seeing the first one's lock on the
new primary, put its claimed messages back in the queue; the first one
then claimed them again and marked both its old and its new copies, which
carried the same Message-ID, so eight messages went out twice. Here the
same steps run as the daemons' own statements, in order, without timing:
a claim gives a requeued message a new Message-ID, and the mark of the
stale copy (the old Message-ID) is refused."""
import os

import harness

CLAIM = "SELECT id, message_id FROM wb_claim('ana', 10, 0, 0, '%s', 60, 'example.com') ORDER BY id"
MARK = ("SELECT id FROM wb_mark_sending(ARRAY[%d]::bigint[], ARRAY['%s'], ARRAY['x@corp.example'],"
        " ARRAY['s'], ARRAY[-1], '%s', 30)")


class ClaimFenceTest(harness.WbTestCase):
    def test_a_recovered_claim_cannot_be_marked_from_the_stale_copy(self):
        self.config()
        self.wb("migrate", check=0)
        rows = ["email,first_name,tags,consent"] + \
               ["f%d@corp.example,F%d,backend,opt_in" % (i, i) for i in range(3)]
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"),
                                        "\n".join(rows) + "\n"), check=0)
        self.wb("enroll", "nurture", check=0)
        self.sql("UPDATE enrollments SET next_due_at = now() - interval '1 minute'")
        # Daemon A claims; no session holds A's lock (it is cut off).
        held = [(int(i), m) for i, m in self.sql(CLAIM % "A")]
        self.assertEqual(len(held), 3)
        # Daemon B's recovery takes A for dead and requeues what it claimed.
        self.assertEqual(self.sql("SELECT requeued FROM wb_recover('B')"), [["3"]])
        # A comes back and claims again: the same rows, new Message-IDs.
        again = [(int(i), m) for i, m in self.sql(CLAIM % "A")]
        self.assertEqual([i for i, _ in again], [i for i, _ in held])
        for (_, old), (_, new) in zip(held, again):
            self.assertNotEqual(old, new)
        # The stale copies' marks are refused; the new copies' go through,
        # and a repeated mark of a new copy (its answer lost) is harmless.
        for (i, old), (_, new) in zip(held, again):
            self.assertEqual(self.sql(MARK % (i, old, "A")), [], "stale copy marked")
            self.assertEqual(self.sql(MARK % (i, new, "A")), [[str(i)]])
            self.assertEqual(self.sql(MARK % (i, new, "A")), [[str(i)]])
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE state = 'sending'"), "3")
