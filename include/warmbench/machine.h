/* Telling machine opens and clicks (privacy proxies, prefetchers, link
 * scanners) from people's. Pure functions of what the request shows, so
 * the rules can be unit-tested; the caller stores the event either way,
 * flagged, and a flagged event never triggers stop_on/handoff_on. */
#ifndef WB_MACHINE_H
#define WB_MACHINE_H
#include <stdbool.h>

struct wb_machine_req {
    const char *user_agent;  /* NULL when absent */
    const char *purpose;     /* Purpose / Sec-Purpose / X-Moz header, NULL when absent */
    const char *remote_ip;   /* numeric, NULL when unknown */
    bool head;               /* a HEAD request */
    double since_send_s;     /* seconds since the message was sent; < 0 when unknown */
    int machine_click_s;     /* http.machine_click_s */
};

/* NULL for a person, else a short reason ("apple-mpp", "google-proxy", ...). */
const char *wb_machine_open(const struct wb_machine_req *r);
const char *wb_machine_click(const struct wb_machine_req *r);

#endif
