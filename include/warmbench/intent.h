/* Reply intent: what a candidate's reply asks for, from its own first lines
 * (quoted text and signatures stripped), by phrase lists in en/de/fr/es
 * loaded from intent.json. Also tells out-of-office subjects apart. */
#ifndef WB_INTENT_H
#define WB_INTENT_H
#include <stdbool.h>
#include <stddef.h>

/* Where intent.json is looked for after the config file's own folder; the
 * Makefile defines it (config/ in the tree, PREFIX/share/warmbench when
 * installed). */
#ifndef WB_SHARE_DIR
#define WB_SHARE_DIR WB_SQL_DIR "/../config"
#endif

enum wb_intent {
    WB_INTENT_NEUTRAL,
    WB_INTENT_INTERESTED,
    WB_INTENT_NOT_INTERESTED,
    WB_INTENT_UNSUBSCRIBE,
};

struct wb_intent_rules;

/* "intent.json" in config_dir when that file exists, else
 * WB_SHARE_DIR "/intent.json"; malloc'd. */
char *wb_intent_path(const char *config_dir);

/* Loads the rules; NULL with a message in err when the file is unreadable
 * or not of the expected shape. */
struct wb_intent_rules *wb_intent_load(const char *path, char *err, size_t errsz);
void wb_intent_free(struct wb_intent_rules *r);

/* The reply's own text: quoted lines ("> "), everything from an
 * attribution line ("On ... wrote:", "Am ... schrieb ...:", "Le ... a
 * écrit :", "El ... escribió:"), a forwarded/original-message separator,
 * an Outlook header block or a signature ("-- ", "Sent from my ...") on
 * dropped; at most max_lines non-empty lines kept. malloc'd. */
char *wb_intent_strip(const char *text, int max_lines);

/* Classifies a reply's body text (stripped here first). Precedence:
 * unsubscribe > not_interested > interested; an "interested" phrase after
 * a negation in its clause ("not really interested", "no me interesa")
 * counts as not_interested. */
enum wb_intent wb_intent_classify(const struct wb_intent_rules *r, const char *text);

/* True when subject reads as an out-of-office or automatic reply. */
bool wb_intent_ooo_subject(const struct wb_intent_rules *r, const char *subject);

/* "neutral", "interested", "not_interested", "unsubscribe". */
const char *wb_intent_name(enum wb_intent i);

#endif
