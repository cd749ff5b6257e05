/* The daemon's SQL, in one place. Every state transition of messages and
 * enrollments is one statement, so a crash between two of them leaves the
 * tables consistent (ARCHITECTURE.md, "State machines"). */
#ifndef WB_QUERIES_H
#define WB_QUERIES_H

/* Claims and returns the data to render. $1 sender, $2 batch, $3 daily_limit,
 * $4 min_interval_s, $5 owner, $6 lease seconds, $7 the Message-IDs'
 * domain. Columns: see WB_CLAIM_*. */
extern const char *const wb_q_claim;
enum {
    WB_CLAIM_ID, WB_CLAIM_STEP, WB_CLAIM_SEQUENCE, WB_CLAIM_ATTEMPTS, WB_CLAIM_MESSAGE_ID,
    WB_CLAIM_CANDIDATE_ID, WB_CLAIM_EMAIL, WB_CLAIM_FIRST_NAME, WB_CLAIM_LAST_NAME,
    WB_CLAIM_TITLE, WB_CLAIM_COMPANY, WB_CLAIM_LOCATION, WB_CLAIM_ATTRS, WB_CLAIM_THREAD_ID,
    WB_CLAIM_CONSENT, WB_CLAIM_SOURCE, WB_CLAIM_NCOLS
};
/* The window's one statement (wb_send_window): marks claimed messages
 * `sending` (wb_mark_sending: a compare-and-set on our own claim and the
 * claim's Message-ID, only while the enrollment is active; repeatable) and
 * stages outcomes (into the rows themselves, migration 032), in one transaction. $1 ids, $2
 * Message-IDs, $3 recipients, $4 subjects, $5 variants, $6 owner, $7 lease
 * seconds; $8 outcome ids, $9 outcomes (sent|retry|failed|bounce|unknown;
 * unknown: the connection broke after the data, the sequence goes on as if
 * sent), $10 SMTP codes, $11 reply lines, $12 retry delays (s). Rows: the
 * ids that may be sent now. */
extern const char *const wb_q_send_window;
/* Applies the staged outcomes of the messages $3 (up to $2 of them) to
 * messages, events and enrollments (wb_apply_outcomes → wb_store_outcomes;
 * $1 our owner: a claimed row of ours may fail before SMTP, e.g. when it
 * cannot be rendered; $3 NULL: every row $1 staged, found through its
 * claims). Row: count taken, seconds until the earliest next
 * step or retry it scheduled (NULL when none). */
extern const char *const wb_q_apply_outcomes;
/* claimed → queued for rows we will not send (shutdown). $1 ids, $2 owner. */
extern const char *const wb_q_release;
/* Expired leases, and every lease of a daemon whose liveness lock is gone
 * (wb_recover; $1 our owner, never taken as dead): staged outcomes
 * applied, claimed → queued, sending → unknown; queued messages of ended
 * enrollments → cancelled; due enrollments past their sequence's last step
 * (it was shortened) → finished. Row: requeued, lost (now unknown),
 * cancelled. */
extern const char *const wb_q_recover;
/* $1 owner: takes the owner's session-level advisory lock (wb_owner_lock),
 * by which other daemons know this one lives. Row: t or f. */
extern const char *const wb_q_owner_lock;
/* Seconds until the next due enrollment or message (NULL when none). */
extern const char *const wb_q_next_wake;

#endif
