"""warmbench report --html: the figures of a database seeded by hand appear
in the page, the page references nothing outside itself, hostile strings
from the database are escaped, --since bounds what is counted, the file is
written atomically, and headless Chromium renders it (a non-blank
screenshot, no console message)."""
import datetime
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

from harness import WbTestCase

HOSTILE_SEQ = "<img src=x onerror=alert(1)>"
HOSTILE_TAG = "<script>alert('tag')</script>"

# Monday 01:30 UTC of last week (10:30 in Tokyo), as a timestamptz.
MON = "((date_trunc('week', (now() - interval '7 days') AT TIME ZONE 'UTC')" \
      " + interval '1 hour 30 minutes') AT TIME ZONE 'UTC')"
# A Wednesday 05:30 UTC over a year ago.
OLD = "((date_trunc('week', (now() - interval '400 days') AT TIME ZONE 'UTC')" \
      " + interval '2 days 5 hours 30 minutes') AT TIME ZONE 'UTC')"

# Candidates 1-4 in Tokyo, 5-6 in a zone PostgreSQL does not know, 7-10 none.
# nurture: 1-8 enrolled now, step 1 sent (variant A to even, B to odd),
# step 2 sent to 1-5; 10 enrolled, sent and opened 400 days ago.
SEED = f"""
INSERT INTO candidates (id, email, timezone, tags, created_at)
SELECT i, 'p' || i || '@example.com',
       CASE WHEN i <= 4 THEN 'Asia/Tokyo' WHEN i <= 6 THEN 'Not/AZone' END,
       CASE WHEN i = 1 THEN ARRAY['backend', $${HOSTILE_TAG}$$, 'küche-日本'] ELSE ARRAY['backend'] END,
       now() - make_interval(days => i * 40)
FROM generate_series(1, 10) i;
INSERT INTO sequences (id, content_hash, definition) VALUES ($${HOSTILE_SEQ}$$, 'x', '{{}}');
INSERT INTO enrollments (id, candidate_id, sequence_id, step, created_at)
SELECT i, i, 'nurture', 1, now() FROM generate_series(1, 8) i
UNION ALL SELECT 10, 10, 'nurture', 1, now() - interval '400 days'
UNION ALL SELECT 9, 9, $${HOSTILE_SEQ}$$, 1, now();
INSERT INTO messages (id, enrollment_id, candidate_id, sequence_id, step, variant, sender, state,
                      created_at, sent_at)
SELECT i, i, i, 'nurture', 1, i % 2, 'ana', 'sent', now() - interval '5 days', now() - interval '5 days'
FROM generate_series(1, 8) i
UNION ALL SELECT 100 + i, i, i, 'nurture', 2, NULL, 'ana', 'sent', now(), now()
FROM generate_series(1, 5) i
UNION ALL SELECT 10, 10, 10, 'nurture', 1, NULL, 'ana', 'sent', {OLD}, {OLD}
UNION ALL SELECT 9, 9, 9, $${HOSTILE_SEQ}$$, 1, NULL, 'ana', 'sent', now(), now();
INSERT INTO events (candidate_id, message_id, enrollment_id, sequence_id, step, type, machine, at)
SELECT i, i, i, 'nurture', 1, 'open', false, {MON} FROM generate_series(1, 5) i
UNION ALL SELECT 6, 6, 6, 'nurture', 1, 'open', true, {MON}
UNION ALL SELECT i, i, i, 'nurture', 1, 'click', false, {MON} + interval '1 hour'
  FROM generate_series(1, 3) i
UNION ALL SELECT i, i, i, 'nurture', 1, 'reply', false, {MON} + interval '2 hours'
  FROM generate_series(1, 2) i
UNION ALL SELECT 1, 101, 1, 'nurture', 2, 'open', false, {MON} + interval '3 hours'
UNION ALL SELECT 1, 1, 1, 'nurture', 1, 'handoff', false, {MON} + interval '2 hours'
UNION ALL SELECT 7, 7, 7, 'nurture', 1, 'bounce', false, {MON}
UNION ALL SELECT 8, 8, 8, 'nurture', 1, 'unsubscribe', false, {MON}
UNION ALL SELECT 8, 8, 8, 'nurture', 1, 'complaint', false, {MON} + interval '1 hour'
UNION ALL SELECT 10, 10, 10, 'nurture', 1, 'open', false, {OLD};
-- Whatever the events made of the scores: only candidate 1 is ready now.
UPDATE candidates SET score = CASE WHEN id = 1 THEN 50 ELSE 0 END, score_at = NULL,
       last_engaged_at = CASE WHEN id = 1 THEN now() END;
"""

FUNNEL = ["enrolled", "sent", "opened", "clicked", "replied", "handed_off", "bounced",
          "unsubscribed", "complained"]
ALL_TIME = [9, 9, 6, 3, 2, 1, 1, 1, 1]
LAST_30_DAYS = [8, 8, 5, 3, 2, 1, 1, 1, 1]

EXTERNAL = [r'src\s*=\s*"?\s*http', r"<script", r"@import", r"url\(\s*['\"]?\s*http",
            r'href\s*=\s*"?\s*http', r"<link\b", r"<iframe", r"<img\b"]


def funnel_row(seq, counts):
    return (f'<tr><td class="l">{seq}</td>'
            + "".join(f"<td>{n}</td>" for n in counts) + "</tr>")


def ztest_p(x1, n1, x2, n2):
    p = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


class ReportBase(WbTestCase):
    def setUp(self):
        super().setUp()
        self.config()
        self.wb("migrate", check=0)
        self.wb("stats", check=0)  # stores the configured sequences
        self.sql(SEED)
        self.out = os.path.join(self.tmp, "out", "report.html")
        os.makedirs(os.path.dirname(self.out))

    def report(self, *args, check=0):
        p = self.wb("report", "--html", self.out, *args, check=check)
        if check == 0:
            with open(self.out, encoding="utf-8") as f:
                return f.read()
        return p


class ReportContentTest(ReportBase):
    def test_funnel_figures_agree_with_stats(self):
        html = self.report()
        self.assertIn(funnel_row("nurture", ALL_TIME), html)
        stats = {s["id"]: s for s in json.loads(self.wb("stats", "--json", check=0).stdout)["sequences"]}
        self.assertEqual([stats["nurture"][k] for k in FUNNEL], ALL_TIME)
        # The funnel chart carries the same figures.
        for key, n in zip(FUNNEL[:6], ALL_TIME):
            self.assertIn(f"<title>{key.replace('_', ' ')}: {n}</title>", html)

    def test_nothing_external(self):
        html = self.report()
        for pattern in EXTERNAL:
            self.assertIsNone(re.search(pattern, html, re.I), pattern)
        self.assertNotIn("http://", html)
        self.assertNotIn("https://", html)
        self.assertIn("<style>", html)
        self.assertIn("<svg", html)

    def test_hostile_strings_are_escaped(self):
        html = self.report()
        self.assertNotIn(HOSTILE_SEQ, html)
        self.assertNotIn(HOSTILE_TAG, html)
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;", html)
        self.assertIn("&lt;script&gt;alert(&#39;tag&#39;)&lt;/script&gt;", html)
        self.assertIn(funnel_row("&lt;img src=x onerror=alert(1)&gt;", [1, 1, 0, 0, 0, 0, 0, 0, 0]), html)
        self.assertIn("küche-日本", html)

    def test_steps_variants_growth_heatmap(self):
        html = self.report()
        # Step 1: 9 people sent to (8 now, 1 long ago); 6 opened.
        self.assertIn("<tr><td>1</td><td>9</td>", html)
        self.assertIn("66.7%</td>", html)
        # Variants of step 1: A to 2, 4, 6, 8; B to 1, 3, 5, 7.
        a = '<tr><td class="l">nurture</td><td>1</td><td>A</td><td>4</td>'
        b = '<tr><td class="l">nurture</td><td>1</td><td>B</td><td>4</td>'
        self.assertIn(a, html)
        self.assertIn(b, html)
        row_b = html[html.index(b):html.index("</tr>", html.index(b))]
        self.assertIn("75.0%", row_b)  # B opened: 1, 3, 5
        self.assertIn("<td>%.3f</td>" % ztest_p(3, 4, 2, 4), row_b)
        self.assertIn("<td>%.3f</td>" % ztest_p(2, 4, 1, 4), row_b)
        self.assertTrue(row_b.endswith("<td>1.000</td>"), row_b)  # replies: 1 of 4 each
        # The same figures as `warmbench stats`.
        stats = json.loads(self.wb("stats", "--json", check=0).stdout)
        step1 = [st for s in stats["sequences"] if s["id"] == "nurture"
                 for st in s["steps"] if st["step"] == 1][0]
        self.assertEqual([[v[k] for k in ("variant", "sent", "opened", "clicked", "replied")]
                          for v in step1["variants"]], [[0, 4, 2, 1, 1], [1, 4, 3, 2, 1]])
        self.assertIn("<td>%.3f</td>" % step1["variants"][1]["p_value"], row_b)
        # Growth: the last week's size is today's pool (10, nobody suppressed).
        self.assertRegex(html, r"<td>\d+</td><td>\d+</td><td>10</td></tr>\n</table>\n<h2>When")
        # Heat map, in each candidate's zone: Tokyo is UTC+9; an unknown zone is UTC.
        self.assertIn("<title>Mon 10:00-10:59: 4</title>", html)
        self.assertIn("<title>Mon 11:00-11:59: 3</title>", html)
        self.assertIn("<title>Mon 12:00-12:59: 2</title>", html)
        self.assertIn("<title>Mon 13:00-13:59: 1</title>", html)
        self.assertIn("<title>Mon 01:00-01:59: 1</title>", html)
        self.assertIn("<title>Wed 05:00-05:59: 1</title>", html)
        self.assertIn("12 human opens, clicks and replies", html)

    def test_since_bounds_what_is_counted(self):
        since = (datetime.datetime.now(datetime.timezone.utc).date()
                 - datetime.timedelta(days=30)).isoformat()
        html = self.report("--since", since)
        self.assertIn(funnel_row("nurture", LAST_30_DAYS), html)
        self.assertIn(f"since {since} 00:00 UTC", html)
        self.assertIn("<title>Wed 05:00-05:59: 0</title>", html)
        self.assertIn("11 human opens, clicks and replies", html)

    def test_pool_section(self):
        html = self.report()
        self.assertIn("<b>10</b><span>can be mailed</span>", html)
        self.assertIn("<b>1</b><span>ready now</span>", html)


class ReportFileTest(ReportBase):
    def test_bad_arguments_are_usage_errors(self):
        for args in (["report"], ["report", "--since", "2026-01-01"],
                     ["report", "--html", self.out, "--since", "2026-02-30"],
                     ["report", "--html", self.out, "--since", "yesterday"],
                     ["report", "--html", self.out, "--since", "2026-1-01"],
                     ["report", "--html", self.out, "extra"]):
            p = self.wb(*args, check=64)
            self.assertIn("report", p.stderr)
        self.assertFalse(os.path.exists(self.out))
        self.report("--since", "2024-02-29")  # a leap day is a date

    def test_replaces_atomically_and_leaves_no_temp_file(self):
        with open(self.out, "w") as f:
            f.write("old")
        os.chmod(self.out, 0o600)
        html = self.report()
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertTrue(html.endswith("</html>\n"))
        self.assertEqual(os.listdir(os.path.dirname(self.out)), ["report.html"])
        self.assertEqual(os.stat(self.out).st_mode & 0o777, 0o666 & ~self._umask())

    def test_unwritable_place_is_a_runtime_failure(self):
        missing = os.path.join(self.tmp, "no", "such", "dir", "r.html")
        p = self.wb("report", "--html", missing, check=1)
        self.assertIn("no/such/dir/r.html", p.stderr)
        self.assertIn("No such file or directory", p.stderr)
        d = os.path.join(self.tmp, "out")
        p = self.wb("report", "--html", d, check=1)  # a directory is not a file
        self.assertIn("cannot write", p.stderr)
        self.assertEqual(os.listdir(d), [])
        self.assertEqual([f for f in os.listdir(self.tmp) if f.startswith("out.")], [])

    @staticmethod
    def _umask():
        m = os.umask(0)
        os.umask(m)
        return m


def png_rows(path):
    """Decodes an 8-bit RGB or RGBA, non-interlaced PNG; returns (width,
    height, bytes per pixel, rows of raw pixel bytes). Rows filtered with Up (most of
    Chromium's) are undone with whole-row integer arithmetic."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(typ + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("bad CRC in " + typ.decode("latin-1"))
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG {hdr}")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError("truncated image data")
    lo7 = int.from_bytes(b"\x7f" * stride, "big")
    hi1 = int.from_bytes(b"\x80" * stride, "big")
    prev, rows = bytes(stride), []
    for y in range(h):
        ftype, cur = raw[y * (stride + 1)], raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        if ftype == 0:
            out = cur
        elif ftype == 2:  # bytewise (cur + prev) mod 256, without carries between bytes
            a, b = int.from_bytes(cur, "big"), int.from_bytes(prev, "big")
            out = (((a & lo7) + (b & lo7)) ^ ((a ^ b) & hi1)).to_bytes(stride, "big")
        else:
            out = bytearray(cur)
            for i in range(stride):
                left = out[i - bpp] if i >= bpp else 0
                up, ul = prev[i], prev[i - bpp] if i >= bpp else 0
                if ftype == 1:
                    out[i] = (out[i] + left) & 255
                elif ftype == 3:
                    out[i] = (out[i] + ((left + up) >> 1)) & 255
                elif ftype == 4:
                    pa, pb, pc = abs(up - ul), abs(left - ul), abs(left + up - 2 * ul)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else ul
                    out[i] = (out[i] + pred) & 255
                else:
                    raise ValueError(f"bad filter {ftype}")
            out = bytes(out)
        rows.append(out)
        prev = out
    return w, h, bpp, rows


CHROMIUM = shutil.which("chromium")


@unittest.skipUnless(CHROMIUM, "chromium is not installed (make deps installs it)")
class ChromiumTest(ReportBase):
    def render(self, page):
        """Screenshots page in headless Chromium; returns (png path, console lines)."""
        prof = tempfile.mkdtemp(prefix="wbchrome-")
        self.addCleanup(shutil.rmtree, prof, True)
        png = os.path.join(self.tmp, "shot.png")
        # --no-sandbox: Chromium's sandbox refuses to run as root.
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--disable-extensions", "--disable-sync",
                            "--disable-background-networking", "--user-data-dir=" + prof,
                            "--enable-logging=stderr", "--v=0", "--screenshot=" + png,
                            "--window-size=1280,2000", "file://" + page],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS="disabled:"))
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
        return png, console

    def test_renders_without_console_messages(self):
        self.report()
        png, console = self.render(self.out)
        self.assertEqual(console, [])
        w, h, bpp, rows = png_rows(png)
        self.assertEqual((w, h), (1280, 2000))
        blank = rows[0][:bpp] * w
        drawn = [y for y, r in enumerate(rows) if r != blank]
        self.assertTrue(drawn, "the screenshot is one colour")
        # Text and charts all the way down, not one stray line.
        self.assertGreater(len(drawn), 600)
        self.assertGreater(max(drawn), 1200)

    def test_detector_sees_a_script_error(self):
        bad = os.path.join(self.tmp, "bad.html")
        with open(bad, "w") as f:
            f.write("<!DOCTYPE html><title>x</title><p>x</p><script>undefinedThing.x()</script>")
        _, console = self.render(bad)
        self.assertTrue(any("Uncaught ReferenceError" in line for line in console), console)

    def test_detector_sees_a_blank_page(self):
        blank = os.path.join(self.tmp, "blank.html")
        with open(blank, "w") as f:
            f.write("<!DOCTYPE html><title>x</title><body style='background:#fff'></body>")
        png, console = self.render(blank)
        self.assertEqual(console, [])
        w, _, bpp, rows = png_rows(png)
        self.assertTrue(all(r == rows[0][:bpp] * w for r in rows))
