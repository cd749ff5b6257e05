/* Turns a claimed message (candidate data from the claim query) and the
 * sequence's step into the strings of one outgoing mail: rendered subject
 * and parts, tracked links, open pixel, unsubscribe URL, Message-ID and the
 * VERP envelope sender. */
#ifndef WB_RENDER_H
#define WB_RENDER_H
#include <stdint.h>
#include <jansson.h>
#include "warmbench/config.h"
#include "warmbench/mime.h"

struct wb_claimed {
    int64_t id;
    int step;               /* 1-based */
    char *sequence;
    int attempts;
    char *message_id;       /* kept from an earlier attempt, or NULL */
    int64_t candidate_id;
    char *email, *first_name, *last_name, *title, *company, *location;
    json_t *attrs;          /* object, never NULL */
    char *thread_id;        /* Message-ID of step 1, or NULL */
    char *consent;          /* opt_in, legitimate_interest or NULL */
    char *source;           /* where the person came from (import's source), or NULL */
    char *sender;           /* the sender it was claimed for; NULL: the step's */
};

struct wb_rendered {
    int64_t id;
    int attempts;
    int variant;            /* -1 when the step has no variants */
    char *message_id, *rcpt, *envelope_from, *subject, *text, *html;
    char *in_reply_to, *unsub_url, *to_name;
    char *from_name, *from_email, *reply_to, *reply_to_name;
    char *feedback_id;      /* STEP:SEQUENCE:SENDER:warmbench */
};

/* Fills out; step 1 of a legitimate_interest candidate carries the
 * privacy notice (cfg->notice_*) at the end of each part. 0, or -1 with a reason in err (unknown sequence or sender,
 * step out of range). */
int wb_render(const struct wb_config *cfg, const struct wb_claimed *c, struct wb_rendered *out,
              char *err, size_t errsz);
/* wb_render for `preview`: warn(name, file, line, col, ud) for each field
 * that renders empty with no fallback. */
int wb_render_checked(const struct wb_config *cfg, const struct wb_claimed *c,
                      struct wb_rendered *out, char *err, size_t errsz, wb_field_empty_fn warn,
                      void *warn_ud);
/* A wb_mail view of r (pointers into r), dated now. */
void wb_rendered_mail(const struct wb_rendered *r, struct wb_mail *m);
void wb_rendered_free(struct wb_rendered *r);
void wb_claimed_free(struct wb_claimed *c);
/* The A/B variant of a candidate for a step: stable across reruns. */
int wb_variant_pick(int64_t candidate_id, int step, size_t n_variants);

#endif
