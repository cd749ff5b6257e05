/* Complaint reports: the Abuse Reporting Format (RFC 5965) that mailbox
 * providers send through their feedback loops when a recipient marks a
 * mail as spam (SPEC "Deliverability"). Pure parsing, no I/O. */
#ifndef WB_ARF_H
#define WB_ARF_H
#include <stdbool.h>
#include <stddef.h>
#include "warmbench/mailparse.h"

#define WB_ARF_MAX_IDS 8

/* 0 when the message (h: its header, body: the first part of its body) is
 * a feedback report: Content-Type multipart/report with
 * report-type=feedback-report, and a Feedback-Type field in its
 * message/feedback-report part, copied (lowercase, [a-z-] only, e.g.
 * "abuse") into out. -1 otherwise. */
int wb_arf_feedback_type(const struct wb_mail_head *h, const char *body, size_t len, char *out,
                         size_t outsz);

/* Whether a Feedback-Type is a person's complaint: abuse, fraud, virus
 * and other are; not-spam (RFC 6430) and auth-failure (RFC 6591) are not. */
bool wb_arf_is_complaint(const char *type);

/* The Message-IDs (without <>) of the reported mail: the Message-ID fields
 * found in the body at the start of a line (the returned message or its
 * headers), at most WB_ARF_MAX_IDS, each malloc'd into ids. Returns how
 * many. */
size_t wb_arf_message_ids(const char *body, size_t len, char *ids[WB_ARF_MAX_IDS]);

#endif
