#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "warmbench/intent.h"

#define CORPUS WB_SQL_DIR "/../tests/corpus/replies_v1.json"

static struct wb_intent_rules *rules;

static void setup(void)
{
    char err[256] = "";
    char *path = wb_intent_path("/nonexistent-dir");
    rules = wb_intent_load(path, err, sizeof err);
    ck_assert_msg(rules != NULL, "%s", err);
    free(path);
}

static void teardown(void)
{
    wb_intent_free(rules);
}

START_TEST(test_corpus)
{
    json_error_t je;
    json_t *all = json_load_file(CORPUS, 0, &je);
    ck_assert_msg(all != NULL, "%s: %s", CORPUS, je.text);
    ck_assert_uint_ge(json_array_size(all), 40);
    size_t i, langs[4] = {0};
    json_t *c;
    json_array_foreach(all, i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *lang = json_string_value(json_object_get(c, "lang"));
        const char *want = json_string_value(json_object_get(c, "intent"));
        const char *text = json_string_value(json_object_get(c, "text"));
        ck_assert(id && lang && want && text);
        const char *got = wb_intent_name(wb_intent_classify(rules, text));
        ck_assert_msg(!strcmp(got, want), "%s: expected %s, got %s", id, want, got);
        const char *names[] = {"en", "de", "fr", "es"};
        for (int k = 0; k < 4; k++)
            langs[k] += !strcmp(lang, names[k]);
    }
    for (int k = 0; k < 4; k++)
        ck_assert_uint_ge(langs[k], 8);
    json_decref(all);
}
END_TEST

START_TEST(test_strip)
{
    char *s = wb_intent_strip("Yes!\n\n> quoted\nSure.\n-- \nSig line\n", 12);
    ck_assert_str_eq(s, "Yes!\nSure.\n");
    free(s);
    s = wb_intent_strip("Ok\nOn Mon, Jan 1, 2024 at 10:00 Ana <\na@x> wrote:\nold text\n", 12);
    ck_assert_str_eq(s, "Ok\n");
    free(s);
    s = wb_intent_strip("Gut\r\nAm 01.01.2024 um 10:00 schrieb Ana <a@x>:\r\nalt\r\n", 12);
    ck_assert_str_eq(s, "Gut\n");
    free(s);
    s = wb_intent_strip("Oui\nLe lun. 1 janv. 2024, Ana <a@x> a écrit :\nvieux\n", 12);
    ck_assert_str_eq(s, "Oui\n");
    free(s);
    s = wb_intent_strip("Sí\nEl lun, 1 ene 2024, Ana escribió:\nviejo\n", 12);
    ck_assert_str_eq(s, "Sí\n");
    free(s);
    s = wb_intent_strip("Fine\n-----Original Message-----\nFrom: a\n", 12);
    ck_assert_str_eq(s, "Fine\n");
    free(s);
    s = wb_intent_strip("Fine\n\nFrom: Ana <a@x>\nSent: today\nTo: me\n", 12);
    ck_assert_str_eq(s, "Fine\n");
    free(s);
    s = wb_intent_strip("a\nb\nc\nd\n", 2);
    ck_assert_str_eq(s, "a\nb\n");
    free(s);
    s = wb_intent_strip("", 2);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

static const char *cls(const char *t)
{
    return wb_intent_name(wb_intent_classify(rules, t));
}

START_TEST(test_negation_and_precedence)
{
    ck_assert_str_eq(cls("I'm interested"), "interested");
    ck_assert_str_eq(cls("I'm not interested"), "not_interested");
    ck_assert_str_eq(cls("Honestly I am not really interested"), "not_interested");
    ck_assert_str_eq(cls("No worries, very interested!"), "interested");
    ck_assert_str_eq(cls("Not now, but I'm interested later"), "interested");
    ck_assert_str_eq(cls("Je ne suis plus intéressé"), "not_interested");
    ck_assert_str_eq(cls("Ich bin NICHT interessiert"), "not_interested");
    ck_assert_str_eq(cls("Eso no me interesa"), "not_interested");
    ck_assert_str_eq(cls("Interested, but please unsubscribe my old address"), "unsubscribe");
    ck_assert_str_eq(cls("uninterested party"), "neutral");
    ck_assert_str_eq(cls("INTÉRESSÉ !"), "interested");
    ck_assert_str_eq(cls("Thanks"), "neutral");
    ck_assert_str_eq(cls(""), "neutral");
}
END_TEST

START_TEST(test_ooo_subjects)
{
    const char *yes[] = {"Out of Office: About backend", "Automatic reply: Hi",
                         "Abwesenheitsnotiz: Backend bei Example", "Réponse automatique : Bonjour",
                         "Respuesta automática: Hola", "AUTO-REPLY", "Re: hi (OOO until 12/3)",
                         "Je suis en congé", "Fuera de la oficina"};
    const char *no[] = {"Re: About backend at Example", "Re: Abwesenheit? Nein", "Booo"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(wb_intent_ooo_subject(rules, yes[i]), "%s", yes[i]);
    ck_assert(wb_intent_ooo_subject(rules, no[1])); /* a word hit is a hit */
    ck_assert(!wb_intent_ooo_subject(rules, no[0]));
    ck_assert(!wb_intent_ooo_subject(rules, no[2]));
    ck_assert(!wb_intent_ooo_subject(rules, NULL));
}
END_TEST

START_TEST(test_load_errors_and_path)
{
    char err[256], tmpl[] = "/tmp/wb-intent-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char file[300];
    snprintf(file, sizeof file, "%s/intent.json", tmpl);
    ck_assert_ptr_null(wb_intent_load(file, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "intent.json"));
    FILE *f = fopen(file, "w");
    fputs("{\"intents\": {\"unsubscribe\": [1]}}", f);
    fclose(f);
    ck_assert_ptr_null(wb_intent_load(file, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "unsubscribe"));
    f = fopen(file, "w");
    fputs("{\"intents\": {\"unsubscribe\": [\"Bye\"], \"not_interested\": [],"
          " \"interested\": {\"xx\": [\"Yay\"]}}, \"negations\": [],"
          " \"out_of_office_subjects\": []}", f);
    fclose(f);
    char *p = wb_intent_path(tmpl);
    ck_assert_str_eq(p, file); /* the config folder's own file wins */
    struct wb_intent_rules *r = wb_intent_load(p, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(wb_intent_classify(r, "yay!"), WB_INTENT_INTERESTED);
    ck_assert_int_eq(wb_intent_classify(r, "BYE"), WB_INTENT_UNSUBSCRIBE);
    wb_intent_free(r);
    free(p);
    unlink(file);
    rmdir(tmpl);
}
END_TEST

Suite *wb_test_suite(void)
{
    Suite *s = suite_create("intent");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_corpus);
    tcase_add_test(tc, test_strip);
    tcase_add_test(tc, test_negation_and_precedence);
    tcase_add_test(tc, test_ooo_subjects);
    tcase_add_test(tc, test_load_errors_and_path);
    suite_add_tcase(s, tc);
    return s;
}
