/* `warmbench login SENDER`: the OAuth 2.0 device authorization grant
 * (RFC 8628) for each provider the sender's smtp/mailbox blocks name. It
 * prints the verification URL and the user code, polls the token endpoint
 * at the server's interval (slow_down adds 5 s; the code's expires_in ends
 * it), stores the refresh token in tokens_dir/SENDER.json (mode 0600,
 * replaced atomically, oauth_store.h), then marks the sender `ok` in
 * sender_state and sends NOTIFY wb_sender_state with the sender's id: a
 * running daemon reads the new file at once (and within 2 s without it).
 * Blocking libcurl easy: this is the command-line tool, not the loop. */
#ifndef WB_LOGIN_CLI_H
#define WB_LOGIN_CLI_H
#include <stdio.h>
#include <libpq-fe.h>
#include "warmbench/config.h"

/* c may be NULL (then no sender_state row and no NOTIFY). Returns an exit
 * code: 0 stored; 64 unknown sender or one without OAuth; 78 a provider
 * without device_url; 69 the server could not be reached; 1 denied,
 * expired or refused. Tokens are never printed. */
int wb_cmd_login(PGconn *c, const struct wb_config *cfg, const char *sender, FILE *out,
                 FILE *err);

/* check-config's look at the token files of every OAuth sender: one that
 * group or others may read is an error (as the daemon refuses it), a
 * missing one a note (that sender needs `warmbench login`). Returns the
 * number of errors. Tokens are never read into the output. */
size_t wb_oauth_check_token_files(const struct wb_config *cfg, FILE *out, FILE *err);

#endif
