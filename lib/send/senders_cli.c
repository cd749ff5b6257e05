/* `warmbench senders` (see senders_cli.h). PostgreSQL counts, per sender
 * named in the configuration: the day's claims from sender_usage (what
 * daily_limit is held against), the last 7 days' mail that reached a
 * server with its hard bounces and complaints (sender_stats), the days
 * since its first send (warm-up), a pause (sender_guard) and the OAuth
 * state the token keeper stored in sender_state. The configuration adds
 * the limits, the auth and the mailbox. */
#include "warmbench/senders_cli.h"
#include "warmbench/db.h"
#include "warmbench/exitcodes.h"
#include "warmbench/guard.h"
#include "warmbench/util.h"
#include <stdlib.h>
#include <string.h>

/* $1: the sender names as a JSON array, in configuration order. The
 * rates are of the last 7 UTC days' mail (sender_stats, kept by the
 * statements that store outcomes and events). */
static const char senders_sql[] =
    "WITH s AS (SELECT name, ord FROM json_array_elements_text($1::json)"
    "   WITH ORDINALITY AS u(name, ord)),"
    " w AS (SELECT t.sender, sum(t.sent) AS sent, sum(t.hard_bounces) AS bounced,"
    "   sum(t.complaints) AS complained FROM sender_stats t"
    "   WHERE t.day > (now() AT TIME ZONE 'UTC')::date - 7"
    "   AND t.sender IN (SELECT name FROM s) GROUP BY t.sender),"
    " f AS (SELECT t.sender, (now() AT TIME ZONE 'UTC')::date - min(t.day) AS days"
    "   FROM sender_stats t WHERE t.sent > 0 AND t.sender IN (SELECT name FROM s)"
    "   GROUP BY t.sender)"
    " SELECT coalesce(json_agg(json_build_object("
    "   'sender', s.name, 'sent_today', coalesce(u.sent, 0),"
    "   'sent_7d', coalesce(w.sent, 0), 'bounced_7d', coalesce(w.bounced, 0),"
    "   'complained_7d', coalesce(w.complained, 0), 'days_sending', f.days,"
    "   'paused', g.paused_reason, 'paused_at', g.paused_at,"
    "   'oauth_state', st.state, 'reason', nullif(st.reason, ''),"
    "   'state_since', st.updated_at) ORDER BY s.ord), '[]')"
    " FROM s"
    " LEFT JOIN sender_usage u ON u.sender = s.name"
    "   AND u.day = (now() AT TIME ZONE 'UTC')::date"
    " LEFT JOIN w ON w.sender = s.name"
    " LEFT JOIN f ON f.sender = s.name"
    " LEFT JOIN sender_guard g ON g.sender = s.name"
    " LEFT JOIN sender_state st ON st.sender = s.name";

static const char *const AUTH_NAMES[] = {"password", "xoauth2", "oauthbearer"};

static bool snd_uses_oauth(const struct wb_sender *s)
{
    return s->smtp.auth != WB_AUTH_PASSWORD ||
           (s->mailbox.enabled && s->mailbox.auth != WB_AUTH_PASSWORD);
}

/* paused (by the guard or an operator) first, then what the token keeper
 * last stored for an OAuth sender ("unknown" before it has stored
 * anything), then warming_up while warm-up holds the day's limit below
 * daily_limit; else ok. */
static void snd_state(const struct wb_sender *s, json_t *row, int limit_today)
{
    json_t *st = json_object_get(row, "oauth_state");
    json_t *paused = json_object_get(row, "paused");
    const char *oauth = !snd_uses_oauth(s) ? "ok" : json_is_string(st) ? json_string_value(st)
                                                                       : "unknown";
    const char *state = oauth;
    if (json_is_string(paused)) {
        state = "paused";
        json_object_set(row, "reason", paused);
    } else if (!strcmp(oauth, "ok") && s->warmup.enabled &&
               (s->daily_limit == 0 || limit_today < s->daily_limit)) {
        state = "warming_up";
    } else if (snd_uses_oauth(s) && !json_is_string(st)) {
        json_object_set_new(row, "reason",
                            json_string("the daemon has not used its token yet"));
    }
    json_object_set_new(row, "state", json_string(state));
    json_object_set_new(row, "oauth_state", snd_uses_oauth(s) ? json_string(oauth) : json_null());
    if (!snd_uses_oauth(s))
        json_object_del(row, "state_since");
    if (!json_is_string(paused)) {
        json_object_del(row, "paused");
        json_object_del(row, "paused_at");
    }
}

/* What the configuration says about one sender, beside the counts. */
static void snd_add_config(const struct wb_config *cfg, const struct wb_sender *s, json_t *row)
{
    json_object_set_new(row, "daily_limit",
                        s->daily_limit ? json_integer(s->daily_limit) : json_null());
    json_t *days = json_object_get(row, "days_sending");
    int limit = wb_warmup_limit(s, json_is_integer(days) ? (int)json_integer_value(days) : -1);
    json_object_set_new(row, "limit_today", limit ? json_integer(limit) : json_null());
    long long sent = json_integer_value(json_object_get(row, "sent_7d"));
    long long bounced = json_integer_value(json_object_get(row, "bounced_7d"));
    long long complained = json_integer_value(json_object_get(row, "complained_7d"));
    json_object_set_new(row, "bounce_rate_7d",
                        sent ? json_real((double)bounced / (double)sent) : json_null());
    json_object_set_new(row, "complaint_rate_7d",
                        sent ? json_real((double)complained / (double)sent) : json_null());
    json_object_set_new(row, "smtp_auth", json_string(AUTH_NAMES[s->smtp.auth]));
    json_object_set_new(row, "mailbox",
                        json_string(s->own_mailbox ? "own"
                                    : cfg->mailbox.enabled ? "shared" : "none"));
    snd_state(s, row, limit);
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
    json_t *lim = json_object_get(r, "limit_today");
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
