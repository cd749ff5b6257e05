/* The Article 14 GDPR notice appended to the first mail of a candidate whose
 * consent is legitimate_interest (render.c). Its templates take the fields
 * any template takes except links.<name>. */
#ifndef WB_NOTICE_H
#define WB_NOTICE_H
#include <jansson.h>
#include "warmbench/config.h"
#include "warmbench/jsonval.h"

/* From warmbench.json's optional "privacy_notice": a file name base inside
 * templates_dir (NAME.txt for the text part, NAME.html for the HTML part;
 * at least one must exist). When absent: privacy-notice.txt/.html in
 * templates_dir when there, else the built-in text (the same as
 * config/templates/privacy-notice.*). A part missing from the operator's
 * files uses the built-in one. Sets cfg->notice_text and notice_html;
 * errors go to jv's diagnostics with file:line:column. */
void wb_notice_load(struct wb_config *cfg, struct wb_jv *jv, json_t *root);
void wb_notice_free(struct wb_config *cfg);

#endif
