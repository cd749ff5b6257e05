/* Every tracked link this daemon has rendered or resolved, by its stable id
 * (tokens.h, wb_token_link_id), so that a click resolves through what was
 * sent: the links of each configuration loaded (kept after a reload drops
 * or edits them) and those found in the `links` table (sql/028), which
 * keeps them across restarts. Each configuration's links are written to
 * the table (INSERT ... ON CONFLICT DO NOTHING), retried every second
 * until the database takes them. Memory grows only with the links ever
 * configured, never with traffic: a token's id is MAC'd, so only ids we
 * made can be asked for. */
#ifndef WB_LINKS_H
#define WB_LINKS_H
#include <stdbool.h>
#include <stdint.h>
#include "warmbench/config.h"
#include "warmbench/pg_loop.h"

struct wb_links;

/* Runs on pg's loop. */
struct wb_links *wb_links_new(struct wb_pg *pg);
/* Remembers every link of cfg's sequences (copied) and queues them for
 * the table. */
void wb_links_add_config(struct wb_links *l, const struct wb_config *cfg);
/* Link id's name and target when known here; the pointers live as long as
 * l. False when unknown here (the table may know it). */
bool wb_links_find(const struct wb_links *l, uint64_t id, const char **name, const char **url);
/* Remembers a link read from the table. */
void wb_links_learn(struct wb_links *l, uint64_t id, const char *sequence, const char *name,
                    const char *url);
/* Links not yet in the table. */
size_t wb_links_unsynced(const struct wb_links *l);
/* Frees at once; a write in flight finishes harmlessly. */
void wb_links_free(struct wb_links *l);

#endif
