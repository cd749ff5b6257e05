/* Config loading: fixtures are written into a fresh temp folder per test
 * (the test chdirs there, so paths in messages are short and exact). Run
 * from the source root, where config/ (the shipped example) lives. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "warmbench/check_config.h"
#include "warmbench/config.h"
#include "warmbench/readfile.h"
#include "warmbench/sequence.h"
#include "warmbench/util.h"

static char root[PATH_MAX];
static char tmp[64];

static const char CFG[] =
    "{\n"
    "  \"http\": {\"listen\": \"127.0.0.1:8025\", \"public_url\": \"http://127.0.0.1:8025/\"},\n"
    "  \"secret_file\": \"secret.key\",\n"
    "  \"smtp\": {\"url\": \"smtp://127.0.0.1:2525\", \"tls\": \"off\"},\n"
    "  \"bounce_domain\": \"bounces.example.com\",\n"
    "  \"senders\": {\"ana\": {\"from\": \"Ana Ruiz <ana@example.com>\", "
    "\"reply_to\": \"ana@example.com\"}}\n"
    "}\n";

static const char SEQ[] =
    "{\n"
    "  \"id\": \"a\",\n"
    "  \"sender\": \"ana\",\n"
    "  \"window\": {\"days\": [\"mon\"], \"start\": \"09:00\", \"end\": \"17:00\", "
    "\"timezone\": \"UTC\"},\n"
    "  \"links\": {\"apply\": \"https://example.com/apply\"},\n"
    "  \"steps\": [\n"
    "    {\"after\": \"0d\", \"subject\": \"Hi {{first_name|there}}\", \"text\": \"a.txt\", "
    "\"html\": \"a.html\"},\n"
    "    {\"after\": \"3d\", \"subject\": \"Re: hi\", \"text\": \"a.txt\", \"thread\": true}\n"
    "  ],\n"
    "  \"stop_on\": [\"reply\", \"click:apply\"],\n"
    "  \"handoff_on\": [\"reply:interested\"]\n"
    "}\n";

static void put(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
    char *s;
    size_t n;
    ck_assert_int_eq(wb_read_file(path, &s, &n), 0);
    return s;
}

/* Replaces the first `from` in file with `to`. */
static void edit(const char *path, const char *from, const char *to)
{
    char *s = slurp(path);
    char *hit = strstr(s, from);
    ck_assert_msg(hit != NULL, "\"%s\" not in %s", from, path);
    *hit = '\0';
    char *t = wb_xasprintf("%s%s%s", s, to, hit + strlen(from));
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    put(path, t, st.st_mode & 0777);
    free(s);
    free(t);
}

/* "file:line:col: msg\n" for the first occurrence of needle in file. */
static char *at(const char *path, const char *needle, const char *msg)
{
    char *s = slurp(path);
    char *hit = strstr(s, needle);
    ck_assert_msg(hit != NULL, "\"%s\" not in %s", needle, path);
    int line = 1, col = 1;
    for (char *p = s; p < hit; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    free(s);
    return wb_xasprintf("%s:%d:%d: %s\n", path, line, col, msg);
}

static void setup(void)
{
    strcpy(tmp, "/tmp/wbcfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    ck_assert_int_eq(chdir(tmp), 0);
    ck_assert_int_eq(mkdir("sequences", 0755), 0);
    ck_assert_int_eq(mkdir("templates", 0755), 0);
    put("secret.key", "TOPSECRET-0123456789-0123456789abcdef\n", 0600);
    put("warmbench.json", CFG, 0644);
    put("sequences/a.json", SEQ, 0644);
    put("templates/a.txt", "Hello {{first_name|there}},\n{{links.apply}}\n{{unsubscribe_url}}\n",
        0644);
    put("templates/a.html", "<p>{{company}}</p>\n", 0644);
}

static void teardown(void)
{
    if (chdir(root) == 0) {
        char *cmd = wb_xasprintf("rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
    }
}

static char *out_text;

/* Runs check-config on ./warmbench.json; returns stderr, keeps stdout. */
static char *run(int *rc)
{
    char *err = NULL;
    size_t en = 0, on = 0;
    free(out_text);
    out_text = NULL;
    FILE *o = open_memstream(&out_text, &on), *e = open_memstream(&err, &en);
    *rc = wb_check_config("warmbench.json", o, e);
    fclose(o);
    fclose(e);
    return err;
}

/* Asserts check-config fails with exactly `want` on stderr. */
static void expect(const char *want)
{
    int rc;
    char *err = run(&rc);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(rc, 78);
    ck_assert_str_eq(out_text, "");
    free(err);
}

/* Asserts the only error is msg at needle in path. */
static void expect_one(const char *path, const char *needle, const char *msg)
{
    char *want = at(path, needle, msg);
    expect(want);
    free(want);
}

START_TEST(test_good_config_loads)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    wb_diags_print(&d, stderr);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->http.public_url, "http://127.0.0.1:8025");
    ck_assert_ptr_null(c->http.admin_listen);
    ck_assert_int_eq(c->http.machine_click_s, 5);
    ck_assert_ptr_null(c->database);
    ck_assert_uint_eq(c->secret_len, strlen("TOPSECRET-0123456789-0123456789abcdef"));
    ck_assert(memcmp(c->secret, "TOPSECRET-0123456789-0123456789abcdef", c->secret_len) == 0);
    ck_assert_int_eq(c->smtp.tls, WB_TLS_OFF);
    ck_assert_int_eq(c->smtp.connections, 8);
    ck_assert_int_eq(c->smtp.timeout_s, 30);
    ck_assert_int_eq(c->smtp.retry_base_s, 60);
    ck_assert_ptr_null(c->smtp.password);
    ck_assert(!c->mailbox.enabled && !c->ats.enabled);
    ck_assert_int_eq(c->mailbox.poll_s, 60);
    ck_assert_int_eq(c->ats.max_attempts, 12);
    ck_assert_int_eq(c->ats.retry_base_s, 10);
    ck_assert_int_eq(c->log.level, WB_LOG_INFO);
    ck_assert_int_eq(c->log.format, WB_LOG_TEXT);
    ck_assert_int_eq(c->retention_days, 0);
    ck_assert_ptr_null(c->scoring);
    ck_assert_str_eq(c->sequences_dir, "sequences");
    const struct wb_sender *s = wb_config_sender(c, "ana");
    ck_assert_str_eq(s->from_name, "Ana Ruiz");
    ck_assert_str_eq(s->from_email, "ana@example.com");
    ck_assert_str_eq(s->reply_to, "ana@example.com");
    const struct wb_sequence *q = wb_config_sequence(c, "a");
    ck_assert_str_eq(q->file, "sequences/a.json");
    ck_assert_str_eq(q->sender, "ana");
    ck_assert_uint_eq(q->window.days, 1);
    ck_assert_int_eq(q->window.start_min, 540);
    ck_assert_int_eq(q->window.end_min, 1020);
    ck_assert_str_eq(q->window.timezone, "UTC");
    ck_assert(q->audience.exclusive && !q->audience.auto_enroll);
    ck_assert_str_eq(wb_sequence_link(q, "apply"), "https://example.com/apply");
    ck_assert_uint_eq(q->n_steps, 2);
    ck_assert_int_eq(q->steps[0].after_s, 0);
    ck_assert_int_eq(q->steps[1].after_s, 3 * 86400);
    ck_assert(q->steps[1].thread && !q->steps[0].thread);
    ck_assert_ptr_nonnull(q->steps[0].html);
    ck_assert_ptr_null(q->steps[1].html);
    ck_assert_uint_eq(q->n_stop_on, 2);
    ck_assert_str_eq(q->stop_on[1], "click:apply");
    ck_assert_str_eq(q->handoff_on[0], "reply:interested");
    ck_assert_uint_eq(strlen(q->content_hash), 64);
    ck_assert_str_eq(json_string_value(json_object_get(q->definition, "id")), "a");
    wb_config_free(c);
    wb_diags_free(&d);
}
END_TEST

START_TEST(test_summary_line)
{
    int rc;
    char *err = run(&rc);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out_text, "config ok: 1 sender, 1 sequence, 2 steps, 2 templates\n");
    free(err);
}
END_TEST

static char *hash_now(void)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    ck_assert_ptr_nonnull(c);
    char *h = wb_xstrdup(c->sequences[0].content_hash);
    wb_config_free(c);
    wb_diags_free(&d);
    return h;
}

START_TEST(test_content_hash_covers_templates)
{
    char *h1 = hash_now();
    char *h2 = hash_now();
    ck_assert_str_eq(h1, h2);
    edit("templates/a.html", "<p>", "<p>Hi ");
    char *h3 = hash_now();
    ck_assert_str_ne(h1, h3);
    free(h1);
    free(h2);
    free(h3);
}
END_TEST

START_TEST(test_defaults_and_options)
{
    edit("warmbench.json", "\"bounce_domain\"",
         "\"database\": \"postgresql://x@h/db\", \"retention_days\": 30,\n"
         "  \"scoring\": {\"weights\": {\"open\": 1}, \"half_life_days\": 14, "
         "\"ready_threshold\": 5},\n"
         "  \"log\": {\"level\": \"debug\", \"format\": \"json\"},\n"
         "  \"mailbox\": {\"url\": \"imaps://imap.example.com/INBOX\", \"password_file\": "
         "\"imap.pw\"},\n"
         "  \"ats\": {\"webhook_url\": \"https://ats.example.com/h\", \"secret_file\": "
         "\"ats.key\"},\n"
         "  \"bounce_domain\"");
    put("imap.pw", "imap-pass\n", 0600);
    put("ats.key", "ats-key", 0400);
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    wb_diags_print(&d, stderr);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->database, "postgresql://x@h/db");
    ck_assert_int_eq(c->retention_days, 30);
    ck_assert_ptr_nonnull(c->scoring);
    ck_assert_int_eq(c->log.level, WB_LOG_DEBUG);
    ck_assert_int_eq(c->log.format, WB_LOG_JSON);
    ck_assert(c->mailbox.enabled && c->ats.enabled);
    ck_assert_str_eq(c->mailbox.password, "imap-pass");
    ck_assert_uint_eq(c->ats.secret_len, 7);
    wb_config_free(c);
    wb_diags_free(&d);
}
END_TEST

START_TEST(test_unknown_key)
{
    edit("warmbench.json", "\"tls\"", "\"smpt\": 1, \"tls\"");
    expect_one("warmbench.json", "\"smpt\"", "unknown key \"smpt\"");
}
END_TEST

START_TEST(test_wrong_type)
{
    edit("warmbench.json", "\"tls\": \"off\"", "\"tls\": \"off\", \"connections\": \"8\"");
    expect_one("warmbench.json", "\"8\"", "\"connections\" must be an integer");
}
END_TEST

START_TEST(test_bad_tls_and_missing_key)
{
    edit("warmbench.json", "\"tls\": \"off\"", "\"tls\": \"sometimes\"");
    edit("warmbench.json", "  \"bounce_domain\": \"bounces.example.com\",\n", "");
    expect("warmbench.json:1:1: missing key \"bounce_domain\"\n"
           "warmbench.json:4:51: \"tls\" must be \"required\", \"try\" or \"off\"\n");
}
END_TEST

START_TEST(test_json_syntax_error)
{
    edit("warmbench.json", "\"tls\": \"off\"", "\"tls\" \"off\"");
    int rc;
    char *err = run(&rc);
    ck_assert_int_eq(rc, 78);
    ck_assert_msg(strncmp(err, "warmbench.json:4:", 17) == 0, "got %s", err);
    ck_assert(strstr(err, "invalid JSON") != NULL);
    free(err);
}
END_TEST

START_TEST(test_secret_missing)
{
    unlink("secret.key");
    char *want = wb_xasprintf("warmbench.json:3:3: cannot read secret file \"secret.key\": %s\n",
                              strerror(ENOENT));
    expect(want);
    free(want);
}
END_TEST

/* 30 bytes (the newline is not part of the key) are too few, 32 enough; the
 * message says how to make a good key without showing this one. */
START_TEST(test_secret_too_short)
{
    put("secret.key", "SHORTKEY-0123456789-0123456789\n", 0600);
    int rc;
    char *err = run(&rc);
    ck_assert_int_eq(rc, 78);
    char *want = at("warmbench.json", "\"secret_file\"",
                    "secret file \"secret.key\" holds 30 bytes; at least 32 are needed "
                    "(make one with: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)");
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(strstr(err, "SHORTKEY"));
    free(want);
    free(err);
    put("secret.key", "SHORTKEY-0123456789-0123456789-x\n", 0600);
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_ptr_nonnull(c);
    wb_config_free(c);
    wb_diags_free(&d);
}
END_TEST

START_TEST(test_secret_readable_by_others_never_shown)
{
    ck_assert_int_eq(chmod("secret.key", 0640), 0);
    edit("warmbench.json", "\"tls\"", "\"password_file\": \"smtp.pw\", \"tls\"");
    put("smtp.pw", "SMTPPASSWORD\n", 0604);
    int rc;
    char *err = run(&rc);
    ck_assert_int_eq(rc, 78);
    char *a = at("warmbench.json", "\"secret_file\"",
                 "secret file \"secret.key\" is readable by group or others (chmod 600 it)");
    char *b = at("warmbench.json", "\"password_file\"",
                 "secret file \"smtp.pw\" is readable by group or others (chmod 600 it)");
    char *want = wb_xasprintf("%s%s", a, b);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(strstr(err, "TOPSECRET"));
    ck_assert_ptr_null(strstr(err, "SMTPPASSWORD"));
    free(a);
    free(b);
    free(want);
    free(err);
}
END_TEST

START_TEST(test_sender_header_injection)
{
    edit("warmbench.json", "Ana Ruiz <ana@example.com>", "Ana\\r\\nBcc: x@y <ana@example.com>");
    edit("warmbench.json", "\"reply_to\": \"ana@example.com\"", "\"reply_to\": \"a@b\\nc\"");
    char *a = at("warmbench.json", "\"Ana", "\"from\" must not contain CR or LF");
    char *b = at("warmbench.json", "\"a@b", "\"reply_to\" must not contain CR or LF");
    char *want = wb_xasprintf("%s%s", a, b);
    expect(want);
    free(a);
    free(b);
    free(want);
}
END_TEST

START_TEST(test_bare_from_address)
{
    edit("warmbench.json", "Ana Ruiz <ana@example.com>", "ana@example.com");
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->senders[0].from_name, "");
    ck_assert_str_eq(c->senders[0].from_email, "ana@example.com");
    wb_config_free(c);
    wb_diags_free(&d);
}
END_TEST

/* A malformed address used to be freed twice (once by the parser, once
 * by wb_config_free); now it is one error each and a clean failure. */
START_TEST(test_bad_sender_addresses)
{
    edit("warmbench.json", "Ana Ruiz <ana@example.com>", "Ana <ana>");
    edit("warmbench.json", "\"reply_to\": \"ana@example.com\"", "\"reply_to\": \"a@b@c\"");
    char *a = at("warmbench.json", "\"Ana",
                 "bad address \"Ana <ana>\" in \"from\" (use Name <addr@domain>)");
    char *b = at("warmbench.json", "\"a@b@c", "bad address \"a@b@c\" in \"reply_to\"");
    char *want = wb_xasprintf("%s%s", a, b);
    expect(want);
    free(a);
    free(b);
    free(want);
}
END_TEST

/* Defaults come from the key tables even for sections left out. */
START_TEST(test_defaults_of_absent_sections)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    ck_assert_ptr_nonnull(c);
    ck_assert(!c->mailbox.enabled && !c->ats.enabled);
    ck_assert_int_eq(c->http.machine_click_s, 5);
    ck_assert_str_eq(c->http.public_url, "http://127.0.0.1:8025");
    ck_assert_ptr_null(c->http.admin_listen);
    ck_assert_int_eq(c->smtp.connections, 8);
    ck_assert_int_eq(c->smtp.timeout_s, 30);
    ck_assert_int_eq(c->smtp.retry_base_s, 60);
    ck_assert_int_eq(c->mailbox.poll_s, 60);
    ck_assert_int_eq(c->ats.max_attempts, 12);
    ck_assert_int_eq(c->ats.retry_base_s, 10);
    ck_assert_int_eq(c->log.level, WB_LOG_INFO);
    ck_assert_int_eq(c->log.format, WB_LOG_TEXT);
    ck_assert_int_eq(c->retention_days, 0);
    ck_assert_ptr_null(c->database);
    ck_assert_ptr_null(c->smtp.username);
    ck_assert_str_eq(c->templates_dir, "templates");
    ck_assert_str_eq(c->sequences_dir, "sequences");
    ck_assert(c->sequences[0].audience.exclusive);
    ck_assert(!c->sequences[0].audience.has_score_min);
    wb_config_free(c);
    wb_diags_free(&d);
}
END_TEST

/* Every section given the wrong JSON type: one error each, no crash. */
START_TEST(test_sections_of_the_wrong_type)
{
    static const char *const keys[] = {"http", "smtp", "mailbox", "ats", "senders", "log",
                                       "scoring", "database", "secret_file", "bounce_domain",
                                       "templates_dir", "retention_days", "privacy_notice"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *cfg = wb_xasprintf("{\"%s\": [1]}\n", keys[i]);
        put("warmbench.json", cfg, 0644);
        struct wb_diags d;
        wb_diags_init(&d);
        ck_assert_ptr_null(wb_config_load("warmbench.json", &d));
        size_t hits = 0;
        for (size_t k = 0; k < d.n; k++)
            hits += d.v[k].line == 1 && d.v[k].col == (int)strlen(keys[i]) + 6;
        ck_assert_msg(hits == 1, "%s: %zu errors at its value", keys[i], hits);
        wb_diags_free(&d);
        free(cfg);
    }
}
END_TEST

START_TEST(test_url_ok)
{
    ck_assert(wb_url_ok("http://h", "http"));
    ck_assert(wb_url_ok("https://h", "http"));
    ck_assert(wb_url_ok("smtps://h:465", "smtp"));
    ck_assert(!wb_url_ok("http://", "http"));
    ck_assert(!wb_url_ok("https://", "http"));
    ck_assert(!wb_url_ok("httpx://h", "http"));
    ck_assert(!wb_url_ok("http:/h", "http"));
    ck_assert(!wb_url_ok("imap://h", "smtp"));
    ck_assert(!wb_url_ok("", "http"));
    ck_assert(wb_has_prefix("click:apply", "click:"));
    ck_assert(!wb_has_prefix("click", "click:"));
}
END_TEST

START_TEST(test_unknown_sender)
{
    edit("sequences/a.json", "\"sender\": \"ana\"", "\"sender\": \"bob\"");
    expect_one("sequences/a.json", "\"bob\"", "unknown sender \"bob\"");
}
END_TEST

START_TEST(test_bad_duration)
{
    edit("sequences/a.json", "\"3d\"", "\"3x\"");
    expect("sequences/a.json:8:15: bad duration \"3x\" (use 30m, 12h, 3d or 2w)\n");
}
END_TEST

START_TEST(test_bad_window)
{
    edit("sequences/a.json", "\"end\": \"17:00\"", "\"end\": \"08:00\"");
    edit("sequences/a.json", "[\"mon\"]", "[\"mon\", \"mun\"]");
    char *a = at("sequences/a.json", "\"mun\"",
                 "unknown day \"mun\" (use mon, tue, wed, thu, fri, sat, sun)");
    char *b = at("sequences/a.json", "\"08:00\"",
                 "window \"end\" (08:00) must be after \"start\" (09:00)");
    char *want = wb_xasprintf("%s%s", a, b);
    expect(want);
    free(a);
    free(b);
    free(want);
}
END_TEST

START_TEST(test_bad_time)
{
    edit("sequences/a.json", "\"09:00\"", "\"9am\"");
    expect_one("sequences/a.json", "\"9am\"",
               "bad time \"9am\" in \"start\" (use HH:MM, 00:00 to 24:00)");
}
END_TEST

START_TEST(test_unknown_zone)
{
    edit("sequences/a.json", "\"timezone\": \"UTC\"",
         "\"timezone\": \"Mars/Base\", \"fallback_timezone\": \"../etc/passwd\"");
    char *a = at("sequences/a.json", "\"Mars", "unknown time zone \"Mars/Base\"");
    char *b = at("sequences/a.json", "\"../", "unknown time zone \"../etc/passwd\"");
    char *want = wb_xasprintf("%s%s", a, b);
    expect(want);
    free(a);
    free(b);
    free(want);
}
END_TEST

START_TEST(test_missing_template_file)
{
    edit("sequences/a.json", "\"html\": \"a.html\"", "\"html\": \"nope.html\"");
    expect_one("sequences/a.json", "\"nope.html\"",
               "template file \"nope.html\" not found in templates/");
}
END_TEST

START_TEST(test_unknown_field_in_subject)
{
    edit("sequences/a.json", "Hi {{first_name|there}}", "Hi {{frist_name|there}}");
    expect_one("sequences/a.json", "{{frist", "unknown template field \"frist_name\"");
}
END_TEST

START_TEST(test_template_file_errors)
{
    put("templates/a.txt", "Hi {{first_name}}\n{{links.nope}} {{attrs.team}}\n  {{ }}\n{{company",
        0644);
    expect("templates/a.txt:2:1: unknown template field \"links.nope\"\n"
           "templates/a.txt:3:3: empty field name in \"{{\"\n"
           "templates/a.txt:4:1: unclosed \"{{\"\n");
}
END_TEST

START_TEST(test_duplicate_id)
{
    put("sequences/b.json", SEQ, 0644);
    expect("sequences/b.json:2:9: duplicate sequence id \"a\" (also in sequences/a.json)\n");
}
END_TEST

START_TEST(test_unknown_events)
{
    edit("sequences/a.json", "[\"reply\", \"click:apply\"]",
         "[\"clik\", \"click:nope\", \"reply:angry\"]");
    edit("sequences/a.json", "\"reply:interested\"", "\"open\", \"opn\"");
    char *a = at("sequences/a.json", "\"clik\"", "unknown event \"clik\" in stop_on");
    char *b = at("sequences/a.json", "\"click:nope\"", "unknown event \"click:nope\" in stop_on");
    char *c = at("sequences/a.json", "\"reply:angry\"", "unknown event \"reply:angry\" in stop_on");
    char *d = at("sequences/a.json", "\"opn\"", "unknown event \"opn\" in handoff_on");
    char *want = wb_xasprintf("%s%s%s%s", a, b, c, d);
    expect(want);
    free(a);
    free(b);
    free(c);
    free(d);
    free(want);
}
END_TEST

START_TEST(test_step_rules)
{
    edit("sequences/a.json", "\"html\": \"a.html\"}", "\"html\": \"a.html\", \"thread\": true}");
    edit("sequences/a.json", "\"text\": \"a.txt\", \"thread\"", "\"thread\"");
    char *a = at("sequences/a.json", "true}", "\"thread\" is not allowed on step 1 (there is no "
                                              "thread yet)");
    char *b = at("sequences/a.json", "{\"after\": \"3d\"",
                 "needs \"text\" or \"html\" (a template file name)");
    char *want = wb_xasprintf("%s%s", a, b);
    expect(want);
    free(a);
    free(b);
    free(want);
}
END_TEST

/* A bad "html" name does not hide the "text" file's own problem. */
START_TEST(test_body_problems_both_reported)
{
    edit("sequences/a.json", "\"a.txt\", \"html\": \"a.html\"", "\"nope.txt\", \"html\": 5");
    char *a = at("sequences/a.json", "5}", "\"html\" must be a string");
    char *b = at("sequences/a.json", "\"nope.txt\"",
                 "template file \"nope.txt\" not found in templates/");
    char *want = wb_xasprintf("%s%s", b, a);
    expect(want);
    free(a);
    free(b);
    free(want);
}
END_TEST

/* "Step 1" is the first item of "steps", even when that item is broken. */
START_TEST(test_thread_on_second_item)
{
    edit("sequences/a.json", "{\"after\": \"0d\"", "7, {\"after\": \"0d\"");
    edit("sequences/a.json", "\"html\": \"a.html\"}", "\"html\": \"a.html\", \"thread\": true}");
    expect_one("sequences/a.json", "7,", "step 1 must be an object");
}
END_TEST

/* The window's order is judged only when both ends are well formed. */
START_TEST(test_bad_start_no_order_check)
{
    edit("sequences/a.json", "\"09:00\"", "\"9am\"");
    edit("sequences/a.json", "\"17:00\"", "\"00:00\"");
    expect_one("sequences/a.json", "\"9am\"",
               "bad time \"9am\" in \"start\" (use HH:MM, 00:00 to 24:00)");
}
END_TEST

START_TEST(test_every_problem_reported_in_order)
{
    put("sequences/0.json", "{\"id\": \"zero\", \"sender\": \"ana\", \"steps\": [{\"after\": "
                            "\"1h\", \"subject\": \"x\", \"text\": \"a.html\"}], \"colour\": 1}\n",
        0644);
    edit("warmbench.json", "\"tls\": \"off\"", "\"tls\": \"off\", \"timeout_s\": 0");
    edit("sequences/a.json", "\"3d\"", "\"soon\"");
    edit("sequences/a.json", "\"sender\": \"ana\"", "\"sender\": \"bob\"");
    edit("templates/a.html", "{{company}}", "{{compny}}");
    expect("warmbench.json:4:71: \"timeout_s\" must be between 1 and 1000000000\n"
           "sequences/0.json:1:95: unknown key \"colour\"\n"
           "templates/a.html:1:4: unknown template field \"compny\"\n"
           "sequences/a.json:3:13: unknown sender \"bob\"\n"
           "sequences/a.json:8:15: bad duration \"soon\" (use 30m, 12h, 3d or 2w)\n");
}
END_TEST

START_TEST(test_example_config_loads)
{
    char *cmd = wb_xasprintf("cp -r '%s/config/.' '%s/ex'", root, tmp);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    put("ex/secret.key", "example-secret-0123456789abcdef-0123\n", 0600);
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("ex/warmbench.json", &d);
    wb_diags_print(&d, stderr);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->n_sequences, 3);
    ck_assert_str_eq(c->sequences[0].id, "backend-silver-medallists");
    ck_assert_ptr_null(c->sequences[0].window.timezone);
    const struct wb_sequence *q = wb_config_sequence(c, "data-passive-prospects");
    ck_assert_ptr_nonnull(q);
    ck_assert_str_eq(q->file, "ex/sequences/data-passive-prospects.json");
    ck_assert_str_eq(q->window.fallback_timezone, "Europe/Berlin");
    ck_assert_uint_eq(q->n_steps, 3);
    const struct wb_sequence *r = wb_config_sequence(c, "reengage-dormant");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->audience.dormant_days, 180);
    ck_assert(r->audience.auto_enroll);
    ck_assert_uint_eq(r->steps[0].n_variants, 2);
    wb_config_free(c);
    wb_diags_free(&d);
}
END_TEST

START_TEST(test_duration_parse)
{
    ck_assert_int_eq(wb_duration_parse("0d"), 0);
    ck_assert_int_eq(wb_duration_parse("45s"), 45);
    ck_assert_int_eq(wb_duration_parse("30m"), 1800);
    ck_assert_int_eq(wb_duration_parse("12h"), 43200);
    ck_assert_int_eq(wb_duration_parse("3d"), 259200);
    ck_assert_int_eq(wb_duration_parse("2w"), 1209600);
    ck_assert_int_eq(wb_duration_parse("3x"), -1);
    ck_assert_int_eq(wb_duration_parse("3"), -1);
    ck_assert_int_eq(wb_duration_parse("d"), -1);
    ck_assert_int_eq(wb_duration_parse("-1d"), -1);
    ck_assert_int_eq(wb_duration_parse(" 1d"), -1);
    ck_assert_int_eq(wb_duration_parse("1dd"), -1);
    ck_assert_int_eq(wb_duration_parse(""), -1);
    ck_assert_int_eq(wb_duration_parse("99999999999999999999w"), -1);
}
END_TEST

START_TEST(test_window_parsers)
{
    ck_assert_int_eq(wb_clock_parse("00:00"), 0);
    ck_assert_int_eq(wb_clock_parse("09:30"), 570);
    ck_assert_int_eq(wb_clock_parse("24:00"), 1440);
    ck_assert_int_eq(wb_clock_parse("24:01"), -1);
    ck_assert_int_eq(wb_clock_parse("9:30"), -1);
    ck_assert_int_eq(wb_clock_parse("09:60"), -1);
    ck_assert_int_eq(wb_clock_parse("0930"), -1);
    ck_assert_int_eq(wb_day_parse("mon"), 0);
    ck_assert_int_eq(wb_day_parse("sun"), 6);
    ck_assert_int_eq(wb_day_parse("Mon"), -1);
    ck_assert(wb_tz_valid("UTC"));
    ck_assert(!wb_tz_valid("Mars/Base"));
    ck_assert(!wb_tz_valid("/etc/localtime"));
    ck_assert(!wb_tz_valid("../zoneinfo/UTC"));
    ck_assert(!wb_tz_valid("zone.tab"));
    ck_assert(!wb_tz_valid(""));
    if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) == 0) {
        ck_assert(wb_tz_valid("Europe/Berlin"));
        ck_assert(wb_tz_valid("America/Argentina/Buenos_Aires"));
        ck_assert(!wb_tz_valid("posix/Europe/Berlin"));
        ck_assert(!wb_tz_valid("Europe"));
    }
}
END_TEST

Suite *wb_test_suite(void)
{
    if (!getcwd(root, sizeof root))
        abort();
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_good_config_loads);
    tcase_add_test(tc, test_summary_line);
    tcase_add_test(tc, test_content_hash_covers_templates);
    tcase_add_test(tc, test_defaults_and_options);
    tcase_add_test(tc, test_unknown_key);
    tcase_add_test(tc, test_wrong_type);
    tcase_add_test(tc, test_bad_tls_and_missing_key);
    tcase_add_test(tc, test_json_syntax_error);
    tcase_add_test(tc, test_secret_missing);
    tcase_add_test(tc, test_secret_too_short);
    tcase_add_test(tc, test_secret_readable_by_others_never_shown);
    tcase_add_test(tc, test_sender_header_injection);
    tcase_add_test(tc, test_bare_from_address);
    tcase_add_test(tc, test_bad_sender_addresses);
    tcase_add_test(tc, test_defaults_of_absent_sections);
    tcase_add_test(tc, test_sections_of_the_wrong_type);
    tcase_add_test(tc, test_url_ok);
    tcase_add_test(tc, test_unknown_sender);
    tcase_add_test(tc, test_bad_duration);
    tcase_add_test(tc, test_bad_window);
    tcase_add_test(tc, test_bad_time);
    tcase_add_test(tc, test_unknown_zone);
    tcase_add_test(tc, test_missing_template_file);
    tcase_add_test(tc, test_unknown_field_in_subject);
    tcase_add_test(tc, test_template_file_errors);
    tcase_add_test(tc, test_duplicate_id);
    tcase_add_test(tc, test_unknown_events);
    tcase_add_test(tc, test_step_rules);
    tcase_add_test(tc, test_body_problems_both_reported);
    tcase_add_test(tc, test_thread_on_second_item);
    tcase_add_test(tc, test_bad_start_no_order_check);
    tcase_add_test(tc, test_every_problem_reported_in_order);
    tcase_add_test(tc, test_example_config_loads);
    tcase_add_test(tc, test_duration_parse);
    tcase_add_test(tc, test_window_parsers);
    suite_add_tcase(s, tc);
    return s;
}
