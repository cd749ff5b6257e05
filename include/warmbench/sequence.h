/* Sequence files (one JSON object each in sequences_dir) and the small
 * parsers they need; loaded by wb_config_load. */
#ifndef WB_SEQUENCE_H
#define WB_SEQUENCE_H
#include <stdbool.h>
#include "warmbench/config.h"
#include "warmbench/jsonval.h"

/* Loads every *.json in c->sequences_dir, sorted by name (bytewise), into
 * c->sequences. cfg says where sequences_dir and templates_dir were written
 * in warmbench.json, for errors about the folders themselves; tpl_dir_name
 * is templates_dir as written, for messages. Sender names are checked only
 * when check_senders (false when "senders" itself was broken). */
void wb_sequences_load(struct wb_config *c, struct wb_jv *cfg, const char *tpl_dir_name,
                       bool check_senders, struct wb_diags *diags);
void wb_sequence_free(struct wb_sequence *s);

/* "HH:MM" (00:00..24:00) → minutes after midnight; -1 when malformed. */
int wb_clock_parse(const char *s);
/* "mon".."sun" → 0..6; -1 otherwise. */
int wb_day_parse(const char *s);
/* True when name is a zone file under $TZDIR (else /usr/share/zoneinfo):
 * a relative name without "..", not in the posix/ or right/ copies, naming
 * a regular file that starts with the "TZif" magic. "UTC" always passes. */
bool wb_tz_valid(const char *name);
/* reply, reply:<intent>, unsubscribe, bounce, click, click:<link>, open. */
bool wb_event_valid(const char *ev, const struct wb_sequence *s);

#endif
