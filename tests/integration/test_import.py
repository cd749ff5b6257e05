"""warmbench import: counts, per-line rejections, dedupe, merges, suppression."""
import json
import os

from harness import ROOT, WbTestCase

POOL = os.path.join(ROOT, "config", "pool.csv")
POOL_ROWS = 50


class ImportTest(WbTestCase):
    def setUp(self):
        super().setUp()
        self.config()
        self.wb("migrate", check=0)

    def csv(self, name, data):
        """Writes data (str or bytes) to a file in self.tmp; returns its path."""
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    def report_lines(self, p):
        return [line for line in p.stderr.splitlines() if line]

    def candidate(self, email, cols):
        row = self.sql(f"SELECT {cols} FROM candidates WHERE lower(email) = lower('{email}')")
        return row[0] if row else None

    def test_pool_imports_then_reimport_updates(self):
        p = self.wb("import", POOL, check=0)
        self.assertEqual(p.stdout.strip().splitlines()[-1], f"imported {POOL_ROWS}, updated 0, rejected 0")
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"), str(POOL_ROWS))
        p = self.wb("import", POOL, check=0)
        self.assertEqual(p.stdout.strip().splitlines()[-1], f"imported 0, updated {POOL_ROWS}, rejected 0")
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"), str(POOL_ROWS))
        # UTF-8 names, zones, ;-lists and extra columns land where they belong.
        first, last, tz, tags, skills, consent, attrs = self.candidate(
            "zoe.martin@example.com", "first_name, last_name, timezone, tags, skills, consent, attrs")
        self.assertEqual((first, last, tz), ("Zoë", "Martin", "Europe/Paris"))
        self.assertEqual(tags, "{backend,silver-medallist}")
        self.assertEqual(skills, "{go,kafka,postgresql}")
        self.assertEqual(consent, "opt_in")
        self.assertEqual(json.loads(attrs), {"github": "zoemartin", "years_experience": "9"})
        self.assertEqual(self.candidate("li.wei@example.org", "first_name, last_name"), ["伟", "李"])
        # An empty extra cell adds no key; empty consent is no consent.
        attrs, consent, at = self.candidate("olivia.brown@example.com", "attrs, consent, consent_at")
        self.assertEqual(json.loads(attrs), {"years_experience": "12"})
        self.assertEqual(self.candidate("fatima.zahra@example.com", "consent IS NULL, consent_at IS NULL"),
                         ["t", "t"])

    def test_added_at_dates_new_rows_only(self):
        """The added_at column dates a new person's arrival in the pool (the
        growth chart, new in 30/90 days); bad or future dates are rejected by
        line; a person already stored keeps the date they arrived."""
        self.wb("import", self.csv("first.csv", "email\nkept@example.com\n"), check=0)
        kept = self.candidate("kept@example.com", "created_at")[0]
        p = self.wb("import", self.csv("dated.csv",
                    "email,added_at\n"
                    "day@example.com,2026-09-28\n"
                    "time@example.com, 2026-10-05T09:30:00+02:00 \n"
                    "none@example.com,\n"
                    "kept@example.com,2020-01-01\n"
                    "bad@example.com,28/09/2026\n"
                    "feb@example.com,2025-02-29\n"
                    "future@example.com,2999-01-01\n"), check=0)
        self.assertEqual(p.stdout.strip().splitlines()[-1], "imported 3, updated 1, rejected 3")
        self.assertIn(":6: invalid added_at \"28/09/2026\" (expected YYYY-MM-DD or an RFC 3339 "
                      "time such as 2026-10-05T09:30:00Z)", p.stderr)
        self.assertIn(":7: invalid added_at \"2025-02-29\"", p.stderr)
        self.assertIn(":8: added_at \"2999-01-01\" is in the future", p.stderr)
        utc = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
        self.assertEqual(self.candidate("day@example.com", utc)[0], "2026-09-28 00:00")
        self.assertEqual(self.candidate("time@example.com", utc)[0], "2026-10-05 07:30")
        self.assertEqual(self.candidate("none@example.com", "created_at > now() - interval '1 hour'")[0], "t")
        self.assertEqual(self.candidate("kept@example.com", "created_at")[0], kept)
        self.assertIsNone(self.candidate("bad@example.com", "id"))
        self.assertEqual(self.candidate("day@example.com", "attrs")[0], "{}")

    def test_hostile_file(self):
        self.sql("INSERT INTO suppressions (email, email_hash, reason)"
                 " VALUES ('sup@example.com', wb_email_hash('sup@example.com'), 'manual')")
        ten_kb = "k" * 10240
        over = "o" * 70000
        rows = [
            "\ufeffemail,first_name,last_name,timezone,consent,tags,notes",    # 1
            'ok1@example.com,Ann,One,Europe/Paris,opt_in,backend,"two\nlines"',  # 2-3
            "not-an-email,Bad,Email,,,,",                                      # 4
            "dup@example.com,First,Dup,,opt_in,,first",                        # 5
            "a b@example.com,Space,In,,,,",                                    # 6
            "DUP@Example.com,Second,Dup,,legitimate_interest,data,second",     # 7
            "short@example.com,Only,Three",                                    # 8
            "tz@example.com,Tim,Zone,Mars/Olympus,,,",                         # 9
            f"big@example.com,Big,Field,europe/berlin,,,{ten_kb}",             # 10
            f"huge@example.com,Huge,Field,,,,{over}",                          # 11
            "BADUTF8",                                                         # 12
            "consent@example.com,Con,Sent,,yes,,",                             # 13
            "SUP@example.com,Sup,Pressed,,opt_in,,",                           # 14
            ",No,Email,,,,",                                                   # 15
            "nodot@localhost,No,Dot,,,,",                                      # 16
            'quote@example.com,"Say ""hi""",Q,,,"a,b;c",x',                   # 17
            'open@example.com,"never closed,,,,,\n',                          # 18-19
        ]
        data = "\r\n".join(rows).encode("utf-8").replace(
            b"BADUTF8", b"badutf8@example.com,B\xffd,Bytes,,,,")
        path = self.csv("hostile.csv", data)
        p = self.wb("import", path, check=0)
        self.assertEqual(self.report_lines(p), [
            f'{path}:4: invalid email address "not-an-email"',
            f"{path}:5: duplicate of line 7, later row wins",
            f'{path}:6: invalid email address "a b@example.com"',
            f"{path}:8: expected 7 fields, found 3",
            f'{path}:9: unknown time zone "Mars/Olympus"',
            f"{path}:11: field 7 (notes) is longer than 65536 bytes",
            f"{path}:12: invalid UTF-8 in field 2 (first_name)",
            f'{path}:13: invalid consent "yes" (expected opt_in, legitimate_interest or empty)',
            f"{path}:14: suppressed",
            f"{path}:15: missing email address",
            f'{path}:16: invalid email address "nodot@localhost"',
            f"{path}:18: unterminated quoted field",
        ])
        self.assertEqual(p.stdout.splitlines(), [
            "skipped 1 duplicate row (the later row for an address wins)",
            "imported 4, updated 0, rejected 11",
        ])
        self.assertEqual(self.sql("SELECT lower(email) FROM candidates ORDER BY 1"),
                         [["big@example.com"], ["dup@example.com"], ["ok1@example.com"],
                          ["quote@example.com"]])
        self.assertEqual(self.scalar("SELECT attrs->>'notes' = E'two\\nlines' FROM candidates"
                                     " WHERE email = 'ok1@example.com'"), "t")
        self.assertEqual(self.candidate("dup@example.com", "email, first_name, consent, tags"),
                         ["DUP@Example.com", "Second", "legitimate_interest", "{data}"])
        self.assertEqual(self.candidate("big@example.com", "length(attrs->>'notes'), timezone"),
                         [str(len(ten_kb)), "Europe/Berlin"])
        self.assertEqual(self.candidate("quote@example.com", "first_name, tags"),
                         ['Say "hi"', '{"a,b",c}'])

    def test_suppressed_not_readded_or_updated(self):
        self.wb("import", POOL, check=0)
        # One by address, one only by hash (as after forget).
        self.sql("INSERT INTO suppressions (email, email_hash, reason) VALUES"
                 " ('zoe.martin@example.com', wb_email_hash('zoe.martin@example.com'), 'unsubscribe'),"
                 " (NULL, wb_email_hash('gone@example.com'), 'forget')")
        path = self.csv("again.csv", "email,first_name\nZoe.Martin@example.com,Changed\n"
                                     "GONE@example.com,Gone\nnew@example.com,New\n")
        p = self.wb("import", path, check=0)
        self.assertEqual(self.report_lines(p), [f"{path}:2: suppressed", f"{path}:3: suppressed"])
        self.assertEqual(p.stdout.strip(), "imported 1, updated 0, rejected 2")
        self.assertEqual(self.candidate("zoe.martin@example.com", "first_name"), ["Zoë"])
        self.assertIsNone(self.candidate("gone@example.com", "id"))

    def test_tags_attrs_merge_and_empty_cells_keep_values(self):
        self.wb("import", POOL, "--tag", "pool-2026", check=0)
        path = self.csv("more.csv", "email,first_name,title,tags,consent,portfolio\n"
                                    "FATIMA.ZAHRA@example.com,,Staff ML Researcher,ml;nlp,opt_in,"
                                    "https://example.net/fz\n")
        p = self.wb("import", path, "--tag", "event-2026", "--tag", "ml", check=0)
        self.assertEqual(p.stdout.strip(), "imported 0, updated 1, rejected 0")
        first, title, tags, attrs, consent, at_set = self.candidate(
            "fatima.zahra@example.com",
            "first_name, title, tags, attrs, consent, consent_at IS NOT NULL")
        self.assertEqual((first, title), ("Fatima", "Staff ML Researcher"))
        self.assertEqual(tags, "{event-2026,ml,nlp,pool-2026}")
        self.assertEqual(json.loads(attrs), {"github": "fzahra", "years_experience": "4",
                                             "portfolio": "https://example.net/fz"})
        self.assertEqual((consent, at_set), ("opt_in", "t"))
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates WHERE 'pool-2026' = ANY (tags)"),
                         str(POOL_ROWS))

    def test_header_without_email_is_a_data_error(self):
        path = self.csv("noemail.csv", "first_name,last_name\nAnn,One\n")
        p = self.wb("import", path, check=65)
        self.assertEqual(self.report_lines(p), [f"{path}:1: the header has no email column"])
        self.assertEqual(self.scalar("SELECT count(*) FROM candidates"), "0")

    def test_every_row_rejected_is_a_data_error(self):
        path = self.csv("bad.csv", "email,timezone\nnope,UTC\nx@example.com,Nowhere/City\n")
        p = self.wb("import", path, check=65)
        self.assertEqual(p.stdout.strip(), "imported 0, updated 0, rejected 2")
        self.assertEqual(len(self.report_lines(p)), 2)

    def test_header_only_is_fine(self):
        path = self.csv("empty.csv", "email,first_name\n")
        p = self.wb("import", path, check=0)
        self.assertEqual(p.stdout.strip(), "imported 0, updated 0, rejected 0")

    def test_missing_file(self):
        p = self.wb("import", os.path.join(self.tmp, "nope.csv"), check=1)
        self.assertIn("nope.csv", p.stderr)

    def test_control_characters_in_cells_become_spaces(self):
        """Issue 18 defect 6: show and pool print these cells."""
        path = self.csv("c1.csv", b"email,first_name,last_name,team\n"
                                  b"ann@example.com,Ann\x1b[31mie,Lee\xc2\x9b2J,a\x07b\ttab\n")
        self.wb("import", path, check=0)
        row = self.sql("SELECT first_name, last_name, attrs->>'team' FROM candidates")[0]
        self.assertEqual(row, ["Ann [31mie", "Lee 2J", "a b\ttab"])

    def test_nul_bytes_and_control_characters(self):
        path = self.csv("ctl.csv", b"email,first_name\n"
                                   b"nul@example.com,A\x00B\n"
                                   b"esc\x1b[31m@example.com,Esc\n"
                                   b"fine@example.com,Fine\n")
        p = self.wb("import", path, check=0)
        # A cell cannot reach the operator's terminal with control characters.
        self.assertEqual(self.report_lines(p), [
            f"{path}:2: NUL byte in field 2 (first_name)",
            f'{path}:3: invalid email address "esc [31m@example.com"',
        ])
        self.assertEqual(p.stdout.strip(), "imported 1, updated 0, rejected 2")
