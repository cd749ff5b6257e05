/* The IMAP poller (SPEC "Replies and bounces"): every mailbox.poll_s it
 * reads the messages that arrived since the last UID it stored, and records
 * replies (with their intent), automatic replies and bounces through
 * wb_record_events, in the same statement that advances mailbox_state, so a
 * restart neither misses nor repeats one. Its IMAP transfers run in a
 * worker thread of its own (curl_thread.h: libcurl's IMAP DONE phase
 * blocks), its SQL on the shared pg_loop; never blocks the loop, except
 * for up to about a second in drain or stop when a transfer is in flight.
 * It runs in the engine frame (engine.h): a round is one poll.
 *
 * Lifetime, for the daemon: create after the pg_loop, start once the
 * database is ready; on shutdown call wb_mailbox_drain and, once its
 * `done` has run, wb_mailbox_stop, before wb_pg_close. */
#ifndef WB_MAILBOX_H
#define WB_MAILBOX_H
#include <uv.h>
#include "warmbench/config.h"
#include "warmbench/oauth.h"
#include "warmbench/pg_loop.h"

struct wb_mailbox;

/* The poller of one mailbox: the top-level `mailbox` (sender NULL) or a
 * sender's own block (SPEC "Every recruiter's own mailbox"), each with its
 * own worker and its own mailbox_state row. A mailbox with auth xoauth2 or
 * oauthbearer logs in with the sender's access token from oauth; without
 * one a poll is skipped (kick it when the token comes). NULL (logged) when
 * the block is not enabled, its URL is unusable, the intent rules
 * (intent.json beside the config, else WB_SHARE_DIR) do not load or the
 * worker thread cannot start. cfg is not kept: what is needed is copied. */
struct wb_mailbox *wb_mailbox_new(uv_loop_t *loop, struct wb_pg *pg, const struct wb_config *cfg,
                                  const char *sender, struct wb_oauth *oauth);

/* A reloaded configuration: URL, credentials, poll_s, bounce domain,
 * secret and intent rules take effect at the next poll (the poll in flight
 * finishes with the old ones). When the new ones are unusable (bad URL,
 * intent.json that does not load, mailbox removed) that is logged and the
 * old ones are kept; to drop the mailbox, stop and free it. */
void wb_mailbox_set_config(struct wb_mailbox *m, const struct wb_config *cfg);

/* Polls begin (now), then every poll_s. */
void wb_mailbox_start(struct wb_mailbox *m);
/* Polls now; when a poll is in flight, another one right after it. */
void wb_mailbox_poll_now(struct wb_mailbox *m);

/* Stops polling: an IMAP transfer in flight is abandoned (nothing of it
 * was recorded; its messages are read again next time; the worker is
 * waited for, up to about a second), a statement in flight is waited for
 * (10 s at most). done(ud) then runs once, from the loop. */
void wb_mailbox_drain(struct wb_mailbox *m, void (*done)(void *ud), void *ud);

/* Releases everything (after drain's `done` has run, or instead of drain:
 * anything in flight is abandoned as in drain, and `done` never runs). The
 * memory goes from a later loop iteration, so run the loop once more before
 * uv_loop_close. NULL is ignored. */
void wb_mailbox_stop(struct wb_mailbox *m);

#endif
