"""The calendar (issue 15, SPEC "The sourcer's controls"): business days
("3bd"), window.holidays (iCalendar files for everyone) and
window.holidays_by_country (the candidate's `country` column), as the
config loader stores them and the SQL that times the steps reads them
(sql/functions/020_window.sql) with fixed timestamps; and check-config's
errors at their place, with nothing sent."""
import copy
import datetime
import json
import os
import subprocess

import harness
from test_check_config import ConfigCase

ICS_HEAD = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//warmbench test//EN\r\n"
ICS_TAIL = "END:VCALENDAR\r\n"


def ics(*events):
    """A calendar of all-day events: (date, rrule or None, summary)."""
    body = ""
    for i, (day, rrule, summary) in enumerate(events):
        body += "BEGIN:VEVENT\r\nUID:h%d@test\r\nDTSTART;VALUE=DATE:%s\r\n" % (
            i, day.strftime("%Y%m%d"))
        if rrule:
            body += "RRULE:%s\r\n" % rrule
        body += "SUMMARY:%s\r\nEND:VEVENT\r\n" % summary
    return ICS_HEAD + body + ICS_TAIL


# The test's calendar, in next year (the loader expands this year and the
# two after it): a Friday F; the German file closes the Monday after it
# (a single date); the company file closes, every year since 2001, the
# Tuesday after the Friday two weeks later, for everyone; the French file
# closes July 14 from next year on.
YEAR = datetime.date.today().year + 1
FRI = datetime.date(YEAR, 6, 1) + datetime.timedelta(days=(4 - datetime.date(YEAR, 6, 1).weekday()) % 7)
MON = FRI + datetime.timedelta(days=3)
FRI2 = FRI + datetime.timedelta(days=14)
TUE2 = FRI2 + datetime.timedelta(days=4)


def day(d, n=0):
    return (d + datetime.timedelta(days=n)).isoformat()


class CalendarBase(ConfigCase):
    def setUp(self):
        super().setUp()
        self.seq = copy.deepcopy(harness.DEFAULT_SEQUENCE)
        self.seq["window"] = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00",
                              "end": "17:30", "timezone": "candidate",
                              "holidays": ["company.ics"],
                              "holidays_by_country": {"DE": ["de.ics"], "fr": "fr.ics"}}
        self.seq["steps"][1]["after"] = "3bd"
        self.files = {
            "company.ics": ics((datetime.date(2001, TUE2.month, TUE2.day), "FREQ=YEARLY",
                                "Company day")),
            "de.ics": ics((MON - datetime.timedelta(days=0), None, "Pfingstmontag")),
            "fr.ics": ics((datetime.date(YEAR, 7, 14), "FREQ=YEARLY;BYMONTH=7", "Fete")),
        }

    def write_all(self, seq=None):
        self.config(sequences=[seq or self.seq])
        for name, text in self.files.items():
            harness.write(self.path("sequences", name), text)

    def stored(self):
        """check-config, migrate and store the definition (enroll does)."""
        self.write_all()
        self.wb("check-config", check=0)
        self.wb("migrate", check=0)
        self.wb("enroll", "nurture", check=0)
        return self.scalar("SELECT definition->>'window' FROM sequences WHERE id = 'nurture'")

    def due(self, ts, zone, country, step=1, fn="wb_step_due"):
        q = ("SELECT to_char(%s('%s'::timestamptz, definition, %d, '%s', %s) AT TIME ZONE '%s',"
             " 'Dy YYYY-MM-DD HH24:MI') FROM sequences WHERE id = 'nurture'"
             % (fn, ts, step, zone, "NULL" if country is None else "'%s'" % country, zone))
        return self.scalar(q)


class CalendarTest(CalendarBase):
    def test_expanded_days_are_stored_with_the_definition(self):
        win = json.loads(self.stored())
        self.assertIn(day(TUE2), win["closed_days"])
        # Yearly from 2001: this year and the next two, nothing else.
        self.assertEqual(len(win["closed_days"]), 3)
        self.assertEqual(win["closed_days_by_country"]["DE"], [day(MON)])
        self.assertEqual(win["closed_days_by_country"]["FR"],
                         ["%d-07-14" % y for y in range(YEAR, YEAR + 2)])

    def test_3bd_after_a_friday_send(self):
        self.stored()
        sent = "%s 10:15 Europe/Berlin" % day(FRI)
        # No holiday on Monday (a candidate of no country, or of France):
        # Monday, Tuesday, Wednesday: Wednesday at the send's time.
        want_wed = "Wed %s 10:15" % day(FRI, 5)
        self.assertEqual(self.due(sent, "Europe/Berlin", None), want_wed)
        self.assertEqual(self.due(sent, "Europe/Berlin", "FR"), want_wed)
        # The German file closes that Monday: Tuesday, Wednesday, Thursday.
        self.assertEqual(self.due(sent, "Europe/Berlin", "DE"), "Thu %s 10:15" % day(FRI, 6))
        self.assertEqual(self.due(sent, "Europe/Berlin", "de"), "Thu %s 10:15" % day(FRI, 6))
        # The company file applies to everyone: its Tuesday is skipped
        # whatever the country.
        sent2 = "%s 16:00 America/New_York" % day(FRI2)
        for country in (None, "DE", "FR", "US"):
            self.assertEqual(self.due(sent2, "America/New_York", country),
                             "Thu %s 16:00" % day(FRI2, 6), country)
        # A send after the window's hours counts its day; the step goes out
        # at the window's opening on the third business day.
        self.assertEqual(self.due("%s 19:00 Europe/Berlin" % day(FRI), "Europe/Berlin", None),
                         "Wed %s 09:00" % day(FRI, 5))

    def test_holidays_move_plain_delays_and_retries(self):
        self.stored()
        # Step 1 is "0d" from the enrollment: an enrollment on the German
        # Monday waits for Tuesday's opening in Germany, not in France.
        at = "%s 11:00 Europe/Paris" % day(MON)
        self.assertEqual(self.due(at, "Europe/Paris", "DE", step=0),
                         "Tue %s 09:00" % day(MON, 1))
        self.assertEqual(self.due(at, "Europe/Paris", "FR", step=0), "Mon %s 11:00" % day(MON))
        # wb_seq_next_due (retries; later steps until their callers pass
        # the country) skips the company's days for everyone.
        q = ("SELECT to_char(wb_seq_next_due('%s 12:00 UTC', definition, 'UTC') AT TIME ZONE"
             " 'UTC', 'Dy YYYY-MM-DD HH24:MI') FROM sequences WHERE id = 'nurture'" % day(TUE2))
        self.assertEqual(self.scalar(q), "Wed %s 09:00" % day(TUE2, 1))

    def test_window_without_timezone_is_utc_everywhere(self):
        """The loader (first step, enroll) times a window without "timezone"
        in UTC; wb_seq_next_due (later steps) did so in the candidate's
        zone. Both read UTC now, as README says."""
        seq = copy.deepcopy(self.seq)
        del seq["window"]["timezone"]
        self.write_all(seq)
        self.wb("migrate", check=0)
        self.wb("enroll", "nurture", check=0)
        q = ("SELECT wb_seq_next_due('%s 07:00 UTC', definition, 'Asia/Tokyo') AT TIME ZONE 'UTC'"
             " FROM sequences WHERE id = 'nurture'" % day(FRI))
        self.assertEqual(self.scalar(q), "%s 09:00:00" % day(FRI))


class CalendarConfigErrors(CalendarBase):
    """Bad calendars: exit 78 with the place, and the daemon refuses to
    start (so nothing is sent)."""

    def refused(self, *want):
        self.write_all()
        p = self.check_fails(*want)
        d = subprocess.run([os.path.join(harness.BUILD, "warmbenchd"), "--config", self.cfg_path],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(d.returncode, 78, d.stderr)
        return p

    def test_ics_that_does_not_parse(self):
        self.files["de.ics"] = (ICS_HEAD + "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:%d0230\r\n"
                                "END:VEVENT\r\n" % YEAR + ICS_TAIL)
        self.refused("%s:5:20: bad date \"%d0230\" in DTSTART (use YYYYMMDD)"
                     % (self.path("sequences", "de.ics"), YEAR))

    def test_ics_with_a_timed_event_or_weekly_rule(self):
        self.files["company.ics"] = (ICS_HEAD + "BEGIN:VEVENT\r\nDTSTART:%d0101T090000Z\r\n"
                                     "RRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n" % YEAR + ICS_TAIL)
        self.refused(
            "%s:5:9: DTSTART is a date-time: a holiday is an all-day event "
            "(DTSTART;VALUE=DATE:YYYYMMDD)" % self.path("sequences", "company.ics"),
            "%s:6:7: only FREQ=YEARLY recurrences make holidays (RRULE \"FREQ=WEEKLY\")"
            % self.path("sequences", "company.ics"))

    def test_unknown_country_code(self):
        self.seq["window"]["holidays_by_country"]["UK"] = ["de.ics"]
        seq_file = self.path("sequences", "nurture.json")
        self.write_all()
        self.refused(self.at(seq_file, '"UK"', 'unknown country code "UK" (use ISO 3166-1 '
                                               'alpha-2, e.g. DE, FR, GB)'))

    def test_missing_holiday_file(self):
        self.seq["window"]["holidays"] = ["company.ics", "nowhere.ics"]
        seq_file = self.path("sequences", "nurture.json")
        self.write_all()
        self.refused(self.at(seq_file, '"nowhere.ics"', 'holiday file "nowhere.ics" not found (%s)'
                             % self.path("sequences", "nowhere.ics")))

    def test_3bd_in_a_window_with_no_days(self):
        del self.seq["window"]["days"]
        seq_file = self.path("sequences", "nurture.json")
        self.write_all()
        self.refused(self.at(seq_file, '"3bd"', '"3bd" counts business days on the window\'s '
                                                '"days", and this sequence\'s window names none'))

    def test_bad_business_days(self):
        self.seq["steps"][1]["after"] = "3b"
        seq_file = self.path("sequences", "nurture.json")
        self.write_all()
        self.refused(self.at(seq_file, '"3b"', 'bad duration "3b" (use 30m, 12h, 3d or 2w)'))


class CalendarDaemonTest(CalendarBase):
    """Through enroll and the daemon: the first step waits out the
    candidate's country holiday (today, in their zone), and after a send
    "1bd" skips the company's day. Needs the callers of the timing SQL
    (enroll, wb_store_outcomes, recovery, the ATS path) to use
    wb_step_due with the candidate's country: skipped, saying so, until
    they do."""

    def test_first_step_and_1bd_through_the_daemon(self):
        from zoneinfo import ZoneInfo
        from daemon_util import Daemon, Smtpd, wait_until
        berlin = datetime.datetime.now(ZoneInfo("Europe/Berlin")).date()
        # Today closed in Germany; tomorrow closed for everyone.
        self.files = {
            "company.ics": ics((berlin + datetime.timedelta(days=1), None, "Company day")),
            "de.ics": ics((berlin, None, "Feiertag")),
            "fr.ics": ics((datetime.date(2001, 7, 14), "FREQ=YEARLY", "Fete")),
        }
        self.seq["window"].update({"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                   "start": "00:00", "end": "24:00"})
        self.seq["steps"][0]["after"] = "0d"
        self.seq["steps"][1]["after"] = "1bd"
        smtp = Smtpd().start()
        self.addCleanup(smtp.cleanup)
        self.write_all()
        cfg = json.load(open(self.cfg_path))
        cfg["smtp"] = {"url": smtp.url, "tls": "off", "connections": 2, "timeout_s": 5,
                       "retry_base_s": 1}
        harness.write(self.cfg_path, json.dumps(cfg))
        self.wb("migrate", check=0)
        uses = self.scalar("SELECT count(*) FROM pg_proc WHERE proname IN"
                           " ('wb_store_outcomes', 'wb_ats_enroll')"
                           " AND prosrc LIKE '%wb_step_due%'")
        if uses != "2":
            self.skipTest("enroll, wb_store_outcomes, recovery and wb_ats_enroll do not time "
                          "steps with wb_step_due and the candidate's country yet")
        csv = harness.write(self.path("pool.csv"),
                            "email,first_name,timezone,tags,consent,country\n"
                            "de@example.org,De,Europe/Berlin,backend,opt_in,DE\n"
                            "fr@example.org,Fr,Europe/Berlin,backend,opt_in,fr\n")
        self.wb("import", csv, check=0)
        self.wb("enroll", "nurture", check=0)

        def due(email):
            return self.scalar(
                "SELECT to_char(e.next_due_at AT TIME ZONE 'Europe/Berlin', 'YYYY-MM-DD HH24:MI')"
                " FROM enrollments e JOIN candidates c ON c.id = e.candidate_id"
                " WHERE c.email = '%s'" % email)
        # The German candidate waits out today (theirs) and tomorrow
        # (everyone's): the day after tomorrow's opening.
        self.assertEqual(due("de@example.org"), "%s 00:00" % (berlin + datetime.timedelta(days=2)))
        d = Daemon(self.cfg_path, self.path("warmbenchd.log")).start()
        try:
            wait_until(lambda: smtp.count() >= 1, 30, "the French candidate's first step")
            # The step is counted at the claim, its send time once the outcome
            # is applied: wait for the latter (under load it comes later).
            wait_until(lambda: self.scalar(
                "SELECT count(*) FROM messages m JOIN candidates c ON c.id = m.candidate_id"
                " WHERE c.email = 'fr@example.org' AND m.sent_at IS NOT NULL"
                " AND EXISTS (SELECT 1 FROM enrollments e WHERE e.id = m.enrollment_id"
                " AND e.next_due_at IS NOT NULL)") == "1", 30, "step 1 sent and stored")
            sent = self.scalar("SELECT to_char(m.sent_at AT TIME ZONE 'Europe/Berlin', 'HH24:MI')"
                               " FROM messages m JOIN candidates c ON c.id = m.candidate_id"
                               " WHERE c.email = 'fr@example.org'")
        finally:
            self.assertEqual(d.stop(), 0)
        self.assertEqual(smtp.count(), 1)
        # The French one went today; 1bd skips tomorrow (everyone's
        # holiday): the day after, at the send's time of day.
        self.assertEqual(due("fr@example.org"),
                         "%s %s" % (berlin + datetime.timedelta(days=2), sent))
