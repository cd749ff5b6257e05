/* warmbench.json's per-sender smtp/mailbox blocks, auth and oauth
 * providers, contact_policy, and sequences' "sender": "owner" with
 * fallback_sender. Fixtures go into a fresh temp folder per test (chdir'd
 * into, so paths in messages are short); errors are compared with their
 * file:line:column, computed from where the text sits in the file. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "warmbench/check_config.h"
#include "warmbench/config.h"
#include "warmbench/readfile.h"
#include "warmbench/util.h"

static char root[PATH_MAX];
static char tmp[64];

/* Line 4 is the top-level smtp, 6-7 the provider, 8-15 the senders. */
static const char CFG[] =
    "{\n"
    "  \"http\": {\"listen\": \"127.0.0.1:8025\", \"public_url\": \"http://127.0.0.1:8025\"},\n"
    "  \"secret_file\": \"secret.key\",\n"
    "  \"smtp\": {\"url\": \"smtp://relay:25\", \"username\": \"relay\", \"password_file\": "
    "\"smtp.pw\", \"tls\": \"off\"},\n"
    "  \"bounce_domain\": \"bounces.example.com\",\n"
    "  \"oauth\": {\"google\": {\"token_url\": \"https://oauth2.example.com/token\",\n"
    "    \"client_id\": \"cid\", \"client_secret_file\": \"g.secret\", \"scope\": \"mail\"}},\n"
    "  \"senders\": {\n"
    "    \"ana\": {\"from\": \"Ana <ana@example.com>\",\n"
    "      \"smtp\": {\"url\": \"smtp://smtp.gmail.com:587\", \"username\": \"ana@example.com\", "
    "\"auth\": \"xoauth2\", \"oauth\": \"google\", \"connections\": 2},\n"
    "      \"mailbox\": {\"url\": \"imaps://imap.gmail.com/INBOX\", \"username\": "
    "\"ana@example.com\", \"auth\": \"oauthbearer\", \"oauth\": \"google\"}},\n"
    "    \"bob\": {\"from\": \"Bob <bob@example.com>\"},\n"
    "    \"cy\": {\"from\": \"Cy <cy@example.com>\", \"smtp\": {\"username\": \"cy\"}}\n"
    "  }\n"
    "}\n";

static const char SEQ[] =
    "{\n"
    "  \"id\": \"a\",\n"
    "  \"sender\": \"owner\",\n"
    "  \"fallback_sender\": \"bob\",\n"
    "  \"steps\": [\n"
    "    {\"after\": \"0d\", \"subject\": \"Hi\", \"text\": \"a.txt\"},\n"
    "    {\"after\": \"3d\", \"subject\": \"Re\", \"text\": \"a.txt\", \"sender\": \"cy\"},\n"
    "    {\"after\": \"3d\", \"subject\": \"Re\", \"text\": \"a.txt\", \"sender\": \"owner\", "
    "\"fallback_sender\": \"ana\"}\n"
    "  ]\n"
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
    put(path, t, 0644);
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
        col = *p == '\n' ? 1 : col + 1;
        line += *p == '\n';
    }
    free(s);
    return wb_xasprintf("%s:%d:%d: %s\n", path, line, col, msg);
}

static void setup(void)
{
    strcpy(tmp, "/tmp/wbsnd-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    ck_assert_int_eq(chdir(tmp), 0);
    ck_assert_int_eq(mkdir("sequences", 0755), 0);
    ck_assert_int_eq(mkdir("templates", 0755), 0);
    put("secret.key", "TOPSECRET-0123456789-0123456789abcdef\n", 0600);
    put("smtp.pw", "RELAYPASSWORD\n", 0600);
    put("g.secret", "GOOGLESECRET\n", 0600);
    put("warmbench.json", CFG, 0644);
    put("sequences/a.json", SEQ, 0644);
    put("templates/a.txt", "Hello\n{{unsubscribe_url}}\n", 0644);
}

static void teardown(void)
{
    if (chdir(root) == 0) {
        char *cmd = wb_xasprintf("rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
    }
}

/* check-config's stderr (and exit code in *rc). */
static char *run(int *rc)
{
    char *err = NULL, *out = NULL;
    size_t en = 0, on = 0;
    FILE *o = open_memstream(&out, &on), *e = open_memstream(&err, &en);
    *rc = wb_check_config("warmbench.json", o, e);
    fclose(o);
    fclose(e);
    free(out);
    return err;
}

static void expect(const char *want)
{
    int rc;
    char *err = run(&rc);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(rc, 78);
    free(err);
}

/* The only error is msg at the first needle in path. */
static void expect_one(const char *path, const char *needle, const char *msg)
{
    char *want = at(path, needle, msg);
    expect(want);
    free(want);
}

static void expect_two(const char *n1, const char *m1, const char *n2, const char *m2)
{
    char *a = at("warmbench.json", n1, m1), *b = at("warmbench.json", n2, m2);
    char *want = wb_xasprintf("%s%s", a, b);
    expect(want);
    free(a);
    free(b);
    free(want);
}

static struct wb_config *load_ok(void)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    wb_diags_print(&d, stderr);
    ck_assert_ptr_nonnull(c);
    wb_diags_free(&d);
    return c;
}

START_TEST(test_override_key_by_key)
{
    struct wb_config *c = load_ok();
    const struct wb_sender *ana = wb_config_sender(c, "ana");
    const struct wb_sender *bob = wb_config_sender(c, "bob");
    const struct wb_sender *cy = wb_config_sender(c, "cy");
    /* ana: her own url, account, auth and connections; tls and timeouts inherited;
     * the relay's password does not apply to a token login. */
    ck_assert(ana->own_smtp && ana->own_mailbox);
    ck_assert_str_eq(ana->smtp.url, "smtp://smtp.gmail.com:587");
    ck_assert_str_eq(ana->smtp.username, "ana@example.com");
    ck_assert_int_eq(ana->smtp.auth, WB_AUTH_XOAUTH2);
    ck_assert_ptr_eq(ana->smtp.oauth, &c->oauth[0]);
    ck_assert_ptr_null(ana->smtp.password_file);
    ck_assert_ptr_null(ana->smtp.password);
    ck_assert_int_eq(ana->smtp.tls, WB_TLS_OFF);
    ck_assert_int_eq(ana->smtp.connections, 2);
    ck_assert_int_eq(ana->smtp.timeout_s, 30);
    ck_assert_int_eq(ana->smtp.retry_base_s, 60);
    /* Her mailbox stands alone (no top-level one): complete, enabled, defaults. */
    ck_assert(ana->mailbox.enabled);
    ck_assert_str_eq(ana->mailbox.url, "imaps://imap.gmail.com/INBOX");
    ck_assert_int_eq(ana->mailbox.auth, WB_AUTH_OAUTHBEARER);
    ck_assert_ptr_eq(ana->mailbox.oauth, &c->oauth[0]);
    ck_assert_int_eq(ana->mailbox.poll_s, 60);
    /* bob: the top-level blocks, as copies. */
    ck_assert(!bob->own_smtp && !bob->own_mailbox && !bob->mailbox.enabled);
    ck_assert_str_eq(bob->smtp.url, "smtp://relay:25");
    ck_assert_ptr_ne(bob->smtp.url, c->smtp.url);
    ck_assert_str_eq(bob->smtp.username, "relay");
    ck_assert_str_eq(bob->smtp.password, "RELAYPASSWORD");
    ck_assert_int_eq(bob->smtp.auth, WB_AUTH_PASSWORD);
    ck_assert_ptr_null(bob->smtp.oauth);
    ck_assert_int_eq(bob->smtp.connections, 8);
    /* cy: one key of his own, the rest (password included) inherited. */
    ck_assert(cy->own_smtp && !cy->own_mailbox);
    ck_assert_str_eq(cy->smtp.username, "cy");
    ck_assert_str_eq(cy->smtp.url, "smtp://relay:25");
    ck_assert_str_eq(cy->smtp.password, "RELAYPASSWORD");
    ck_assert_int_eq(cy->smtp.tls, WB_TLS_OFF);
    /* The top-level ones are untouched. */
    ck_assert_str_eq(c->smtp.username, "relay");
    ck_assert(!c->mailbox.enabled);
    ck_assert_int_eq(c->contact_policy.cooldown_days, 0);
    ck_assert_int_eq(c->contact_policy.max_per_30_days, 0);
    wb_config_free(c);
}
END_TEST

START_TEST(test_sender_over_top_level_mailbox)
{
    edit("warmbench.json", "  \"bounce_domain\"",
         "  \"mailbox\": {\"url\": \"imap://in:143/INBOX\", \"username\": \"team\", "
         "\"password_file\": \"smtp.pw\", \"poll_s\": 30},\n  \"bounce_domain\"");
    edit("warmbench.json", "\"smtp\": {\"username\": \"cy\"}",
         "\"mailbox\": {\"username\": \"cy\", \"poll_s\": 10}");
    struct wb_config *c = load_ok();
    const struct wb_sender *bob = wb_config_sender(c, "bob");
    const struct wb_sender *cy = wb_config_sender(c, "cy");
    ck_assert(c->mailbox.enabled && bob->mailbox.enabled && !bob->own_mailbox);
    ck_assert_str_eq(bob->mailbox.username, "team");
    ck_assert(cy->own_mailbox && cy->mailbox.enabled);
    ck_assert_str_eq(cy->mailbox.url, "imap://in:143/INBOX");
    ck_assert_str_eq(cy->mailbox.username, "cy");
    ck_assert_str_eq(cy->mailbox.password, "RELAYPASSWORD");
    ck_assert_int_eq(cy->mailbox.poll_s, 10);
    ck_assert_int_eq(bob->mailbox.poll_s, 30);
    wb_config_free(c);
}
END_TEST

START_TEST(test_provider_resolution)
{
    edit("warmbench.json", "\"scope\": \"mail\"}}",
         "\"scope\": \"mail\"},\n"
         "    \"ms\": {\"token_url\": \"http://127.0.0.1:9/t\", \"device_url\": "
         "\"http://[::1]/d\", \"client_id\": \"m\", \"tokens_dir\": \"ms-tokens\"}}");
    edit("warmbench.json", "\"auth\": \"oauthbearer\", \"oauth\": \"google\"",
         "\"auth\": \"oauthbearer\", \"oauth\": \"ms\"");
    struct wb_config *c = load_ok();
    ck_assert_uint_eq(c->n_oauth, 2);
    const struct wb_oauth_provider *g = wb_config_oauth(c, "google"), *m = wb_config_oauth(c, "ms");
    ck_assert_ptr_null(wb_config_oauth(c, "nope"));
    ck_assert_str_eq(g->name, "google");
    ck_assert_str_eq(g->token_url, "https://oauth2.example.com/token");
    ck_assert_ptr_null(g->device_url);
    ck_assert_str_eq(g->client_id, "cid");
    ck_assert_str_eq(g->client_secret_file, "g.secret");
    ck_assert_str_eq(g->client_secret, "GOOGLESECRET");
    ck_assert_str_eq(g->scope, "mail");
    ck_assert_str_eq(g->tokens_dir, "tokens");
    ck_assert_str_eq(m->device_url, "http://[::1]/d");
    ck_assert_ptr_null(m->client_secret);
    ck_assert_ptr_null(m->scope);
    ck_assert_str_eq(m->tokens_dir, "ms-tokens");
    const struct wb_sender *ana = wb_config_sender(c, "ana");
    ck_assert_ptr_eq(ana->smtp.oauth, g);
    ck_assert_ptr_eq(ana->mailbox.oauth, m);
    wb_config_free(c);
}
END_TEST

/* A config in another folder resolves the secret and tokens_dir there. */
START_TEST(test_provider_paths_resolve)
{
    ck_assert_int_eq(mkdir("etc", 0755), 0);
    ck_assert_int_eq(rename("warmbench.json", "etc/warmbench.json"), 0);
    ck_assert_int_eq(rename("g.secret", "etc/g.secret"), 0);
    ck_assert_int_eq(rename("smtp.pw", "etc/smtp.pw"), 0);
    ck_assert_int_eq(rename("secret.key", "etc/secret.key"), 0);
    ck_assert_int_eq(rename("sequences", "etc/sequences"), 0);
    ck_assert_int_eq(rename("templates", "etc/templates"), 0);
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("etc/warmbench.json", &d);
    wb_diags_print(&d, stderr);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->oauth[0].client_secret_file, "etc/g.secret");
    ck_assert_str_eq(c->oauth[0].tokens_dir, "etc/tokens");
    wb_config_free(c);
    wb_diags_free(&d);
}
END_TEST

START_TEST(test_unknown_provider)
{
    edit("warmbench.json", "\"auth\": \"xoauth2\", \"oauth\": \"google\"",
         "\"auth\": \"xoauth2\", \"oauth\": \"gogle\"");
    expect_one("warmbench.json", "\"gogle\"", "unknown oauth provider \"gogle\" (known: google)");
}
END_TEST

START_TEST(test_unknown_provider_without_oauth_object)
{
    edit("warmbench.json", "\"oauth\": {\"google\": {\"token_url\": \"https://oauth2.example.com/"
         "token\",\n    \"client_id\": \"cid\", \"client_secret_file\": \"g.secret\", "
         "\"scope\": \"mail\"}},\n", "\n\n");
    expect_two("\"google\", \"connections\"",
               "unknown oauth provider \"google\" (there is no top-level \"oauth\" object)",
               "\"google\"}}",
               "unknown oauth provider \"google\" (there is no top-level \"oauth\" object)");
}
END_TEST

START_TEST(test_auth_without_credentials)
{
    edit("warmbench.json", "\"auth\": \"xoauth2\", \"oauth\": \"google\", ",
         "\"auth\": \"xoauth2\", ");
    edit("warmbench.json", "\"username\": \"ana@example.com\", \"auth\": \"oauthbearer\"",
         "\"auth\": \"oauthbearer\"");
    expect_two("\"xoauth2\"",
               "auth \"xoauth2\" needs \"oauth\" naming a provider of the top-level \"oauth\" "
               "object",
               "\"oauthbearer\"",
               "auth \"oauthbearer\" needs \"username\" (the account's address)");
}
END_TEST

START_TEST(test_password_auth_without_password_file)
{
    edit("warmbench.json", "\"username\": \"relay\", \"password_file\": \"smtp.pw\", ",
         "\"username\": \"relay\", ");
    /* At the top-level block, and at cy, who writes a username of his own;
     * not at bob, who only inherits the problem. */
    expect_two("\"relay\"", "auth \"password\" with a \"username\" needs \"password_file\"",
               "\"cy\"}", "auth \"password\" with a \"username\" needs \"password_file\"");
}
END_TEST

START_TEST(test_password_file_with_token_auth)
{
    edit("warmbench.json", "\"smtp\": {\"username\": \"cy\"}",
         "\"smtp\": {\"password_file\": \"smtp.pw\", \"auth\": \"oauthbearer\", "
         "\"oauth\": \"google\"}");
    expect_one("warmbench.json", "\"password_file\": \"smtp.pw\", \"auth\"",
               "\"password_file\" does not apply with auth \"oauthbearer\": the access token "
               "comes from the \"oauth\" provider (remove it, or use auth \"password\")");
}
END_TEST

START_TEST(test_oauth_with_password_auth_and_unknown_auth)
{
    edit("warmbench.json", "\"smtp\": {\"username\": \"cy\"}",
         "\"smtp\": {\"oauth\": \"google\"}");
    edit("warmbench.json", "\"auth\": \"oauthbearer\"", "\"auth\": \"oauth\"");
    /* A broken auth value is the one error of its block (no guesses from it). */
    expect_two("\"oauth\", \"oauth\"",
               "\"auth\" must be \"password\", \"xoauth2\" or \"oauthbearer\"",
               "\"oauth\": \"google\"}}\n",
               "\"oauth\" applies only with auth \"xoauth2\" or \"oauthbearer\" (auth here is "
               "\"password\")");
}
END_TEST

START_TEST(test_sender_mailbox_alone_needs_url)
{
    edit("warmbench.json", "\"smtp\": {\"username\": \"cy\"}",
         "\"mailbox\": {\"username\": \"cy\", \"password_file\": \"smtp.pw\"}");
    expect_one("warmbench.json", "{\"username\": \"cy\"",
               "missing key \"url\" (there is no top-level \"mailbox\" to take it from)");
}
END_TEST

START_TEST(test_sender_block_unknown_key_and_types)
{
    edit("warmbench.json", "\"smtp\": {\"username\": \"cy\"}",
         "\"smtp\": {\"username\": 5, \"conections\": 2}");
    expect_two("5,", "\"username\" must be a string", "\"conections\"",
               "unknown key \"conections\"");
}
END_TEST

START_TEST(test_token_url_rules)
{
    static const char *const good[] = {"https://a/t", "http://127.0.0.1:8080/t",
                                       "http://localhost/t", "http://[::1]:9/t",
                                       "http://localhost"};
    static const char *const bad[] = {"http://example.com/t", "http://localhost.evil.com/t",
                                      "http://127.0.0.1:80@evil.com/", "ftp://a/t", "https://"};
    for (size_t i = 0; i < 5; i++) {
        put("warmbench.json", CFG, 0644);
        char *u = wb_xasprintf("\"%s\"", good[i]);
        edit("warmbench.json", "\"https://oauth2.example.com/token\"", u);
        struct wb_config *c = load_ok();
        wb_config_free(c);
        free(u);
    }
    for (size_t i = 0; i < 5; i++) {
        put("warmbench.json", CFG, 0644);
        char *u = wb_xasprintf("\"%s\"", bad[i]);
        edit("warmbench.json", "\"https://oauth2.example.com/token\"", u);
        expect_one("warmbench.json", u,
                   "\"token_url\" must be an https:// URL (http:// only to 127.0.0.1, localhost "
                   "or [::1])");
        free(u);
    }
}
END_TEST

START_TEST(test_provider_problems)
{
    ck_assert_int_eq(chmod("g.secret", 0644), 0);
    edit("warmbench.json", "\"client_id\": \"cid\"", "\"client_id\": \"\", \"device_url\": "
         "\"http://x/d\", \"colour\": 1");
    int rc;
    char *err = run(&rc);
    ck_assert_int_eq(rc, 78);
    char *a = at("warmbench.json", "\"colour\"", "unknown key \"colour\"");
    char *b = at("warmbench.json", "\"\"", "\"client_id\" must not be empty");
    char *c = at("warmbench.json", "\"http://x/d\"",
                 "\"device_url\" must be an https:// URL (http:// only to 127.0.0.1, localhost "
                 "or [::1])");
    char *d = at("warmbench.json", "\"client_secret_file\"",
                 "secret file \"g.secret\" is readable by group or others (chmod 600 it)");
    char *want = wb_xasprintf("%s%s%s%s", b, c, a, d);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(strstr(err, "GOOGLESECRET"));
    free(a);
    free(b);
    free(c);
    free(d);
    free(want);
    free(err);
}
END_TEST

START_TEST(test_sender_ids)
{
    edit("warmbench.json", "\"bob\": {", "\"owner\": {");
    edit("warmbench.json", "\"ana\": {", "\"../ana\": {");
    edit("sequences/a.json", "\"bob\"", "\"cy\"");
    edit("sequences/a.json", "\"ana\"", "\"cy\"");
    expect_two("\"../ana\"",
               "sender \"../ana\" uses oauth, so its id names its token file: use letters, "
               "digits, ., -, _, @ and + (not first .)",
               "\"owner\": {",
               "a sender cannot be called \"owner\" (a sequence's \"sender\": \"owner\" means "
               "each candidate's owner)");
}
END_TEST

START_TEST(test_contact_policy)
{
    edit("warmbench.json", "  \"senders\"",
         "  \"contact_policy\": {\"cooldown_days\": 14, \"max_per_30_days\": 4},\n  \"senders\"");
    struct wb_config *c = load_ok();
    ck_assert_int_eq(c->contact_policy.cooldown_days, 14);
    ck_assert_int_eq(c->contact_policy.max_per_30_days, 4);
    wb_config_free(c);
    edit("warmbench.json", "\"cooldown_days\": 14, \"max_per_30_days\": 4",
         "\"cooldown_days\": 3651, \"max_per_30_days\": -1, \"max_per_day\": 1");
    int rc;
    char *err = run(&rc);
    char *a = at("warmbench.json", "\"max_per_day\"", "unknown key \"max_per_day\"");
    char *b = at("warmbench.json", "3651", "\"cooldown_days\" must be between 0 and 3650");
    char *d = at("warmbench.json", "-1", "\"max_per_30_days\" must be between 0 and 1000000000");
    char *want = wb_xasprintf("%s%s%s", b, d, a);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(rc, 78);
    free(a);
    free(b);
    free(d);
    free(want);
    free(err);
    edit("warmbench.json", "3651, \"max_per_30_days\": -1, \"max_per_day\": 1",
         "3650, \"max_per_30_days\": 0");
    c = load_ok();
    ck_assert_int_eq(c->contact_policy.cooldown_days, 3650);
    wb_config_free(c);
}
END_TEST

START_TEST(test_owner_and_fallback)
{
    struct wb_config *c = load_ok();
    const struct wb_sequence *q = wb_config_sequence(c, "a");
    ck_assert(q->sender_is_owner);
    ck_assert_str_eq(q->fallback_sender, "bob");
    const char *fb = NULL;
    ck_assert_ptr_null(wb_step_sender(q, 0, &fb));
    ck_assert_str_eq(fb, "bob");
    ck_assert_str_eq(wb_step_sender(q, 1, NULL), "cy");
    ck_assert(!q->steps[1].sender_is_owner);
    ck_assert_ptr_null(wb_step_sender(q, 2, &fb));
    ck_assert_str_eq(fb, "ana");
    wb_config_free(c);
}
END_TEST

START_TEST(test_owner_needs_fallback)
{
    edit("sequences/a.json", "  \"fallback_sender\": \"bob\",\n", "");
    edit("sequences/a.json", ", \"fallback_sender\": \"ana\"", "");
    char *a = at("sequences/a.json", "\"owner\"",
                 "\"sender\": \"owner\" needs \"fallback_sender\" (the sender for candidates "
                 "without an owner)");
    char *b = at("sequences/a.json", "\"owner\"}",
                 "\"sender\": \"owner\" needs \"fallback_sender\" (the sender for candidates "
                 "without an owner)");
    char *want = wb_xasprintf("%s%s", a, b);
    expect(want);
    free(a);
    free(b);
    free(want);
}
END_TEST

START_TEST(test_fallback_naming_no_sender)
{
    edit("sequences/a.json", "\"fallback_sender\": \"bob\"", "\"fallback_sender\": \"dan\"");
    edit("sequences/a.json", "\"sender\": \"cy\"", "\"sender\": \"eve\"");
    edit("sequences/a.json", "\"fallback_sender\": \"ana\"", "\"fallback_sender\": \"owner\"");
    int rc;
    char *err = run(&rc);
    char *a = at("sequences/a.json", "\"dan\"", "unknown sender \"dan\" in \"fallback_sender\"");
    char *b = at("sequences/a.json", "\"eve\"", "unknown sender \"eve\"");
    char *d = at("sequences/a.json", "\"owner\"}",
                 "\"fallback_sender\" must name a sender, not \"owner\"");
    char *want = wb_xasprintf("%s%s%s", a, b, d);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(rc, 78);
    free(a);
    free(b);
    free(d);
    free(want);
    free(err);
}
END_TEST

/* A step on "owner" under a named sequence sender needs its own fallback. */
START_TEST(test_step_owner_under_named_sender)
{
    edit("sequences/a.json", "\"sender\": \"owner\",\n  \"fallback_sender\": \"bob\",",
         "\"sender\": \"bob\",");
    edit("sequences/a.json", ", \"fallback_sender\": \"ana\"", "");
    expect_one("sequences/a.json", "\"owner\"}",
               "\"sender\": \"owner\" needs \"fallback_sender\" (the sender for candidates "
               "without an owner)");
}
END_TEST

Suite *wb_test_suite(void)
{
    if (!getcwd(root, sizeof root))
        abort();
    Suite *s = suite_create("config_senders");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_override_key_by_key);
    tcase_add_test(tc, test_sender_over_top_level_mailbox);
    tcase_add_test(tc, test_provider_resolution);
    tcase_add_test(tc, test_provider_paths_resolve);
    tcase_add_test(tc, test_unknown_provider);
    tcase_add_test(tc, test_unknown_provider_without_oauth_object);
    tcase_add_test(tc, test_auth_without_credentials);
    tcase_add_test(tc, test_password_auth_without_password_file);
    tcase_add_test(tc, test_password_file_with_token_auth);
    tcase_add_test(tc, test_oauth_with_password_auth_and_unknown_auth);
    tcase_add_test(tc, test_sender_mailbox_alone_needs_url);
    tcase_add_test(tc, test_sender_block_unknown_key_and_types);
    tcase_add_test(tc, test_token_url_rules);
    tcase_add_test(tc, test_provider_problems);
    tcase_add_test(tc, test_sender_ids);
    tcase_add_test(tc, test_contact_policy);
    tcase_add_test(tc, test_owner_and_fallback);
    tcase_add_test(tc, test_owner_needs_fallback);
    tcase_add_test(tc, test_fallback_naming_no_sender);
    tcase_add_test(tc, test_step_owner_under_named_sender);
    suite_add_tcase(s, tc);
    return s;
}
