"""Manual steps (issue 15, SPEC "The sourcer's controls": "task" steps,
`tasks`, `done`, the task.due webhook) against the real daemon, PostgreSQL,
an SMTP server and the test ATS receiver (which checks every signature): a
mail → task → mail sequence makes one task and no mail for step 2, posts
one signed task.due per task (retried through a 503 under the same key),
and goes on to step 3 after `done`, `done --skip` or expiry (the test ages
the task's expires_at in the database, then NOTIFYs the daemon); an
unenrolled person's task is closed. Two daemons make each task once."""
import json
import os
import time

import harness
import test_handoff
from daemon_util import Daemon, Smtpd, wait_until

WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "start": "00:00", "end": "24:00", "timezone": "UTC"}
SEQ = {"id": "outreach", "sender": "ana", "audience": {"tags_any": ["x"]}, "window": WINDOW,
       "links": {"apply": "https://example.com/jobs/backend"},
       "stop_on": ["reply", "unsubscribe", "bounce"],
       "steps": [{"after": "0s", "subject": "Hi {{first_name}}", "text": "intro.txt"},
                 {"after": "0s",
                  "task": "Connect on LinkedIn with {{first_name}} at {{company|their company}}"
                          " ({{links.apply}})"},
                 {"after": "0s", "subject": "Re: Hi {{first_name}}", "text": "follow-up.txt",
                  "thread": True}]}
TEMPLATES = {"intro.txt": "Hello {{first_name}}\n", "follow-up.txt": "Again {{first_name}}\n"}
KEY = "tasks-and-ats-secret-0123456789"


class TasksTest(harness.WbTestCase):
    def setup_pool(self, n):
        self.smtp = Smtpd().start()
        self.addCleanup(self.smtp.cleanup)
        key = harness.write(os.path.join(self.tmp, "ats.key"), KEY + "\n", 0o600)
        self.ats = test_handoff.Receiver(self.tmp, key)
        self.addCleanup(self.ats.stop)
        url = "http://127.0.0.1:%d/hooks/tasks" % self.ats.port
        # No tasks.secret_file: the ATS key signs task.due; retry_base_s is the ATS's.
        self.config(sequences=[SEQ], templates=TEMPLATES,
                    smtp={"url": self.smtp.url, "tls": "off", "connections": 2,
                          "timeout_s": 10, "retry_base_s": 1},
                    ats={"webhook_url": self.ats.url(), "secret_file": "ats.key",
                         "retry_base_s": 1},
                    tasks={"webhook_url": url})
        self.wb("migrate", check=0)
        rows = ["email,first_name,last_name,company,tags,consent"] + \
               ["p%d@corp.example,P%d,L%d,Corp%d,x,opt_in" % (i, i, i, i) for i in range(n)]
        self.wb("import", harness.write(os.path.join(self.tmp, "pool.csv"), "\n".join(rows) + "\n"),
                check=0)
        self.wb("enroll", "outreach", check=0)

    def daemon(self, name="d", cfg_path=None, wait_ready=True):
        d = Daemon(cfg_path or self.cfg_path, os.path.join(self.tmp, name + ".log"))
        d.start(wait_ready=wait_ready)
        self.addCleanup(self.stopped_clean, d)
        return d

    def stopped_clean(self, d):
        """SIGTERM exits 0, and an ASan/UBSan build found nothing."""
        if d.alive():
            self.assertEqual(d.stop(), 0, d.text())
        self.assertIsNone(d.sanitizer_report())

    def task_of(self, email):
        return self.scalar("SELECT t.id FROM tasks t JOIN candidates c ON c.id = t.candidate_id "
                           f"WHERE c.email = '{email}'")

    def mails_to(self, email):
        return [m for m in self.smtp.messages() if m["rcpt_tos"][0] == email]

    def task_posts(self):
        return [r for r in self.ats.requests() if r["path"] == "/hooks/tasks"]

    def test_task_step_done_skip_expiry_and_webhook(self):
        self.setup_pool(4)
        self.ats.set(status=503, count=1)
        self.daemon()
        wait_until(lambda: self.scalar("SELECT count(*) FROM tasks WHERE text IS NOT NULL") == "4",
                   20, "four tasks")
        wait_until(lambda: self.smtp.count() >= 4, 10, "step 1 to everyone")
        time.sleep(1)
        self.assertEqual(self.smtp.count(), 4, "a task step sent mail")
        self.assertEqual(self.scalar("SELECT count(*) FROM messages WHERE step <> 1"), "0")
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments "
                                     "WHERE step = 2 AND next_due_at IS NULL"), "4")

        listed = json.loads(self.wb("tasks", "--json", check=0).stdout)
        self.assertEqual(len(listed), 4)
        by_email = {t["email"]: t for t in listed}
        self.assertEqual(by_email["p1@corp.example"]["text"],
                         "Connect on LinkedIn with P1 at Corp1 (https://example.com/jobs/backend)")
        self.assertEqual((by_email["p1@corp.example"]["sender"], by_email["p1@corp.example"]["step"],
                          by_email["p1@corp.example"]["name"]), ("ana", 2, "P1 L1"))
        table = self.wb("tasks", "--sender", "ana", check=0).stdout
        self.assertTrue(table.startswith("ID "), table)
        self.assertIn("Connect on LinkedIn with P0 at Corp0", table)
        self.assertIn("no sender", self.wb("tasks", "--sender", "bob", check=64).stderr)

        # One signed task.due per task; the first answered 503 and came again, same key.
        wait_until(lambda: len({r["headers"]["Idempotency-Key"] for r in self.task_posts()
                                if r["answer"] == 200}) == 4, 20, "four task.due delivered")
        posts = self.task_posts()
        self.assertTrue(all(r["sig_ok"] for r in posts), posts)
        self.assertEqual(posts[0]["answer"], 503)
        first_key = posts[0]["headers"]["Idempotency-Key"]
        self.assertEqual([r["answer"] for r in posts
                          if r["headers"]["Idempotency-Key"] == first_key], [503, 200])
        body = next(json.loads(r["body"]) for r in posts
                    if json.loads(r["body"])["candidate"]["email"] == "p1@corp.example")
        self.assertEqual(list(body), ["type", "id", "occurred_at", "task", "candidate",
                                      "sequence", "step", "sender"])
        self.assertEqual((body["type"], body["sequence"], body["step"], body["sender"]),
                         ("task.due", "outreach", 2, {"id": "ana", "email": "ana@example.com"}))
        self.assertEqual(body["task"]["id"], int(self.task_of("p1@corp.example")))
        self.assertEqual(body["task"]["text"], by_email["p1@corp.example"]["text"])
        self.assertEqual(self.scalar("SELECT count(*) FROM handoffs WHERE target = 'tasks' "
                                     "AND state = 'delivered'"), "4")
        self.assertEqual(self.wb("webhooks", check=0).stdout.count("task.due"), 4)

        # An unenrolled person's task is closed; `tasks` no longer lists it.
        self.wb("unenroll", "p3@corp.example", check=0)
        self.assertEqual(len(json.loads(self.wb("tasks", "--json", check=0).stdout)), 3)
        gone = self.task_of("p3@corp.example")
        self.assertIn("enrollment ended", self.wb("done", gone, check=65).stderr)

        # done: step 3 goes, threaded on step 1; the task cannot be done twice.
        t0 = self.task_of("p0@corp.example")
        self.assertIn("done", self.wb("done", t0, check=0).stdout)
        wait_until(lambda: len(self.mails_to("p0@corp.example")) == 2, 10, "p0's step 3")
        step3 = self.mails_to("p0@corp.example")[1]["msg"]
        self.assertEqual(step3["Subject"], "Re: Hi P0")
        self.assertEqual(step3["In-Reply-To"], self.mails_to("p0@corp.example")[0]["msg"]["Message-ID"])
        self.assertIn("closed already (done)", self.wb("done", t0, check=65).stderr)
        self.assertIn("no task 999999", self.wb("done", "999999", check=65).stderr)
        self.wb("done", "abc", check=64)

        # done --skip goes on too.
        t1 = self.task_of("p1@corp.example")
        self.assertIn("skipped", self.wb("done", t1, "--skip", check=0).stdout)
        wait_until(lambda: len(self.mails_to("p1@corp.example")) == 2, 10, "p1's step 3")

        # Expiry: the task is aged in the database; the daemon's sweep skips it.
        t2 = self.task_of("p2@corp.example")
        self.sql(f"UPDATE tasks SET expires_at = now() - interval '1 second' WHERE id = {t2};"
                 " NOTIFY wb_enrollments")
        wait_until(lambda: len(self.mails_to("p2@corp.example")) == 2, 10, "p2's step 3")
        self.assertEqual(self.sql("SELECT t.state, t.close_reason FROM tasks t "
                                  "JOIN candidates c ON c.id = t.candidate_id ORDER BY c.email"),
                         [["done", "done"], ["skipped", "skipped"], ["skipped", "expired"],
                          ["skipped", "enrollment unenrolled"]])
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments WHERE state = 'finished'"),
                         "3")
        self.assertIn("no open tasks", self.wb("tasks", check=0).stdout)
        self.assertEqual(self.smtp.count(), 7)

        # Erasure takes the task (its text names the person) and its webhook's payload.
        self.wb("forget", "p1@corp.example", check=0)
        self.assertEqual(self.scalar("SELECT count(*) FROM tasks"), "3")
        self.assertEqual(self.scalar("SELECT count(*) FROM handoffs WHERE target = 'tasks' "
                                     "AND payload::text LIKE '%P1%'"), "0")

    def test_two_daemons_make_each_task_once(self):
        self.setup_pool(60)
        # Each listens on its own tracking port, as two daemons on one host must.
        other = json.load(open(self.cfg_path))
        other["http"]["listen"] = "127.0.0.1:%d" % harness.free_port()
        other_path = harness.write(os.path.join(self.tmp, "warmbench-2.json"), json.dumps(other))
        a = self.daemon("a", wait_ready=False)
        b = self.daemon("b", cfg_path=other_path, wait_ready=False)
        a.wait_log("ready:")
        b.wait_log("ready:")
        wait_until(lambda: self.scalar("SELECT count(*) FROM tasks WHERE text IS NOT NULL") == "60",
                   30, "sixty tasks")
        wait_until(lambda: len(self.task_posts()) >= 60, 20, "sixty task.due")
        time.sleep(1)
        self.assertEqual(self.scalar("SELECT count(*) || '/' || count(DISTINCT enrollment_id) "
                                     "FROM tasks"), "60/60")
        self.assertEqual(self.scalar("SELECT count(*) FROM handoffs WHERE target = 'tasks'"), "60")
        keys = [r["headers"]["Idempotency-Key"] for r in self.task_posts()]
        self.assertEqual((len(keys), len(set(keys))), (60, 60))
        self.assertEqual(self.smtp.count(), 60)
        self.assertEqual(self.scalar("SELECT count(*) FROM enrollments WHERE step = 2"), "60")

    def test_a_stopped_daemons_unpublished_task_is_taken_over_once(self):
        # As if a daemon claimed p0's task step, then died before publishing it:
        # step 1 sent, the task made under a lease that has run out, no text.
        self.setup_pool(1)
        self.sql("UPDATE enrollments SET step = 1, next_due_at = now()")
        self.assertEqual(self.sql("SELECT count(*) FROM wb_task_claim('ghost', 10, 7, 0)"),
                         [["1"]])
        self.assertEqual(self.scalar("SELECT count(*) FROM tasks WHERE text IS NULL"), "1")
        self.daemon()
        wait_until(lambda: self.scalar("SELECT text FROM tasks") is not None
                   and len(self.task_posts()) == 1, 15, "the task published")
        time.sleep(1.5)
        self.assertEqual(self.sql("SELECT text, render_owner IS NULL FROM tasks"),
                         [["Connect on LinkedIn with P0 at Corp0 (https://example.com/jobs/backend)",
                           "t"]])
        self.assertEqual(len(self.task_posts()), 1)
        self.assertEqual(self.smtp.count(), 0, "step 1 was sent by the one that died")

    def test_check_config_rejects_a_task_with_mail_parts_or_on_step_1(self):
        both = dict(SEQ, steps=[SEQ["steps"][0], dict(SEQ["steps"][1], subject="x"),
                                SEQ["steps"][2]])
        first = dict(SEQ, id="first", steps=[SEQ["steps"][1]])
        self.config(sequences=[both, first], templates=TEMPLATES)
        p = self.wb("check-config", check=78)
        out = p.stdout + p.stderr
        self.assertIn("outreach.json", out)
        self.assertIn('either mail parts or a "task"', out)
        self.assertIn('step 1 cannot be a "task"', out)
