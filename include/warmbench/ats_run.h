/* A native handoff on the loop (SPEC "Native ATS adapters"): the vendor's
 * steps for one handoff, in sequence, on the curl loop; the progress
 * (step, adapter state, the person's ATS id) stored through
 * wb_ats_progress before each next request. A session is what the runs of
 * one engine share: the vendor and its api block, the access token (one
 * request for all runs that wait for it) and the rate-limit pace. The
 * outcome of an attempt goes back to the engine (handoff.c), which applies
 * the delivery rules (retries, backoff, max_attempts, the dead list). */
#ifndef WB_ATS_RUN_H
#define WB_ATS_RUN_H
#include <stdint.h>
#include <uv.h>
#include "warmbench/ats_vendor.h"
#include "warmbench/config.h"
#include "warmbench/curl_loop.h"
#include "warmbench/pg_loop.h"

/* A rate-limit wait longer than this ends the attempt as a retry then. */
#define WB_ATS_PACE_MAX_S 20.0
/* Each stored step extends the handoff's lease by this much. */
#define WB_ATS_LEASE_S 60

struct wb_ats_session;
struct wb_ats_run;

struct wb_ats_session *wb_ats_session_new(uv_loop_t *loop, struct wb_curl_loop *cl,
                                          struct wb_pg *pg, const char *owner);
/* The vendor and api block of cfg from now on (NULL vendor: kind webhook).
 * A changed configuration drops the token. */
void wb_ats_session_set_config(struct wb_ats_session *s, const struct wb_config *cfg);
const struct wb_ats_vendor *wb_ats_session_vendor(const struct wb_ats_session *s);
/* Every run must have ended or been cancelled. */
void wb_ats_session_free(struct wb_ats_session *s);

/* verdict is WB_ATS_DONE, WB_ATS_RETRY (retry_after_s at least) or
 * WB_ATS_DEAD; error (malloc'd, the callee's) says why; status is the last
 * HTTP status (0: none). */
typedef void (*wb_ats_run_done_fn)(void *ud, enum wb_ats_verdict verdict, long status,
                                   char *error, double retry_after_s);

struct wb_ats_run_args {
    int64_t id;                 /* handoffs.id */
    const char *payload;        /* the handoff body (JSON text) */
    const char *ats_kind;       /* handoffs.ats_kind: the kind the progress is of */
    int step;                   /* handoffs.ats_step */
    const char *state;          /* handoffs.ats_state (JSON text) */
    const char *ats_id;         /* candidate_ats.ats_id for this kind, NULL if none */
};

/* Starts an attempt; done is called exactly once, from the loop, unless
 * the run is cancelled first. The session must have a vendor. */
struct wb_ats_run *wb_ats_run_start(struct wb_ats_session *s, const struct wb_ats_run_args *a,
                                    wb_ats_run_done_fn done, void *ud);
/* Stops a run without calling done (its request is cancelled; the step
 * stored so far stands). */
void wb_ats_run_cancel(struct wb_ats_run *r);

/* ---- inbound lookups: an event without an address ---- */

/* rc 0: ev now holds what lookup_parse filled in; -1: try again later
 * (no answer, 5xx, 429, token trouble); -2: permanent (err says why). */
typedef void (*wb_ats_lookup_done_fn)(void *ud, int rc, const char *err);

/* Runs the session vendor's lookup_build/lookup_parse for ev (which stays
 * the caller's and must live until done), with the shared token and pace.
 * done is called exactly once, from the loop; also when the session is
 * freed first (rc -1). */
void wb_ats_lookup_start(struct wb_ats_session *s, struct wb_ats_inbound *ev,
                         wb_ats_lookup_done_fn done, void *ud);

#endif
