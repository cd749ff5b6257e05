/* `warmbench senders` (see senders_cli.h). PostgreSQL counts, per sender
 * named in the configuration: the day's claims from sender_usage (what
 * daily_limit is held against), the last 7 days' sent messages and how
 * many of them bounced, and the OAuth state the token keeper stored in
 * sender_state. The configuration adds the limit, the auth and the mailbox. */
#include "warmbench/senders_cli.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

/* $1: the sender names as a JSON array, in configuration order. A bounce
 * counts against the messages sent in the same 7 days, so the rate stays
 * within 0..1; the one scan of messages is the 7 days' sends. */
static const char senders_sql[] =
    "WITH s AS (SELECT name, ord FROM json_array_elements_text($1::json)"
    "   WITH ORDINALITY AS u(name, ord)),"
    " w AS (SELECT m.sender, count(*) AS sent,"
    "   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM events e"
    "     WHERE e.message_id = m.id AND e.type = 'bounce')) AS bounced"
    "   FROM messages m WHERE m.sent_at >= now() - interval '7 days'"
    "   AND m.sender IN (SELECT name FROM s) GROUP BY m.sender)"
    " SELECT coalesce(json_agg(json_build_object("
    "   'sender', s.name, 'sent_today', coalesce(u.sent, 0),"
    "   'sent_7d', coalesce(w.sent, 0), 'bounced_7d', coalesce(w.bounced, 0),"
    "   'oauth_state', st.state, 'reason', nullif(st.reason, ''),"
    "   'state_since', st.updated_at) ORDER BY s.ord), '[]')"
    " FROM s"
    " LEFT JOIN sender_usage u ON u.sender = s.name"
    "   AND u.day = (now() AT TIME ZONE 'UTC')::date"
    " LEFT JOIN w ON w.sender = s.name"
    " LEFT JOIN sender_state st ON st.sender = s.name";

static const char *const AUTH_NAMES[] = {"password", "xoauth2", "oauthbearer"};

static bool snd_uses_oauth(const struct wb_sender *s)
{
    return s->smtp.auth != WB_AUTH_PASSWORD ||
           (s->mailbox.enabled && s->mailbox.auth != WB_AUTH_PASSWORD);
}

/* A password sender has nothing that can lapse; an OAuth sender is what
 * the token keeper last stored, "unknown" before it has stored anything. */
static void snd_state(const struct wb_sender *s, json_t *row)
{
    json_t *st = json_object_get(row, "oauth_state");
    const char *state = !snd_uses_oauth(s) ? "ok" : json_is_string(st) ? json_string_value(st)
                                                                       : "unknown";
    json_object_set_new(row, "state", json_string(state));
    if (snd_uses_oauth(s) && !json_is_string(st))
        json_object_set_new(row, "reason",
                            json_string("the daemon has not used its token yet"));
    json_object_del(row, "oauth_state");
    if (!snd_uses_oauth(s))
        json_object_del(row, "state_since");
}

/* What the configuration says about one sender, beside the counts. */
static void snd_add_config(const struct wb_config *cfg, const struct wb_sender *s, json_t *row)
{
    json_object_set_new(row, "daily_limit",
                        s->daily_limit ? json_integer(s->daily_limit) : json_null());
    long long sent = json_integer_value(json_object_get(row, "sent_7d"));
    long long bounced = json_integer_value(json_object_get(row, "bounced_7d"));
    json_object_set_new(row, "bounce_rate_7d",
                        sent ? json_real((double)bounced / (double)sent) : json_null());
    json_object_set_new(row, "smtp_auth", json_string(AUTH_NAMES[s->smtp.auth]));
    json_object_set_new(row, "mailbox",
                        json_string(s->own_mailbox ? "own"
                                    : cfg->mailbox.enabled ? "shared" : "none"));
    snd_state(s, row);
}

json_t *wb_senders_query(PGconn *c, const struct wb_config *cfg)
{
    json_t *names = json_array();
    for (size_t i = 0; i < cfg->n_senders; i++)
        json_array_append_new(names, json_string(cfg->senders[i].id));
    char *arg = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    const char *p[] = {arg};
    json_t *doc = wb_db_json(c, "reading sender figures", senders_sql, 1, p);
    free(arg);
    if (!doc)
        return NULL;
    size_t n = json_array_size(doc);
    if (n != cfg->n_senders) {
        fprintf(stderr, "warmbench: senders: expected %zu rows, got %zu\n", cfg->n_senders, n);
        json_decref(doc);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        snd_add_config(cfg, &cfg->senders[i], json_array_get(doc, i));
    return doc;
}

/* A reason came from a server: no control bytes reach the terminal. */
static char *snd_printable(const char *s)
{
    char *out = wb_xstrdup(s ? s : "");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return out;
}

static void snd_print_row(FILE *out, json_t *r)
{
    json_t *lim = json_object_get(r, "daily_limit");
    char *today = json_is_integer(lim)
                      ? wb_xasprintf("%lld/%lld",
                                     json_integer_value(json_object_get(r, "sent_today")),
                                     json_integer_value(lim))
                      : wb_xasprintf("%lld/-",
                                     json_integer_value(json_object_get(r, "sent_today")));
    json_t *rate = json_object_get(r, "bounce_rate_7d");
    char *bounces = json_is_real(rate)
                        ? wb_xasprintf("%.1f%% (%lld of %lld)", 100.0 * json_real_value(rate),
                                       json_integer_value(json_object_get(r, "bounced_7d")),
                                       json_integer_value(json_object_get(r, "sent_7d")))
                        : wb_xstrdup("- (none sent)");
    char *name = snd_printable(json_string_value(json_object_get(r, "sender")));
    char *reason = snd_printable(json_string_value(json_object_get(r, "reason")));
    fprintf(out, "%-16s %-12s %-12s %-11s %-22s %-7s %s\n", name,
            json_string_value(json_object_get(r, "state")), today,
            json_string_value(json_object_get(r, "smtp_auth")), bounces,
            json_string_value(json_object_get(r, "mailbox")), reason);
    free(name);
    free(reason);
    free(today);
    free(bounces);
}

int wb_cmd_senders(PGconn *c, const struct wb_config *cfg, bool json, FILE *out)
{
    json_t *doc = wb_senders_query(c, cfg);
    if (!doc)
        return WB_EXIT_FAIL;
    if (json) {
        json_t *wrap = json_pack("{s:O}", "senders", doc);
        json_dumpf(wrap, out, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        fputc('\n', out);
        json_decref(wrap);
    } else {
        fprintf(out, "%-16s %-12s %-12s %-11s %-22s %-7s %s\n", "SENDER", "STATE", "TODAY/LIMIT",
                "SMTP AUTH", "BOUNCES (7 DAYS)", "MAILBOX", "REASON");
        size_t i;
        json_t *r;
        json_array_foreach(doc, i, r)
            snd_print_row(out, r);
    }
    json_decref(doc);
    return WB_EXIT_OK;
}
