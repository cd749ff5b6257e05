/* Rendering of one claimed message. Values come from the candidate row;
 * links and the unsubscribe URL are tracked URLs whose tokens name this
 * message (and, for links, the link's stable id), so a click or
 * unsubscribe is attributed to what was sent. */
#include "warmbench/render.h"
#include "warmbench/tokens.h"
#include "warmbench/util.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct ctx {
    const struct wb_config *cfg;
    const struct wb_sequence *seq;
    const struct wb_sender *sender;
    const struct wb_claimed *c;
    const char *unsub_url;
    char **links;           /* tracked URL per link index, made on first use */
    char *links_few[8];     /* links' room when a sequence has this few */
    struct wb_buf pbuf;     /* each part is rendered here, then copied to its size */
    char scratch[64];       /* a number or the retention phrase */
    wb_field_empty_fn warn; /* preview: a field that renders empty, no fallback */
    void *warn_ud;
};

/* The strings up to the NULL, joined in one exact malloc: most of a
 * message's small strings (no format to parse, no buffer to shrink). */
static char *rnd_join(const char *s, ...) __attribute__((sentinel));
static char *rnd_join(const char *s, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, s);
    for (const char *p = s; p; p = va_arg(ap, const char *))
        n += strlen(p);
    va_end(ap);
    char *out = wb_xmalloc(n + 1), *o = out;
    va_start(ap, s);
    for (const char *p = s; p; p = va_arg(ap, const char *)) {
        size_t k = strlen(p);
        memcpy(o, p, k);
        o += k;
    }
    va_end(ap);
    *o = '\0';
    return out;
}

static char *rnd_tracked(const struct wb_config *cfg, enum wb_token_kind kind, int64_t id, int link,
                     const char *suffix)
{
    char tok[WB_TOKEN_MAX];
    if (!wb_token_make(cfg->secret, cfg->secret_len, kind, id, link, tok, sizeof tok))
        return wb_xstrdup("");
    const char *prefix = kind == WB_TOKEN_OPEN ? "/o/" : kind == WB_TOKEN_CLICK ? "/c/" : "/u/";
    return rnd_join(cfg->http.public_url, prefix, tok, suffix, (char *)NULL);
}

/* A click token names the link by its stable id (tokens.h), so mail
 * already out keeps its target and name across edits of `links`. */
static char *rnd_tracked_link(const struct ctx *x, const struct wb_link *l)
{
    char tok[WB_TOKEN_MAX];
    uint64_t id = wb_token_link_id(x->seq->id, l->name, l->url);
    if (!wb_token_make_link(x->cfg->secret, x->cfg->secret_len, x->c->id, id, tok, sizeof tok))
        return wb_xstrdup("");
    return rnd_join(x->cfg->http.public_url, "/c/", tok, (char *)NULL);
}

static const char *rnd_link_value(struct ctx *x, const char *name)
{
    for (size_t i = 0; i < x->seq->n_links; i++) {
        if (strcmp(x->seq->links[i].name, name))
            continue;
        if (!x->links)
            x->links = x->seq->n_links <= sizeof x->links_few / sizeof x->links_few[0]
                           ? x->links_few
                           : wb_xcalloc(x->seq->n_links, sizeof *x->links);
        if (!x->links[i])
            x->links[i] = rnd_tracked_link(x, &x->seq->links[i]);
        return x->links[i];
    }
    return NULL;
}

/* The Article 14 notice's own fields (notice.h): where the data came from,
 * and how long it is kept (retention_days; empty when kept until erased). */
static const char *rnd_notice_value(struct ctx *x, const char *name)
{
    int days = x->cfg->retention_days;
    if (!strcmp(name, "source"))
        return x->c->source;
    if (!strcmp(name, "retention_days") && days > 0) {
        snprintf(x->scratch, sizeof x->scratch, "%d", days);
        return x->scratch;
    }
    if (!strcmp(name, "retention") && days > 0) {
        snprintf(x->scratch, sizeof x->scratch, "%d days after our last contact with you",
                 days);
        return x->scratch;
    }
    return NULL;
}

static const char *rnd_field_value(const char *name, void *ud)
{
    struct ctx *x = ud;
    const struct wb_claimed *c = x->c;
    if (!strncmp(name, "attrs.", 6)) {
        json_t *v = json_object_get(c->attrs, name + 6);
        if (json_is_string(v))
            return json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(x->scratch, sizeof x->scratch, "%lld", (long long)json_integer_value(v));
            return x->scratch;
        }
        return NULL;
    }
    if (!strncmp(name, "links.", 6))
        return rnd_link_value(x, name + 6);
    static const struct { const char *name; size_t off; } cols[] = {
        {"email", offsetof(struct wb_claimed, email)},
        {"first_name", offsetof(struct wb_claimed, first_name)},
        {"last_name", offsetof(struct wb_claimed, last_name)},
        {"title", offsetof(struct wb_claimed, title)},
        {"company", offsetof(struct wb_claimed, company)},
        {"location", offsetof(struct wb_claimed, location)},
    };
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        if (!strcmp(name, cols[i].name))
            return *(char *const *)((const char *)c + cols[i].off);
    if (!strcmp(name, "sender.name"))
        return x->sender->from_name;
    if (!strcmp(name, "sender.email"))
        return x->sender->from_email;
    if (!strcmp(name, "unsubscribe_url"))
        return x->unsub_url;
    return rnd_notice_value(x, name);
}

static void rnd_on_empty(const char *name, const char *file, int line, int col, void *ud)
{
    struct ctx *x = ud;
    x->warn(name, file, line, col, x->warn_ud);
}

/* Appends template t rendered to b. */
static void rnd_render_into(const struct wb_template *t, struct ctx *x, bool html,
                            struct wb_buf *b)
{
    wb_template_render_checked(t, rnd_field_value, x, html, b, x->warn ? rnd_on_empty : NULL);
}

/* t rendered in the scratch buffer and copied out at its size; NULL for
 * no template. */
static char *rnd_render_part(const struct wb_template *t, struct ctx *x, bool html)
{
    if (!t)
        return NULL;
    wb_buf_reset(&x->pbuf);
    rnd_render_into(t, x, html, &x->pbuf);
    return wb_buf_dup(&x->pbuf);
}

/* Where "</body>" first starts, in any case (as strcasestr finds it: "<"
 * and "/" have no case), else the end. */
static size_t rnd_body_end(const struct wb_buf *b)
{
    for (const char *p = b->data; (p = strchr(p, '<')); p++)
        if (p[1] == '/' && !strncasecmp(p + 2, "body>", 5))
            return (size_t)(p - b->data);
    return b->len;
}

/* The open pixel goes just before </body> when there is one. */
static void rnd_add_pixel(struct wb_buf *html, const struct wb_config *cfg, int64_t id)
{
    char tok[WB_TOKEN_MAX];
    if (!wb_token_make(cfg->secret, cfg->secret_len, WB_TOKEN_OPEN, id, 0, tok, sizeof tok))
        tok[0] = '\0';
    char *img = rnd_join("<img src=\"", tok[0] ? cfg->http.public_url : "", tok[0] ? "/o/" : "",
                         tok, tok[0] ? ".gif" : "",
                         "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">",
                         (char *)NULL);
    wb_buf_insert(html, rnd_body_end(html), img, strlen(img));
    free(img);
}

/* The text and HTML parts, each in its own buffer, then copied to their
 * size. Article 14: the notice goes at the end of the text part and before
 * </body> in the HTML part, then the pixel. The order of rendering is the
 * one preview reports empty fields in: text, HTML, the notice's text, its
 * HTML. */
static void rnd_parts(const struct wb_template *text, const struct wb_template *html,
                      bool notice, struct ctx *x, struct wb_rendered *out)
{
    const struct wb_config *cfg = x->cfg;
    struct wb_buf *tb = &x->pbuf, hb;
    wb_buf_init(&hb);
    if (html)
        wb_buf_reserve(&hb, 4096);
    wb_buf_reset(tb);
    if (text)
        rnd_render_into(text, x, false, tb);
    if (html)
        rnd_render_into(html, x, true, &hb);
    if (notice && text && cfg->notice.text) {
        wb_buf_puts(tb, tb->len && tb->data[tb->len - 1] == '\n' ? "\n" : "\n\n");
        rnd_render_into(cfg->notice.text, x, false, tb);
    }
    if (notice && html && cfg->notice.html) {
        struct wb_buf n;
        wb_buf_init(&n);
        rnd_render_into(cfg->notice.html, x, true, &n);
        wb_buf_insert(&hb, rnd_body_end(&hb), n.data ? n.data : "", n.len);
        wb_buf_free(&n);
    }
    if (html)
        rnd_add_pixel(&hb, cfg, x->c->id);
    out->text = text ? wb_buf_dup(tb) : NULL;
    out->html = html ? wb_buf_dup(&hb) : NULL;
    wb_buf_free(&hb);
}

int wb_variant_pick(int64_t candidate_id, int step, size_t n_variants)
{
    if (n_variants == 0)
        return -1;
    /* FNV-1a over (candidate, step): stable across reruns and machines
     * (fixed little-endian byte order). */
    uint64_t h = 1469598103934665603ULL;
    uint64_t v[2] = {(uint64_t)candidate_id, (uint64_t)(uint32_t)step};
    for (size_t i = 0; i < 2; i++)
        for (int b = 0; b < 64; b += 8)
            h = (h ^ ((v[i] >> b) & 0xff)) * 1099511628211ULL;
    /* FNV's low bits are little more than the parity of the input bytes, so
     * a candidate's variants at steps 1 and 2 agreed two times in three;
     * MurmurHash3's finalizer mixes every bit, making steps independent. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (int)(h % n_variants);
}

/* Feedback-ID: STEP:SEQUENCE:SENDER:warmbench (SPEC "Deliverability"), so
 * a provider's feedback loop reports complaints per step; a byte an
 * identifier may not hold becomes '_'. */
static char *rnd_feedback_id(int step, const char *seq, const char *sender)
{
    char num[24];
    snprintf(num, sizeof num, "%d", step);
    char *s = rnd_join(num, ":", seq, ":", sender, ":warmbench", (char *)NULL);
    for (char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(":._-", *p))
            *p = '_';
    if (strlen(s) > 200)
        s[200] = '\0';
    return s;
}

static char *rnd_envelope(const struct wb_config *cfg, const struct wb_sender *s, int64_t id)
{
    char tok[WB_TOKEN_MAX];
    if (!cfg->bounce_domain ||
        !wb_token_make(cfg->secret, cfg->secret_len, WB_TOKEN_BOUNCE, id, 0, tok, sizeof tok))
        return wb_xstrdup(s->from_email);
    return rnd_join("b+", tok, "@", cfg->bounce_domain, (char *)NULL);
}

static char *rnd_full_name(const struct wb_claimed *c)
{
    if (*c->first_name && *c->last_name)
        return rnd_join(c->first_name, " ", c->last_name, (char *)NULL);
    return wb_xstrdup(*c->first_name ? c->first_name : c->last_name);
}

int wb_render(const struct wb_config *cfg, const struct wb_claimed *c, struct wb_rendered *out,
              char *err, size_t errsz)
{
    return wb_render_checked(cfg, c, out, err, errsz, NULL, NULL);
}

int wb_render_checked(const struct wb_config *cfg, const struct wb_claimed *c,
                      struct wb_rendered *out, char *err, size_t errsz, wb_field_empty_fn warn,
                      void *warn_ud)
{
    memset(out, 0, sizeof *out);
    struct ctx x = {.cfg = cfg, .c = c, .warn = warn, .warn_ud = warn_ud};
    x.seq = wb_config_sequence(cfg, c->sequence);
    if (!c->message_id) { /* wb_claim (sql/009) makes it with the row */
        snprintf(err, errsz, "message %lld was claimed without a Message-ID", (long long)c->id);
        return -1;
    }
    if (!x.seq || c->step < 1 || (size_t)c->step > x.seq->n_steps) {
        snprintf(err, errsz, "sequence \"%s\" has no step %d in the loaded configuration",
                 c->sequence, c->step);
        return -1;
    }
    const char *fallback = NULL;
    const char *sid = c->sender ? c->sender : wb_step_sender(x.seq, (size_t)c->step - 1, &fallback);
    if (!sid)
        sid = fallback; /* an owner step previewed without a claim */
    x.sender = sid ? wb_config_sender(cfg, sid) : NULL;
    if (!x.sender) {
        snprintf(err, errsz, "sender \"%s\" is not configured", sid ? sid : "(none)");
        return -1;
    }
    const struct wb_step *st = &x.seq->steps[c->step - 1];
    if (st->task) { /* never claimed as mail (wb_claim); preview and test-send ask */
        snprintf(err, errsz, "step %d of %s is a manual task: it sends no mail", c->step,
                 x.seq->id);
        return -1;
    }
    out->variant = wb_variant_pick(c->candidate_id, c->step, st->n_variants);
    const struct wb_template *subj = st->subject, *text = st->text, *html = st->html;
    if (out->variant >= 0) {
        const struct wb_variant *v = &st->variants[out->variant];
        subj = v->subject ? v->subject : subj;
        text = v->text ? v->text : text;
        html = v->html ? v->html : html;
    }
    out->unsub_url = rnd_tracked(cfg, WB_TOKEN_UNSUB, c->id, 0, "");
    x.unsub_url = out->unsub_url;
    out->id = c->id;
    out->attempts = c->attempts;
    wb_buf_reserve(&x.pbuf, 4096); /* a whole part, mostly: no regrowth */
    out->subject = rnd_render_part(subj, &x, false);
    rnd_parts(text, html,
              c->step == 1 && c->consent && !strcmp(c->consent, "legitimate_interest"), &x,
              out);
    wb_buf_free(&x.pbuf);
    for (size_t i = 0; x.links && i < x.seq->n_links; i++)
        free(x.links[i]);
    if (x.links != x.links_few)
        free(x.links);
    out->message_id = wb_xstrdup(c->message_id);
    out->rcpt = wb_xstrdup(c->email);
    out->envelope_from = rnd_envelope(cfg, x.sender, c->id);
    out->in_reply_to = st->thread && c->thread_id ? wb_xstrdup(c->thread_id) : NULL;
    out->to_name = rnd_full_name(c);
    out->from_name = wb_xstrdup(x.sender->from_name ? x.sender->from_name : "");
    out->from_email = wb_xstrdup(x.sender->from_email);
    /* The address and its phrase apart: mime.c encodes the phrase as it
     * does From's ("Ana Ruiz <ana@example.com>" failed every message). */
    out->reply_to = x.sender->reply_to_email ? wb_xstrdup(x.sender->reply_to_email) : NULL;
    out->reply_to_name = x.sender->reply_to_name ? wb_xstrdup(x.sender->reply_to_name) : NULL;
    out->feedback_id = rnd_feedback_id(c->step, x.seq->id, x.sender->id);
    return 0;
}

void wb_rendered_mail(const struct wb_rendered *r, struct wb_mail *m)
{
    memset(m, 0, sizeof *m);
    m->from_name = r->from_name;
    m->from_email = r->from_email;
    m->reply_to = r->reply_to;
    m->reply_to_name = r->reply_to_name;
    m->to_name = r->to_name;
    m->to_email = r->rcpt;
    m->subject = r->subject;
    m->text = r->text;
    m->html = r->html;
    m->message_id = r->message_id;
    m->in_reply_to = r->in_reply_to;
    m->list_unsubscribe_url = r->unsub_url;
    m->feedback_id = r->feedback_id;
    m->date = time(NULL);
}

void wb_rendered_free(struct wb_rendered *r)
{
    char **all[] = {&r->message_id, &r->rcpt,      &r->envelope_from, &r->subject,
                    &r->text,       &r->html,      &r->in_reply_to,   &r->unsub_url,
                    &r->to_name,    &r->from_name, &r->from_email,    &r->reply_to,
                    &r->reply_to_name,
                    &r->feedback_id};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
}

void wb_claimed_free(struct wb_claimed *c)
{
    char **all[] = {&c->sequence, &c->message_id, &c->email,    &c->first_name, &c->last_name,
                    &c->title,    &c->company,    &c->location, &c->thread_id, &c->consent,
                    &c->source,   &c->sender};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
    json_decref(c->attrs);
    c->attrs = NULL;
}
