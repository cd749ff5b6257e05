/* Reading the inbound mail the IMAP poller fetches: header blocks (unfolded),
 * RFC 2047 subjects, the Message-IDs a reply points at, automatic-reply
 * markers, the Status of a DSN, our VERP bounce token, and the first text
 * part of a body. Pure functions over bytes; nothing here trusts its input:
 * every size is capped and bad bytes never reach the caller as bad UTF-8. */
#ifndef WB_MAILPARSE_H
#define WB_MAILPARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hostile input limits: a header block with more fields, or one field
 * longer than this after unfolding, is rejected as malformed. */
#define WB_MAIL_MAX_FIELDS 200
#define WB_MAIL_MAX_FIELD 16384
/* The most Message-IDs taken from In-Reply-To and References together. */
#define WB_MAIL_MAX_REFS 50

struct wb_mail_field {
    char *name;   /* as written */
    char *value;  /* unfolded, surrounding whitespace trimmed, not decoded */
};

struct wb_mail_head {
    struct wb_mail_field *v;
    size_t n;
};

/* Parses the header block at p[0..len) up to its empty line (or the end).
 * 0 and *body_off (when not NULL) set to where the body starts; -1 when it
 * is not a header block: a NUL byte, a line that is neither a field nor a
 * continuation, or a limit above exceeded. h is empty after -1. */
int wb_mail_head_parse(const char *p, size_t len, struct wb_mail_head *h, size_t *body_off);
void wb_mail_head_free(struct wb_mail_head *h);
/* The first field named name (case-insensitive), or NULL. */
const char *wb_mail_head_get(const struct wb_mail_head *h, const char *name);

/* Decodes RFC 2047 encoded words (B and Q, any charset iconv knows) into
 * UTF-8; whitespace between adjacent encoded words is dropped, CR, LF and
 * other control characters become spaces, invalid bytes become U+FFFD.
 * malloc'd. */
char *wb_mail_decode_words(const char *s);

/* Converts n bytes in charset (NULL or unknown: tried as UTF-8, then
 * Windows-1252) to valid UTF-8; malloc'd, NUL-terminated. */
char *wb_mail_to_utf8(const char *charset, const char *s, size_t n);

/* The Message-IDs (without <>) of In-Reply-To, then of References from the
 * newest back, without duplicates, at most WB_MAIL_MAX_REFS. Returns how
 * many; *ids is a malloc'd array of malloc'd strings (free with
 * wb_mail_strv_free) or NULL when none. */
size_t wb_mail_refs(const struct wb_mail_head *h, char ***ids);
void wb_mail_strv_free(char **v, size_t n);

/* True when the header says a machine sent the mail: Auto-Submitted other
 * than "no", X-Autoreply or X-Autorespond, Precedence auto_reply, bulk,
 * junk or list. */
bool wb_mail_is_auto(const struct wb_mail_head *h);

/* The value of parameter name in a structured field value (Content-Type:
 * "text/plain; charset=utf-8"), unquoted, into out; 0, or -1 when absent or
 * too long. */
int wb_mail_param(const char *value, const char *name, char *out, size_t outsz);

/* The Status of the first recipient in the message/delivery-status part of
 * a DSN (h and body are the whole message's header and body), e.g. "5.1.1",
 * into out (at least 16 bytes). Without such a part, the first
 * "Status: X.Y.Z" line anywhere in the body. 0, or -1 when none is found. */
int wb_mail_dsn_status(const struct wb_mail_head *h, const char *body, size_t len, char *out);

/* Finds b+TOKEN@domain, with a TOKEN that is a valid bounce token for key,
 * in To, Delivered-To, X-Original-To, Original-Recipient, Final-Recipient
 * and Return-Path, then in the body (a DSN's delivery-status part and the
 * returned headers carry it). 0 and *message_id set, or -1. */
int wb_mail_bounce_message(const struct wb_mail_head *h, const char *body, size_t len,
                           const char *domain, const unsigned char *key, size_t keylen,
                           int64_t *message_id);

/* The first text part of a message as UTF-8 text: transfer encoding and
 * charset decoded; text/plain preferred, else text/html with the markup
 * dropped. Looks into multipart bodies (nested up to a few levels).
 * malloc'd, or NULL when the message has no text part. */
char *wb_mail_first_text(const struct wb_mail_head *h, const char *body, size_t len);

#endif
