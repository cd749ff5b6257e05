/* SMTP pools: which workers a sender's mail goes through, and with which
 * credentials. */
#include "warmbench/send_pools.h"
#include "warmbench/util.h"
#include <string.h>

/* A sender needs its own pool when it wrote its own smtp block, or when it
 * logs in with OAuth: its token is its own even on the shared server. */
static bool pools_own(const struct wb_sender *snd)
{
    return snd->own_smtp || snd->smtp.auth != WB_AUTH_PASSWORD;
}

static int pools_add(struct wb_send_pools *ps, uv_loop_t *loop, const struct wb_smtp_cfg *c,
                     const char *sender, char **err)
{
    struct wb_smtp_opts o = {c->url, c->username, c->password, c->tls, c->connections,
                             c->timeout_s, c->auth};
    struct wb_smtp *smtp = wb_smtp_new(loop, &o);
    if (!smtp) {
        char *shown = wb_url_redacted(c->url);
        *err = wb_xasprintf("cannot set up SMTP for %s%s%s%s", shown, sender ? " (sender " : "",
                            sender ? sender : "", sender ? ")" : "");
        free(shown);
        return -1;
    }
    ps->v = wb_xrealloc(ps->v, (ps->n + 1) * sizeof *ps->v);
    ps->v[ps->n++] = (struct wb_send_pool){smtp, sender ? wb_xstrdup(sender) : NULL,
                                           c->oauth ? wb_xstrdup(c->oauth->name) : NULL,
                                           wb_url_redacted(c->url), c->auth, c->connections};
    return 0;
}

int wb_send_pools_init(struct wb_send_pools *ps, uv_loop_t *loop, const struct wb_config *cfg,
                       char **err)
{
    *ps = (struct wb_send_pools){0};
    *err = NULL;
    bool shared = false;
    for (size_t i = 0; i < cfg->n_senders; i++)
        shared |= !pools_own(&cfg->senders[i]);
    if ((shared || !cfg->n_senders) && pools_add(ps, loop, &cfg->smtp, NULL, err) < 0)
        goto fail;
    for (size_t i = 0; i < cfg->n_senders; i++) {
        const struct wb_sender *snd = &cfg->senders[i];
        if (pools_own(snd) && pools_add(ps, loop, &snd->smtp, snd->id, err) < 0)
            goto fail;
    }
    return 0;
fail:
    wb_send_pools_free(ps);
    return -1;
}

struct wb_send_pool *wb_send_pools_for(struct wb_send_pools *ps, const struct wb_config *cfg,
                                       const char *sender)
{
    const struct wb_sender *snd = wb_config_sender(cfg, sender);
    if (!snd)
        return NULL;
    bool own = pools_own(snd);
    for (size_t i = 0; i < ps->n; i++) {
        struct wb_send_pool *p = &ps->v[i];
        if (own ? p->sender && !strcmp(p->sender, sender) : !p->sender)
            return p;
    }
    return NULL;
}

const char *wb_send_pool_bearer(const struct wb_send_pool *p, struct wb_oauth *oauth)
{
    if (p->auth == WB_AUTH_PASSWORD)
        return "";
    if (!oauth || !p->sender)
        return NULL;
    return wb_oauth_token(oauth, p->sender, p->provider);
}

int wb_send_pools_connections(const struct wb_send_pools *ps)
{
    int n = 0;
    for (size_t i = 0; i < ps->n; i++)
        n += ps->v[i].connections;
    return n;
}

void wb_send_pools_free(struct wb_send_pools *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        wb_smtp_free(ps->v[i].smtp);
        free(ps->v[i].sender);
        free(ps->v[i].provider);
        free(ps->v[i].url);
    }
    free(ps->v);
    *ps = (struct wb_send_pools){0};
}
