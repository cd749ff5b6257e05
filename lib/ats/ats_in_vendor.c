/* POST /ats/events/KIND: a vendor's own web hook, checked by its adapter
 * (ats_vendor.h), then stored as the generic event it means through the
 * same validation and functions as POST /ats/events (ats_in.c). */
#include "warmbench/ats_config.h"
#include "warmbench/ats_in.h"
#include "warmbench/ats_run.h"
#include "warmbench/util.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *aiv_json(const char *key, const char *msg)
{
    json_t *o = json_pack("{ss}", key, msg);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int aiv_answer(int code, const char *key, const char *msg, int *status, char **out)
{
    *status = code;
    *out = aiv_json(key, msg);
    return 0;
}

/* "KIND:" + the vendor's id; a digest of the body when there is none (the
 * same body again is then the replay) or when the id is too long. */
static char *aiv_replay_id(const char *kind, const char *event_id, const char *body,
                           size_t len)
{
    if (event_id && event_id[0] && strlen(kind) + 1 + strlen(event_id) <= WB_ATS_ID_MAX)
        return wb_xasprintf("%s:%s", kind, event_id);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(body, len, md, &n, EVP_sha256(), NULL);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return wb_xasprintf("%s:%s:%s", kind, event_id && event_id[0] ? "id-sha256" : "sha256", hex);
}

/* A name a person can read, or nothing: control characters are not
 * worth refusing the whole event for. */
static void aiv_name(json_t *cand, const char *key, const char *v)
{
    if (!v || !v[0])
        return;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return;
    json_object_set_new(cand, key, json_string(v));
}

static const char *aiv_type(enum wb_ats_in_type t)
{
    return t == WB_ATS_IN_REJECTED ? "candidate.rejected"
           : t == WB_ATS_IN_HIRED  ? "candidate.hired"
                                   : "candidate.applied";
}

/* The generic event body the vendor's event means. */
static char *aiv_generic(const char *enroll, const struct wb_ats_inbound *in, const char *id)
{
    json_t *cand = json_pack("{ss}", "email", in->email);
    aiv_name(cand, "first_name", in->first_name);
    aiv_name(cand, "last_name", in->last_name);
    json_t *o = json_pack("{sssssO}", "type", aiv_type(in->type), "id", id, "candidate", cand);
    json_decref(cand);
    if (in->type == WB_ATS_IN_REJECTED && enroll)
        json_object_set_new(o, "enroll", json_string(enroll));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* The event as the generic one it means, stored (cfg NULL: the database
 * checks the sequence). 1: queued, done will be called; 0: answered. */
static int aiv_store(const struct wb_config *cfg, const char *enroll, struct wb_pg *pg,
                     const char *id, const struct wb_ats_inbound *in, wb_ats_done_fn done,
                     void *ud, int *status, char **out)
{
    char *body = aiv_generic(enroll, in, id);
    struct wb_ats_event ev;
    char err[256];
    int rc;
    if (wb_ats_parse(body, strlen(body), &ev, err, sizeof err) < 0) {
        rc = aiv_answer(400, "error", err, status, out);
    } else {
        rc = wb_ats_in_store(cfg, pg, &ev, done, ud, status, out);
        wb_ats_event_free(&ev);
    }
    free(body);
    return rc;
}

/* --- an event without an address: the vendor's lookup first ------------- */

struct aiv_lookup {
    struct wb_ats_inbound in;
    char *id, *enroll;
    struct wb_pg *pg;
    wb_ats_done_fn done;
    void *ud;
};

static void aiv_on_lookup(void *ud, int rc, const char *err)
{
    struct aiv_lookup *l = ud;
    int status;
    char *out = NULL;
    if (rc < 0) {
        char *msg = wb_xasprintf("lookup: %s", err);
        aiv_answer(rc == -1 ? 503 : 400, "error", msg, &status, &out);
        free(msg);
    } else if (l->in.type == WB_ATS_IN_IGNORED) {
        aiv_answer(200, "status", "ignored", &status, &out);
    } else if (!l->in.email) {
        aiv_answer(400, "error", "lookup: no email address", &status, &out);
    } else if (aiv_store(NULL, l->enroll, l->pg, l->id, &l->in, l->done, l->ud, &status,
                         &out) == 1) {
        out = NULL; /* queued: done comes from the statement */
        status = 0;
    }
    if (out) {
        l->done(status, out, l->ud);
        free(out);
    }
    wb_ats_inbound_free(&l->in);
    free(l->id);
    free(l->enroll);
    free(l);
}

/* Takes in over; the answer comes through rq->done. */
static int aiv_lookup(const struct wb_config *cfg, struct wb_pg *pg,
                      const struct wb_ats_vendor_request *rq, struct wb_ats_inbound *in)
{
    struct aiv_lookup *l = wb_xcalloc(1, sizeof *l);
    l->in = *in;
    memset(in, 0, sizeof *in);
    l->id = aiv_replay_id(rq->kind, l->in.event_id, rq->body, rq->len);
    l->enroll = cfg->ats.rejected_enroll ? wb_xstrdup(cfg->ats.rejected_enroll) : NULL;
    l->pg = pg;
    l->done = rq->done;
    l->ud = rq->ud;
    wb_ats_lookup_start(rq->ats, &l->in, aiv_on_lookup, l);
    return 1;
}

int wb_ats_in_vendor_handle(const struct wb_config *cfg, struct wb_pg *pg,
                            const struct wb_ats_vendor_request *rq, int *status, char **out,
                            char **echo)
{
    *echo = NULL;
    const struct wb_ats_vendor *v = wb_ats_vendor_of(cfg);
    if (!v || strcmp(v->kind, rq->kind) || !cfg->ats.webhook_secret)
        return aiv_answer(404, "error", "not found", status, out);
    if (rq->too_big)
        return aiv_answer(413, "error", "body too large", status, out);
    if (v->handshake && v->handshake(rq->headers, rq->nheaders, echo) == 1)
        return aiv_answer(200, "status", "handshake", status, out);
    enum wb_ats_sig sig = v->verify(rq->headers, rq->nheaders, rq->body, rq->len,
                                    cfg->ats.webhook_secret, cfg->ats.webhook_secret_len, rq->now);
    if (sig != WB_ATS_SIG_OK)
        return aiv_answer(401, "error",
                          sig == WB_ATS_SIG_STALE ? "signature outside the replay window"
                                                  : "bad signature",
                          status, out);
    struct wb_ats_inbound in;
    char err[WB_ATS_ERR_MAX];
    if (v->parse(rq->headers, rq->nheaders, rq->body, rq->len, &in, err, sizeof err) < 0)
        return aiv_answer(400, "error", err, status, out);
    int rc;
    if (in.type == WB_ATS_IN_IGNORED)
        rc = aiv_answer(200, "status", "ignored", status, out);
    else if (!in.email && v->lookup_build && rq->ats && wb_ats_session_vendor(rq->ats) == v)
        rc = aiv_lookup(cfg, pg, rq, &in);
    else if (!in.email)
        rc = aiv_answer(400, "error", "the event carries no email address", status, out);
    else {
        char *id = aiv_replay_id(rq->kind, in.event_id, rq->body, rq->len);
        rc = aiv_store(cfg, cfg->ats.rejected_enroll, pg, id, &in, rq->done, rq->ud, status,
                       out);
        free(id);
    }
    wb_ats_inbound_free(&in);
    return rc;
}
