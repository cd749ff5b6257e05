/* The Article 14 GDPR notice appended to the first mail of a candidate whose
 * consent is legitimate_interest (render.c). Its templates take the fields
 * any template takes except links.<name>. */
#ifndef WB_NOTICE_H
#define WB_NOTICE_H
#include <jansson.h>
#include "warmbench/jsonval.h"
#include "warmbench/template.h"

/* The notice's two parts; the config holds one. */
struct wb_notice {
    struct wb_template *text, *html;
};

/* From warmbench.json's optional "privacy_notice": a file name base inside
 * templates_dir (NAME.txt for the text part, NAME.html for the HTML part;
 * at least one must exist). When absent: privacy-notice.txt/.html in
 * templates_dir when there, else the built-in text (the same as
 * config/templates/privacy-notice.*). A part missing from the operator's
 * files uses the built-in one. Fills n (templates_dir NULL: the built-in
 * text only); errors go to jv's diagnostics with file:line:column. */
void wb_notice_load(struct wb_notice *n, const char *templates_dir, struct wb_jv *jv,
                    json_t *root);
void wb_notice_free(struct wb_notice *n);

#endif
