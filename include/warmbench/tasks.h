/* Manual steps (SPEC "The sourcer's controls"): a step with "task" sends
 * no mail. When it falls due (timed as mail steps are), the daemon makes
 * one task for the step's sender and the enrollment waits until the task
 * is done, skipped or expired (sql/functions/062_tasks.sql). This module
 * is the daemon's part, an engine on the shared connection (the scheduler
 * runs it): sweep (expiry, ended enrollments) → claim due task steps →
 * render their texts with the sequence's templates → publish them, which
 * queues the signed task.due webhook when tasks.webhook_url is set (the
 * handoff engine delivers it, with the ATS webhook's retry rules). */
#ifndef WB_TASKS_H
#define WB_TASKS_H
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/pg_loop.h"

struct wb_tasks;

/* owner names this daemon in render leases; it is copied. */
struct wb_tasks *wb_tasks_new(uv_loop_t *loop, struct wb_pg *pg, const struct wb_config *cfg,
                              const char *owner);
void wb_tasks_set_config(struct wb_tasks *t, const struct wb_config *cfg);
/* Rounds begin; then at least every 30 s, at the next expiry, and when kicked. */
void wb_tasks_start(struct wb_tasks *t);
/* Something may be due (NOTIFY wb_enrollments, a reconnect); debounced. */
void wb_tasks_kick(struct wb_tasks *t);
/* Frees it once the loop has closed its timers; after the database
 * connection is closed (a statement in flight then gets its NULL result).
 * A task claimed but not published is taken over when its lease ends. */
void wb_tasks_stop(struct wb_tasks *t);

/* What a task's text is rendered from: the candidate's columns. */
struct wb_task_fields {
    const char *sequence;
    int step;                 /* 1-based */
    const char *sender;       /* the sender it was made for */
    const char *email, *first_name, *last_name, *title, *company, *location;
    json_t *attrs;            /* object or NULL */
};

/* The step's task text for f, with the template engine mail uses; links
 * are their plain URLs (the sourcer follows them, not the candidate).
 * NULL and a reason in err when the loaded configuration has no such task
 * step or sender. */
char *wb_task_render(const struct wb_config *cfg, const struct wb_task_fields *f, char *err,
                     size_t errsz);

/* The key that signs task.due: tasks.secret_file's, else the ATS one
 * (NULL when neither is set: the webhook goes unsigned, with a warning). */
const unsigned char *wb_tasks_secret(const struct wb_config *cfg, size_t *len);

/* The stored task.due payload as the POST body, keys in SPEC's order
 * (jsonb keeps its own); the stored text itself when it cannot be read. */
char *wb_task_body(const char *payload);

/* True when any loaded sequence has a task step. */
bool wb_tasks_configured(const struct wb_config *cfg);

#endif
