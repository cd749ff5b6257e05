/* Reply intent: what a candidate's reply asks for, from its own first lines
 * (quoted text and signatures stripped). Two parts, both named by
 * intent.json: phrase lists (operator rules, checked first, in any
 * language) and a small linear model over character n-grams trained
 * offline (tools/intent/train.py) that decides when no phrase matches.
 * Also tells out-of-office subjects apart. */
#ifndef WB_INTENT_H
#define WB_INTENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where intent.json is looked for after the config file's own folder; the
 * Makefile defines it (config/ in the tree, PREFIX/share/warmbench when
 * installed). */
#ifndef WB_SHARE_DIR
#define WB_SHARE_DIR WB_SQL_DIR "/../config"
#endif

/* The model's classes are these four, in this order. */
enum wb_intent {
    WB_INTENT_NEUTRAL,
    WB_INTENT_INTERESTED,
    WB_INTENT_NOT_INTERESTED,
    WB_INTENT_UNSUBSCRIBE,
    WB_INTENT_COUNT
};

struct wb_intent_rules;
struct wb_intent_model;

/* A verdict: confidence is the model's probability of the intent, or -1
 * when a phrase rule decided (or nothing did: neutral). */
struct wb_intent_result {
    enum wb_intent intent;
    double confidence;
    bool by_model;
};

/* "intent.json" in config_dir when that file exists, else
 * WB_SHARE_DIR "/intent.json"; malloc'd. */
char *wb_intent_path(const char *config_dir);

/* Loads the rules and the model file intent.json names ("model", looked up
 * beside intent.json, then in WB_SHARE_DIR; no key: rules only). NULL with
 * a message in err when either is unreadable or not of the expected
 * shape. */
struct wb_intent_rules *wb_intent_load(const char *path, char *err, size_t errsz);
void wb_intent_free(struct wb_intent_rules *r);

/* The reply's own text: quoted lines ("> "), everything from an
 * attribution line ("On ... wrote:", "Am ... schrieb ...:", "Le ... a
 * écrit :", "El ... escribió:", "Il ... ha scritto:", "Op ... schreef
 * ...:") that follows text of the reply's own (one above all text is a
 * bottom-posted reply's: skipped), a forwarded/original-message separator,
 * an Outlook header block or a signature ("-- ", "Sent from my ...") on
 * dropped; at most max_lines non-empty lines kept. malloc'd. */
char *wb_intent_strip(const char *text, int max_lines);

/* What the rules and the model read: the stripped text folded (lowercase,
 * accents dropped, blanks collapsed). malloc'd. */
char *wb_intent_text(const struct wb_intent_rules *r, const char *text);

/* The phrase rules alone on folded text: the intent of the first list that
 * matches (unsubscribe > neutral > not_interested > interested; an
 * "interested" phrase after a negation in its clause counts as
 * not_interested), or -1. A phrase ending in '*' is a stem. */
int wb_intent_rules_match(const struct wb_intent_rules *r, const char *folded);

/* Classifies a reply's body text (stripped here first): the rules where
 * they match, else the model, else neutral. */
void wb_intent_decide(const struct wb_intent_rules *r, const char *text, struct wb_intent_result *out);
enum wb_intent wb_intent_classify(const struct wb_intent_rules *r, const char *text);

/* True when subject reads as an out-of-office or automatic reply. */
bool wb_intent_ooo_subject(const struct wb_intent_rules *r, const char *subject);

/* "neutral", "interested", "not_interested", "unsubscribe". */
const char *wb_intent_name(enum wb_intent i);

/* ---- the model (intent_model.c) ----------------------------------------- */

#define WB_INTENT_FEAT_WORDS 1u   /* whole words as features too */
#define WB_INTENT_FEAT_BIGRAMS 2u /* and pairs of neighbouring words */

/* How folded text becomes features: character n-grams of nmin..nmax bytes
 * and (flags) words, hashed into 2^bits buckets, from the first max_bytes
 * bytes. */
struct wb_intent_feat_params {
    unsigned bits, nmin, nmax, flags;
    size_t max_bytes;
};

/* The features of folded text: n bucket indexes (ascending, distinct) in
 * *idx and their weights (unit length) in *val, both malloc'd. */
size_t wb_intent_features(const struct wb_intent_feat_params *p, const char *folded, uint32_t **idx,
                          float **val);

/* Loads a model file (format: tools/intent/train.py); NULL with a message
 * in err when it is missing, too big, damaged or of another shape. */
struct wb_intent_model *wb_intent_model_load(const char *path, char *err, size_t errsz);
void wb_intent_model_free(struct wb_intent_model *m);
const struct wb_intent_feat_params *wb_intent_model_params(const struct wb_intent_model *m);
/* The rules' model, or NULL. */
const struct wb_intent_model *wb_intent_model_of(const struct wb_intent_rules *r);

/* The most probable intent of folded text; prob gets every class's
 * probability. */
enum wb_intent wb_intent_model_score(const struct wb_intent_model *m, const char *folded,
                                     double prob[WB_INTENT_COUNT]);

#endif
