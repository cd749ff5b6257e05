/* `warmbench ats check` (SPEC "Native ATS adapters"): one call per thing
 * the configured vendor lets us check, with the configured credentials. */
#ifndef WB_ATS_CHECK_H
#define WB_ATS_CHECK_H
#include <stdio.h>
#include "warmbench/config.h"

/* Prints authentication, job and user lines to out. Exit code: 0 all
 * good; 69 the vendor did not answer (or answered 5xx/429/garbage); 78 a
 * refused credential, a job or user not found, or no native kind
 * configured. */
int wb_cmd_ats_check(const struct wb_config *cfg, FILE *out, FILE *err);

#endif
