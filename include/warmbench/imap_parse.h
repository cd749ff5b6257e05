/* The IMAP poller's reading of the untagged answers libcurl hands back for
 * its custom STATUS and UID SEARCH commands. Pure functions over the bytes
 * a server sent, kept apart from mailbox.c so they can be tested and
 * fuzzed alone. */
#ifndef WB_IMAP_PARSE_H
#define WB_IMAP_PARSE_H
#include <stddef.h>
#include <stdint.h>

/* The UIDs above `above` listed on the "* SEARCH n n n" lines of s
 * (NUL-terminated), sorted and without duplicates, in *uids (malloc'd, or
 * NULL when none). Returns how many. Only space-separated numbers
 * 1..2^32-1 count (RFC 3501 nz-number). */
size_t wb_imap_search_uids(const char *s, uint64_t above, uint64_t **uids);

/* The number after name (e.g. "UIDVALIDITY ", case-insensitive) in a
 * STATUS answer, or 0 when absent or not a number 1..2^32-1. */
uint64_t wb_imap_status_value(const char *s, const char *name);

#endif
