/* Name tables of the state machines (see states.h). */
#include "warmbench/states.h"
#include "warmbench/log.h"
#include <string.h>

static const char *const msg_names[WB_MSG_N_STATES] = {
    "queued", "claimed", "sending", "sent", "retry", "failed", "unknown", "cancelled"};
static const char *const out_names[WB_OUT_N] = {"sent", "retry", "failed", "bounce", "unknown"};
static const char *const enr_names[WB_ENR_N_STATES] = {"active", "stopped", "finished",
                                                        "handed_off", "converted"};
static const char *const ho_names[WB_HO_N_STATES] = {"pending", "delivering", "delivered",
                                                      "dead"};
static const char *const snd_names[WB_SND_N_STATES] = {"ok", "needs_login", "paused",
                                                         "warming_up"};

static const char *states_name(const char *const *t, unsigned n, unsigned i)
{
    return i < n ? t[i] : "?";
}

static int states_parse(const char *const *t, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (!strcmp(t[i], name))
            return i;
    return -1;
}

const char *wb_msg_state_name(enum wb_msg_state s)
{
    return states_name(msg_names, WB_MSG_N_STATES, (unsigned)s);
}

const char *wb_send_outcome_name(enum wb_send_outcome o)
{
    return states_name(out_names, WB_OUT_N, (unsigned)o);
}

const char *wb_enroll_state_name(enum wb_enroll_state s)
{
    return states_name(enr_names, WB_ENR_N_STATES, (unsigned)s);
}

const char *wb_handoff_state_name(enum wb_handoff_state s)
{
    return states_name(ho_names, WB_HO_N_STATES, (unsigned)s);
}

const char *wb_sender_state_name(enum wb_sender_state s)
{
    return states_name(snd_names, WB_SND_N_STATES, (unsigned)s);
}

int wb_handoff_state_parse(const char *name)
{
    return states_parse(ho_names, WB_HO_N_STATES, name);
}

enum wb_msg_state wb_send_outcome_state(enum wb_send_outcome o)
{
    switch (o) {
    case WB_OUT_SENT: return WB_MSG_SENT;
    case WB_OUT_RETRY: return WB_MSG_RETRY;
    case WB_OUT_UNKNOWN: return WB_MSG_UNKNOWN;
    default: return WB_MSG_FAILED;
    }
}

void wb_msg_enter_state(int64_t id, enum wb_msg_state from, enum wb_send_outcome to,
                        const char *why)
{
    wb_debug("message %lld: %s -> %s (%s%s%.200s)", (long long)id, wb_msg_state_name(from),
             wb_msg_state_name(wb_send_outcome_state(to)), wb_send_outcome_name(to),
             why && *why ? ": " : "", why ? why : "");
}

void wb_handoff_enter_state(int64_t id, enum wb_handoff_state from, enum wb_handoff_state to,
                            const char *why)
{
    wb_debug("handoff %lld: %s -> %s%s%.200s", (long long)id, wb_handoff_state_name(from),
             wb_handoff_state_name(to), why && *why ? ": " : "", why ? why : "");
}
