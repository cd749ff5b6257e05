/* The state machines, as C sees them. The SQL CHECK constraints stay the
 * durable truth (sql/001_domain.sql); these enums name the same states so
 * that C code compares and logs enums, never bare strings. Each enum has a
 * name table, and each machine one *_enter_state that logs a transition at
 * debug level, as OpenSMTPD's smtp_enter_state does. */
#ifndef WB_STATES_H
#define WB_STATES_H
#include <stdint.h>

/* messages.state */
enum wb_msg_state {
    WB_MSG_QUEUED, WB_MSG_CLAIMED, WB_MSG_SENDING, WB_MSG_SENT, WB_MSG_RETRY,
    WB_MSG_FAILED, WB_MSG_UNKNOWN, WB_MSG_CANCELLED, WB_MSG_N_STATES
};

/* What an SMTP transaction (or a message that could not be built) ends
 * in, as stored by wb_store_outcomes (sql/006): `bounce` is a failed
 * message whose hard bounce also suppresses the address. */
enum wb_send_outcome {
    WB_OUT_SENT, WB_OUT_RETRY, WB_OUT_FAILED, WB_OUT_BOUNCE, WB_OUT_UNKNOWN, WB_OUT_N
};

/* enrollments.state */
enum wb_enroll_state {
    WB_ENR_ACTIVE, WB_ENR_STOPPED, WB_ENR_FINISHED, WB_ENR_HANDED_OFF, WB_ENR_CONVERTED,
    WB_ENR_N_STATES
};

/* handoffs.state, and the outcomes a delivery stores */
enum wb_handoff_state {
    WB_HO_PENDING, WB_HO_DELIVERING, WB_HO_DELIVERED, WB_HO_DEAD, WB_HO_N_STATES
};

/* A sender's state (SPEC "Every recruiter's own mailbox"; `senders`). */
enum wb_sender_state {
    WB_SND_OK, WB_SND_NEEDS_LOGIN, WB_SND_PAUSED, WB_SND_WARMING_UP, WB_SND_N_STATES
};

const char *wb_msg_state_name(enum wb_msg_state s);
const char *wb_send_outcome_name(enum wb_send_outcome o);
const char *wb_enroll_state_name(enum wb_enroll_state s);
const char *wb_handoff_state_name(enum wb_handoff_state s);
const char *wb_sender_state_name(enum wb_sender_state s);
/* The state a stored name stands for; -1 when it is none of them. */
int wb_handoff_state_parse(const char *name);

/* The message state an outcome leaves the row in. */
enum wb_msg_state wb_send_outcome_state(enum wb_send_outcome o);

/* Debug-level transition logs: "message 12: sending -> sent (250 ok)". */
void wb_msg_enter_state(int64_t id, enum wb_msg_state from, enum wb_send_outcome to,
                        const char *why);
void wb_handoff_enter_state(int64_t id, enum wb_handoff_state from, enum wb_handoff_state to,
                            const char *why);

#endif
