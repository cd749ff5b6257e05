/* Manual steps (tasks.h): the "task" step key and its errors, the
 * "tasks" section, a task's text rendered with the template engine, the
 * key that signs task.due, and the webhook body's key order. Fixtures are
 * written into a fresh temp folder per test, as test_config.c does. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "warmbench/check_config.h"
#include "warmbench/config.h"
#include "warmbench/tasks.h"
#include "warmbench/util.h"

static char root[PATH_MAX];
static char tmp[64];

#define CFG_HEAD                                                                          \
    "{\"http\": {\"listen\": \"127.0.0.1:8025\", \"public_url\": \"http://127.0.0.1:8025\"},\n" \
    " \"secret_file\": \"secret.key\",\n"                                                 \
    " \"smtp\": {\"url\": \"smtp://127.0.0.1:2525\", \"tls\": \"off\"},\n"                 \
    " \"bounce_domain\": \"bounces.example.com\",\n"                                      \
    " \"senders\": {\"ana\": {\"from\": \"Ana Ruiz <ana@example.com>\"}}"

static const char SEQ[] =
    "{\"id\": \"s\", \"sender\": \"ana\",\n"
    " \"links\": {\"apply\": \"https://example.com/apply\"},\n"
    " \"steps\": [{\"after\": \"0d\", \"subject\": \"Hi\", \"text\": \"a.txt\"},\n"
    "   {\"after\": \"2d\", \"task\": \"Call {{first_name|them}} at {{company}} "
    "({{attrs.phone}}, {{links.apply}}) for {{sender.name}}\"}]}\n";

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0600), 0);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(getcwd(root, sizeof root));
    strcpy(tmp, "/tmp/wbtasks-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    ck_assert_int_eq(chdir(tmp), 0);
    ck_assert_int_eq(mkdir("sequences", 0755), 0);
    ck_assert_int_eq(mkdir("templates", 0755), 0);
    put("secret.key", "TOPSECRET-0123456789-0123456789abcdef\n");
    put("ats.key", "ats-key\n");
    put("tasks.key", "tasks-key\n");
    put("templates/a.txt", "Hello\n");
    put("warmbench.json", CFG_HEAD "}\n");
    put("sequences/s.json", SEQ);
}

static void teardown(void)
{
    if (chdir(root) == 0) {
        char *cmd = wb_xasprintf("rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
    }
}

static struct wb_config *load(void)
{
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load("warmbench.json", &d);
    wb_diags_print(&d, stderr);
    wb_diags_free(&d);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* check-config's stderr for the files as they are; 78 expected. */
static char *errors(void)
{
    char *err = NULL, *out = NULL;
    size_t en = 0, on = 0;
    FILE *o = open_memstream(&out, &on), *e = open_memstream(&err, &en);
    int rc = wb_check_config("warmbench.json", o, e);
    fclose(o);
    fclose(e);
    free(out);
    ck_assert_int_eq(rc, 78);
    return err;
}

START_TEST(test_task_step_loads_and_renders)
{
    struct wb_config *c = load();
    ck_assert_int_eq(c->tasks.expire_days, 7);
    ck_assert_ptr_null(c->tasks.webhook_url);
    ck_assert(wb_tasks_configured(c));
    const struct wb_sequence *s = wb_config_sequence(c, "s");
    ck_assert_ptr_null(s->steps[0].task);
    ck_assert_ptr_nonnull(s->steps[1].task);
    json_t *attrs = json_pack("{s:s}", "phone", "+49 30 1234");
    struct wb_task_fields f = {.sequence = "s", .step = 2, .sender = "ana", .email = "x@y.z",
                               .first_name = "", .last_name = "Ng", .title = "",
                               .company = "Initech", .location = "", .attrs = attrs};
    char err[256];
    char *text = wb_task_render(c, &f, err, sizeof err);
    ck_assert_str_eq(text, "Call them at Initech (+49 30 1234, https://example.com/apply) "
                           "for Ana Ruiz");
    free(text);
    /* A mail step, a step out of range, an unknown sender: no text, a reason. */
    f.step = 1;
    ck_assert_ptr_null(wb_task_render(c, &f, err, sizeof err));
    ck_assert_str_eq(err, "sequence \"s\" has no task at step 1 in the loaded configuration");
    f.step = 3;
    ck_assert_ptr_null(wb_task_render(c, &f, err, sizeof err));
    f.step = 2;
    f.sender = "bob";
    ck_assert_ptr_null(wb_task_render(c, &f, err, sizeof err));
    ck_assert_str_eq(err, "sender \"bob\" is not configured");
    json_decref(attrs);
    wb_config_free(c);
}
END_TEST

START_TEST(test_tasks_section_and_signing_key)
{
    put("warmbench.json", CFG_HEAD ",\n \"ats\": {\"webhook_url\": \"http://127.0.0.1:9/a\", "
                          "\"secret_file\": \"ats.key\"},\n"
                          " \"tasks\": {\"webhook_url\": \"http://127.0.0.1:9/t\", "
                          "\"expire_days\": 3}}\n");
    struct wb_config *c = load();
    ck_assert_str_eq(c->tasks.webhook_url, "http://127.0.0.1:9/t");
    ck_assert_int_eq(c->tasks.expire_days, 3);
    size_t n;
    const unsigned char *k = wb_tasks_secret(c, &n);
    ck_assert(n == 7 && !memcmp(k, "ats-key", 7)); /* no tasks.secret_file: the ATS key */
    wb_config_free(c);
    put("warmbench.json", CFG_HEAD ",\n \"tasks\": {\"webhook_url\": \"http://127.0.0.1:9/t\", "
                          "\"secret_file\": \"tasks.key\"}}\n");
    c = load();
    k = wb_tasks_secret(c, &n);
    ck_assert(n == 9 && !memcmp(k, "tasks-key", 9));
    wb_config_free(c);
    put("warmbench.json", CFG_HEAD ",\n \"tasks\": {}}\n");
    c = load();
    ck_assert_ptr_null(wb_tasks_secret(c, &n)); /* unsigned, as the ATS webhook without a key */
    /* Without "ats", task.due still gets the ATS webhook's retry rules. */
    ck_assert(!c->ats.enabled);
    ck_assert_int_eq(c->ats.max_attempts, 12);
    ck_assert_int_eq(c->ats.retry_base_s, 10);
    wb_config_free(c);
}
END_TEST

START_TEST(test_tasks_section_errors)
{
    put("warmbench.json", CFG_HEAD ",\n \"tasks\": {\"webhook_url\": \"ftp://x\", "
                          "\"expire_days\": 0, \"every\": 1}}\n");
    char *err = errors();
    ck_assert_ptr_nonnull(strstr(err, "\"webhook_url\" must be an http(s) URL"));
    ck_assert_ptr_nonnull(strstr(err, "expire_days"));
    ck_assert_ptr_nonnull(strstr(err, "every"));
    free(err);
}
END_TEST

START_TEST(test_task_step_errors)
{
    put("sequences/s.json",
        "{\"id\": \"s\", \"sender\": \"ana\",\n"
        " \"steps\": [{\"after\": \"0d\", \"task\": \"first\"},\n"
        "   {\"after\": \"1d\", \"task\": \"Hi\", \"subject\": \"x\"},\n"
        "   {\"after\": \"1d\", \"task\": \"{{unsubscribe_url}}\"},\n"
        "   {\"after\": \"1d\", \"task\": \"\"},\n"
        "   {\"after\": \"1d\", \"task\": 5}]}\n");
    char *err = errors();
    ck_assert_ptr_nonnull(strstr(err, "sequences/s.json:2:36: step 1 cannot be a \"task\""));
    ck_assert_ptr_nonnull(strstr(err, "sequences/s.json:3:28: a step has either mail parts or a "
                                      "\"task\", not both (remove \"subject\" or \"task\")"));
    ck_assert_ptr_nonnull(strstr(err, "unsubscribe_url"));
    ck_assert_ptr_nonnull(strstr(err, "\"task\" must not be empty"));
    ck_assert_ptr_nonnull(strstr(err, "sequences/s.json:6:28:"));
    /* A task step needs no subject or body of its own. */
    ck_assert_ptr_null(strstr(err, "missing key \"subject\""));
    ck_assert_ptr_null(strstr(err, "needs \"text\" or \"html\""));
    free(err);
}
END_TEST

START_TEST(test_body_key_order)
{
    /* As jsonb stores it: keys by length, then bytes. */
    const char *stored =
        "{\"id\": \"k-1\", \"step\": 2, \"task\": {\"id\": 7, \"text\": \"Call\", \"due_at\": \"a\","
        " \"expires_at\": \"b\"}, \"type\": \"task.due\", \"sender\": {\"id\": \"ana\"},"
        " \"sequence\": \"s\", \"candidate\": {\"tags\": [], \"attrs\": {}, \"email\": \"e\","
        " \"title\": \"\", \"company\": \"\", \"last_name\": \"\", \"first_name\": \"F\"},"
        " \"occurred_at\": \"t\"}";
    char *body = wb_task_body(stored);
    ck_assert_str_eq(body,
                     "{\"type\":\"task.due\",\"id\":\"k-1\",\"occurred_at\":\"t\","
                     "\"task\":{\"id\":7,\"text\":\"Call\",\"due_at\":\"a\",\"expires_at\":\"b\"},"
                     "\"candidate\":{\"email\":\"e\",\"first_name\":\"F\",\"last_name\":\"\","
                     "\"title\":\"\",\"company\":\"\",\"tags\":[],\"attrs\":{}},"
                     "\"sequence\":\"s\",\"step\":2,\"sender\":{\"id\":\"ana\"}}");
    free(body);
    /* What Jansson cannot read goes as stored: the same bytes on every retry. */
    body = wb_task_body("{\"id\": 123456789012345678901234567890}");
    ck_assert_str_eq(body, "{\"id\": 123456789012345678901234567890}");
    free(body);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("tasks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_task_step_loads_and_renders);
    tcase_add_test(tc, test_tasks_section_and_signing_key);
    tcase_add_test(tc, test_tasks_section_errors);
    tcase_add_test(tc, test_task_step_errors);
    tcase_add_test(tc, test_body_key_order);
    suite_add_tcase(s, tc);
    return s;
}
