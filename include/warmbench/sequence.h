/* Sequence files (one JSON object each in sequences_dir) and the small
 * parsers they need. This module knows nothing of warmbench.json: the
 * loader gets the folders and the sender names as data (wb_seq_env). */
#ifndef WB_SEQUENCE_H
#define WB_SEQUENCE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "warmbench/diag.h"
#include "warmbench/ical.h"
#include "warmbench/jsonval.h"
#include "warmbench/template.h"

struct wb_link {
    char *name;
    char *url;
};

struct wb_variant {
    struct wb_template *subject, *text, *html; /* text or html may be NULL */
};

struct wb_step {
    long after_s;                 /* delay from the previous step's send */
    int after_bd;                 /* "3bd": business days (then after_s is 0); -1 when not */
    bool thread;                  /* reply in the thread of step 1 */
    struct wb_template *subject;
    struct wb_template *text;     /* NULL when the step has no text part */
    struct wb_template *html;     /* NULL when the step has no HTML part */
    struct wb_variant *variants;  /* A/B; n_variants == 0 when none */
    size_t n_variants;
    char *sender;                 /* "sender" at the step; NULL: the sequence's */
    bool sender_is_owner;         /* it is "owner" */
    char *fallback_sender;        /* "fallback_sender" at the step; NULL: the sequence's */
    struct wb_template *task;     /* a manual step ("task"): no mail parts; NULL for mail */
};

/* Closed days of the candidates of one country (window.holidays_by_country). */
struct wb_country_days {
    char code[3];           /* ISO 3166-1 alpha-2, upper case */
    struct wb_dayset days;
};

struct wb_window {
    uint8_t days;           /* bit 0 = Monday ... bit 6 = Sunday */
    int start_min;          /* minutes after local midnight */
    int end_min;            /* exclusive; > start_min */
    char *timezone;         /* IANA name, or NULL for "candidate" */
    char *fallback_timezone;/* for "candidate"; NULL = UTC */
    struct wb_dayset closed;            /* window.holidays: closed for everyone */
    struct wb_country_days *by_country; /* window.holidays_by_country */
    size_t n_by_country;
};

/* Holiday files are expanded from January 1 of the current year (UTC)
 * for this many years; the expansion is stored with the definition (as
 * window.closed_days and window.closed_days_by_country) for the SQL that
 * times the steps. */
#define WB_HOLIDAY_YEARS 3

struct wb_audience {
    char **tags_any;   size_t n_tags_any;
    char **skills_any; size_t n_skills_any;
    char **locations_any; size_t n_locations_any;
    char **sources_any; size_t n_sources_any;
    bool has_score_min, has_score_max;
    double score_min, score_max;
    int dormant_days;  /* 0 = not used */
    bool auto_enroll;
    bool exclusive;    /* default true */
};

struct wb_sequence {
    char *id;
    char *file;              /* path it was loaded from */
    char *sender;            /* key into wb_config.senders, or "owner" */
    bool sender_is_owner;    /* "sender": "owner": each candidate's owner mails them */
    char *fallback_sender;   /* for candidates without an owner; NULL when not set */
    struct wb_audience audience;
    struct wb_window window;
    struct wb_link *links;   size_t n_links;
    struct wb_step *steps;   size_t n_steps;
    char **stop_on;          size_t n_stop_on;    /* "reply", "click:apply", ... */
    char **handoff_on;       size_t n_handoff_on;
    bool paused;             /* "paused": true: nothing new is claimed (with `pause`) */
    int ooo_max_days;        /* longest out-of-office hold, days (default 30; 0: none) */
    char content_hash[65];   /* hex SHA-256 of the file and its templates */
    json_t *definition;      /* the parsed file, stored in the sequences table */
};

/* What loading the sequences needs from warmbench.json. */
struct wb_seq_env {
    const char *sequences_dir;   /* resolved */
    const char *templates_dir;   /* resolved */
    const char *tpl_dir_name;    /* templates_dir as written, for messages */
    const char *const *senders;  /* the sender ids a sequence may name */
    size_t n_senders;
    bool check_senders;          /* false when "senders" itself was broken */
};

/* Loads every *.json in env->sequences_dir, sorted by name (bytewise),
 * into a malloc'd *out of *n. cfg is warmbench.json, for errors about the
 * folder itself (at "/sequences_dir"). Every problem goes to diags. */
void wb_sequences_load(const struct wb_seq_env *env, struct wb_jv *cfg,
                       struct wb_sequence **out, size_t *n, struct wb_diags *diags);
void wb_sequence_free(struct wb_sequence *s);

const char *wb_sequence_link(const struct wb_sequence *s, const char *name);
/* Who sends step i (0-based): the sender id, or NULL when each candidate's
 * owner does; then *fallback (when not NULL) is set to the sender for
 * candidates without an owner (a loaded sequence always has one). */
const char *wb_step_sender(const struct wb_sequence *s, size_t i, const char **fallback);
/* "30m", "12h", "3d", "2w" (also "45s") → seconds; -1 when malformed. */
long wb_duration_parse(const char *s);
/* "3bd" (business days, 0..1000) → 3; -1 when not that form. */
int wb_bdays_parse(const char *s);
/* "HH:MM" (00:00..24:00) → minutes after midnight; -1 when malformed. */
int wb_clock_parse(const char *s);
/* "mon".."sun" → 0..6; -1 otherwise. */
int wb_day_parse(const char *s);
/* True when name is a zone file under $TZDIR (else /usr/share/zoneinfo):
 * a relative name without "..", not in the posix/ or right/ copies, naming
 * a regular file that starts with the "TZif" magic. "UTC" always passes. */
bool wb_tz_valid(const char *name);
/* reply, reply:<intent>, unsubscribe, bounce, click, click:<link>, open. */
bool wb_event_valid(const char *ev, const struct wb_sequence *s);

#endif
