/* warmbench.json "ats" for the native adapters: the rules check-config
 * applies per kind, and the vendor view of the block. */
#ifndef WB_ATS_CONFIG_H
#define WB_ATS_CONFIG_H
#include "warmbench/ats_vendor.h"
#include "warmbench/config.h"
#include "warmbench/jsonval.h"

/* Reports at /ats/...: an unknown or unavailable kind, keys the kind
 * needs, webhook_url for "webhook", a rejected_enroll naming no sequence.
 * Called once the sequences are loaded. */
void wb_ats_config_check(const struct wb_config *c, struct wb_jv *jv);

/* The vendor of the configured kind; NULL for "webhook" (or no "ats"). */
const struct wb_ats_vendor *wb_ats_vendor_of(const struct wb_config *c);

/* The api block as the vendor reads it (borrows from c; base_url defaults
 * to the vendor's public URL; the one secret file the kind uses). */
void wb_ats_api_of(const struct wb_config *c, const struct wb_ats_vendor *v,
                   struct wb_ats_api *out);

#endif
