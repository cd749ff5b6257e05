/* What an OAuth 2.0 server answers, read without trusting it: the token
 * endpoint (RFC 6749 5.1/5.2, RFC 8628 3.5) and the device authorization
 * endpoint (RFC 8628 3.2). Pure functions, no I/O; the token keeper
 * (oauth.h) and `warmbench login` (login_cli.h) share them.
 *
 * Tokens are kept only where the caller asked for them, and wiped when
 * freed. Error texts never hold a token: they are made of the server's
 * `error` code (letters and '_' only) and its description, cleaned. */
#ifndef WB_OAUTH_PARSE_H
#define WB_OAUTH_PARSE_H
#include <stdbool.h>
#include <stddef.h>

enum wb_oauth_reply_kind {
    WB_OAUTH_REPLY_TOKEN,   /* 2xx with a usable access token */
    WB_OAUTH_REPLY_ERROR,   /* an OAuth error object ("error": "invalid_grant", ...) */
    WB_OAUTH_REPLY_BAD,     /* anything else (5xx, HTML, a token we cannot use) */
};

/* Bounds on what a server may hand us. */
#define WB_OAUTH_TOKEN_MAX 16384
#define WB_OAUTH_ERROR_MAX 64
#define WB_OAUTH_DEFAULT_EXPIRES_S 3600

struct wb_oauth_reply {
    enum wb_oauth_reply_kind kind;
    char *access_token;     /* TOKEN: printable ASCII, no space */
    char *refresh_token;    /* TOKEN: NULL when the server did not rotate it */
    long expires_in;        /* TOKEN: seconds, 1..1 year (absent: 3600) */
    char error[WB_OAUTH_ERROR_MAX]; /* ERROR: the code; "" otherwise */
    char *message;          /* ERROR/BAD: what to tell an operator (malloc'd) */
};

/* Reads a token endpoint answer (HTTP status and body). Always fills out
 * (kind BAD with a message when nothing else fits); free with
 * wb_oauth_reply_free. */
void wb_oauth_parse_token(long status, const char *body, size_t len, struct wb_oauth_reply *out);
void wb_oauth_reply_free(struct wb_oauth_reply *r);

struct wb_oauth_device {
    char *device_code;
    char *user_code;                    /* printable ASCII, safe on a terminal */
    char *verification_uri;             /* http(s)://, printable ASCII */
    char *verification_uri_complete;    /* NULL when absent */
    long expires_in;                    /* seconds (absent: 1800) */
    long interval;                      /* seconds, at least 1 (absent: 5) */
};

/* Reads a device authorization answer. true when usable; else false and
 * err filled as by wb_oauth_parse_token (kind ERROR or BAD). */
bool wb_oauth_parse_device(long status, const char *body, size_t len,
                           struct wb_oauth_device *out, struct wb_oauth_reply *err);
void wb_oauth_device_free(struct wb_oauth_device *d);

/* A token as SASL and HTTP take it: 1..WB_OAUTH_TOKEN_MAX bytes of
 * printable ASCII (0x21-0x7e). Nothing else may reach an AUTH line. */
bool wb_oauth_token_ok(const char *s, size_t len);

/* Frees a string holding a secret after overwriting it. */
void wb_oauth_wipe(char *s);

#endif
