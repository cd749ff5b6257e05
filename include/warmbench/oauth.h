/* The OAuth 2.0 token keeper (SPEC "Every recruiter's own mailbox"): an
 * engine on the daemon's loop that holds, per account (a sender and its
 * provider), the current access token. It runs the refresh_token grant
 * with curl_loop; renews at 80% of expires_in; renews once at once when the
 * caller reports that a server refused the token; backs off on 5xx and
 * network errors (exponential, jittered, Retry-After honoured; mail waits);
 * stores a rotated refresh token atomically (oauth_store.h, on libuv's
 * thread pool); and on `invalid_grant`, or a missing token file, puts the
 * account in `needs_login` (log line, metric, the sender_state row).
 *
 * A new login is noticed without a restart: while an account needs a login
 * (and before every renewal) the keeper stat()s its token file and reads it
 * again when it changed; wb_oauth_kick (e.g. on NOTIFY wb_sender_state, sent
 * by `warmbench login`) looks at once.
 *
 * Tokens never reach a log line, an error text or the database. Everything
 * here runs on the loop thread; SMTP workers get a copy of the token. */
#ifndef WB_OAUTH_H
#define WB_OAUTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "warmbench/buf.h"
#include "warmbench/config.h"
#include "warmbench/curl_loop.h"
#include "warmbench/pg_loop.h"

struct wb_oauth;

enum wb_oauth_state {
    WB_OAUTH_OK,            /* a usable access token is held */
    WB_OAUTH_WAITING,       /* none right now: being obtained, or backing off after an error */
    WB_OAUTH_NEEDS_LOGIN,   /* invalid_grant or no token file: `warmbench login SENDER` */
};
const char *wb_oauth_state_name(enum wb_oauth_state s); /* "ok", "waiting", "needs_login" */

/* One account the keeper serves. Both strings and the provider must live
 * as long as the keeper (they point into the config). */
struct wb_oauth_account {
    const char *sender;                         /* names the token file: tokens_dir/SENDER.json */
    const struct wb_oauth_provider *provider;
};

/* Every (sender, provider) the config's senders use for SMTP or IMAP with
 * auth xoauth2/oauthbearer, once each (malloc'd; *n may be 0). */
struct wb_oauth_account *wb_oauth_accounts_from_config(const struct wb_config *cfg, size_t *n);

/* Called on the loop when an account's state changes or a new access token
 * arrives (the caller may now take it: kick the senders that waited). */
typedef void (*wb_oauth_change_fn)(void *ud, const char *sender, enum wb_oauth_state state);

/* pg may be NULL (no sender_state rows then). Reads every token file now:
 * returns NULL with *err (malloc'd, naming the file) when one has looser
 * permissions than 0600 or cannot be read at all: a configuration error
 * (exit 78); run the loop once more then, to free what it set up. A
 * missing file is no error: that account needs a login. */
struct wb_oauth *wb_oauth_new(uv_loop_t *loop, struct wb_curl_loop *cl, struct wb_pg *pg,
                              const struct wb_oauth_account *acc, size_t n,
                              wb_oauth_change_fn on_change, void *ud, char **err);
/* First tokens are asked for at once. */
void wb_oauth_start(struct wb_oauth *k);
/* Look again now (a token file may have changed, the database is back). */
void wb_oauth_kick(struct wb_oauth *k);

/* A usable access token for the sender (provider NULL: the sender's first
 * account), or NULL: the caller waits for on_change. The string is valid
 * until control returns to the loop; copy it for a worker thread. */
const char *wb_oauth_token(struct wb_oauth *k, const char *sender, const char *provider);

/* A server refused `token` (SMTP 535, IMAP NO on AUTHENTICATE). When it is
 * still the current token, it is dropped and renewed once at once; a token
 * that was itself such a renewal is not renewed again (it is counted and
 * logged: the account's username or scope is wrong, not the token's age). */
void wb_oauth_auth_failed(struct wb_oauth *k, const char *sender, const char *provider,
                          const char *token);

struct wb_oauth_status {
    const char *sender, *provider;
    enum wb_oauth_state state;
    const char *error;          /* the last problem ("" none); never a token */
    double expires_in_s;        /* of the held access token; 0 when none */
    uint64_t renewals;          /* access tokens obtained */
    uint64_t renew_failures;    /* grants that failed (any reason) */
    uint64_t auth_failures;     /* wb_oauth_auth_failed calls */
};
size_t wb_oauth_count(const struct wb_oauth *k);
/* false when i is out of range. Pointers are valid until the next loop turn. */
bool wb_oauth_status(const struct wb_oauth *k, size_t i, struct wb_oauth_status *st);
/* The state of a sender (worst of its accounts), or -1 when it has none. */
int wb_oauth_sender_state(const struct wb_oauth *k, const char *sender);

/* Prometheus text: warmbench_sender_oauth_state{sender,state} (1 for the
 * current one), warmbench_oauth_token_renewals_total{sender},
 * warmbench_oauth_renew_failures_total{sender},
 * warmbench_oauth_auth_failures_total{sender}. */
void wb_oauth_metrics(const struct wb_oauth *k, struct wb_buf *out);

/* Cancels grants in flight; frees everything once the loop has let go of
 * the timers and a token file being written is on disk (run the loop once
 * more). Before or after wb_curl_loop_free and wb_pg_close. */
void wb_oauth_stop(struct wb_oauth *k);

#endif
