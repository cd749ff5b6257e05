/* Asynchronous host-name lookups for pg_loop (pg_dns.h): one attempt at a
 * time, its names resolved in turn with uv_getaddrinfo. A lookup carries
 * the attempt it belongs to, so one that outlives its attempt (a timeout,
 * a close) only lets go. */
#include "warmbench/pg_dns.h"
#include "warmbench/util.h"
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct wb_pg_dns {
    uv_loop_t *loop;
    wb_pg_dns_fn done;
    void *ud;
    unsigned attempt;    /* tells a lookup of an abandoned attempt */
    char **hosts;        /* this attempt's host list, when a name needs resolving */
    char **addrs;        /* per host: its addresses, comma-separated ("" = libpq's way) */
    char **ports;        /* per host, when conninfo lists several ports; else NULL */
    size_t nhosts, next_host;
    unsigned running;    /* lookups on the thread pool */
    bool freeing;        /* wb_pg_dns_free called: gone when running is 0 */
    void (*released)(void *ud);
    void *released_ud;
};

struct pgd_lookup {
    uv_getaddrinfo_t req;
    struct wb_pg_dns *d;
    unsigned attempt;
};

static void pgd_lookup_next(struct wb_pg_dns *d);

static void pgd_free_hosts(struct wb_pg_dns *d)
{
    for (size_t i = 0; i < d->nhosts; i++) {
        free(d->hosts[i]);
        free(d->addrs[i]);
        if (d->ports)
            free(d->ports[i]);
    }
    free(d->hosts);
    free(d->addrs);
    free(d->ports);
    d->hosts = d->addrs = d->ports = NULL;
    d->nhosts = d->next_host = 0;
}

static bool pgd_needs_lookup(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (!*h || *h == '/' || *h == '@') /* default, or a Unix socket */
        return false;
    return inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h, buf) != 1;
}

/* conninfo's host, hostaddr and port, else the environment's. */
static PQconninfoOption *pgd_targets(const char *conninfo, const char **host,
                                     const char **hostaddr, const char **port, bool *bad)
{
    PQconninfoOption *opts = NULL;
    *host = *hostaddr = *port = NULL;
    *bad = false;
    if (*conninfo) {
        char *err = NULL;
        opts = PQconninfoParse(conninfo, &err);
        PQfreemem(err); /* PQconnectStartParams reports it */
        if (!opts) {
            *bad = true;
            return NULL;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (!strcmp(o->keyword, "host"))
                *host = o->val;
            else if (!strcmp(o->keyword, "hostaddr"))
                *hostaddr = o->val;
            else if (!strcmp(o->keyword, "port"))
                *port = o->val;
        }
    }
    if (!*host || !**host)
        *host = getenv("PGHOST");
    if (!*hostaddr || !**hostaddr)
        *hostaddr = getenv("PGHOSTADDR");
    if (!*port || !**port)
        *port = getenv("PGPORT");
    return opts;
}

/* Splits host into d->hosts; true when one of them is a name. */
static bool pgd_split_hosts(struct wb_pg_dns *d, const char *host)
{
    bool lookup = false;
    for (const char *p = host;; p++) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        d->hosts = wb_xrealloc(d->hosts, (d->nhosts + 1) * sizeof *d->hosts);
        d->addrs = wb_xrealloc(d->addrs, (d->nhosts + 1) * sizeof *d->addrs);
        d->hosts[d->nhosts] = wb_xstrndup(p, n);
        d->addrs[d->nhosts] = wb_xstrdup("");
        lookup |= pgd_needs_lookup(d->hosts[d->nhosts++]);
        if (!end)
            break;
        p = end;
    }
    return lookup;
}

/* Several ports pair with the hosts one to one; one port serves all.
 * False on a mismatch, which is libpq's to report. */
static bool pgd_split_ports(struct wb_pg_dns *d, const char *port)
{
    d->ports = wb_xcalloc(d->nhosts, sizeof *d->ports);
    size_t i = 0;
    for (const char *p = port; i < d->nhosts; i++) {
        size_t n = strcspn(p, ",");
        d->ports[i] = wb_xstrndup(p, n);
        if (!p[n])
            break;
        p += n + 1;
    }
    return i == d->nhosts - 1;
}

/* Fills d->hosts when some host of this attempt is a name to look up. */
static bool pgd_plan(struct wb_pg_dns *d, const char *conninfo)
{
    const char *host, *hostaddr, *port;
    bool bad;
    PQconninfoOption *opts = pgd_targets(conninfo, &host, &hostaddr, &port, &bad);
    if (bad)
        return false;
    bool lookup = false;
    if (host && *host && !(hostaddr && *hostaddr))
        lookup = pgd_split_hosts(d, host);
    if (lookup && port && strchr(port, ','))
        lookup = pgd_split_ports(d, port);
    PQconninfoFree(opts);
    if (!lookup)
        pgd_free_hosts(d);
    return lookup;
}

static void pgd_release(struct wb_pg_dns *d)
{
    if (--d->running || !d->freeing)
        return;
    if (d->released)
        d->released(d->released_ud);
    free(d);
}

/* The addresses res gives, comma-separated ("" when none). */
static char *pgd_addresses(int status, const struct addrinfo *res)
{
    struct wb_buf ips;
    wb_buf_init(&ips);
    for (const struct addrinfo *a = status ? NULL : res; a; a = a->ai_next) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (a->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, ip, sizeof ip);
        else if (a->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof ip);
        if (*ip)
            wb_buf_printf(&ips, "%s%s", ips.len ? "," : "", ip);
    }
    return wb_buf_steal(&ips);
}

/* A name resolved: on to the next, or the attempt fails (done). */
static void pgd_resolved(struct wb_pg_dns *d, int status, char *ips)
{
    if (!*ips) {
        char *why = wb_xasprintf("could not translate host name \"%s\" to address: %s",
                                 d->hosts[d->next_host],
                                 status ? uv_strerror(status) : "no address");
        free(ips);
        d->done(why, d->ud);
        free(why);
        return;
    }
    free(d->addrs[d->next_host]);
    d->addrs[d->next_host++] = ips;
    pgd_lookup_next(d);
}

static void pgd_on_looked_up(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct pgd_lookup *l = (struct pgd_lookup *)req;
    struct wb_pg_dns *d = l->d;
    /* A lookup outliving its attempt (timeout, close) only lets go. */
    if (l->attempt == d->attempt && !d->freeing)
        pgd_resolved(d, status, pgd_addresses(status, res));
    uv_freeaddrinfo(res);
    free(l);
    pgd_release(d);
}

/* Starts the lookup of the current host's name; 0 or a libuv error. */
static int pgd_ask(struct wb_pg_dns *d)
{
    struct pgd_lookup *l = wb_xcalloc(1, sizeof *l);
    l->d = d;
    l->attempt = d->attempt;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int err = uv_getaddrinfo(d->loop, &l->req, pgd_on_looked_up, d->hosts[d->next_host], NULL,
                             &hints);
    if (err) {
        free(l);
        return err;
    }
    d->running++;
    return 0;
}

static void pgd_skip_numeric(struct wb_pg_dns *d)
{
    while (d->next_host < d->nhosts && !pgd_needs_lookup(d->hosts[d->next_host]))
        d->next_host++;
}

/* Looks up the next name; done(NULL) once every host has addresses. */
static void pgd_lookup_next(struct wb_pg_dns *d)
{
    pgd_skip_numeric(d);
    if (d->next_host == d->nhosts) {
        d->done(NULL, d->ud);
        return;
    }
    int err = pgd_ask(d);
    if (err)
        d->done(uv_strerror(err), d->ud);
}

struct wb_pg_dns *wb_pg_dns_new(uv_loop_t *loop, wb_pg_dns_fn done, void *ud)
{
    struct wb_pg_dns *d = wb_xcalloc(1, sizeof *d);
    d->loop = loop;
    d->done = done;
    d->ud = ud;
    return d;
}

int wb_pg_dns_start(struct wb_pg_dns *d, const char *conninfo)
{
    wb_pg_dns_cancel(d);
    if (!pgd_plan(d, conninfo))
        return 0;
    /* The plan holds a name, so the first step is a lookup, never done. */
    pgd_skip_numeric(d);
    int err = pgd_ask(d);
    return err ? err : 1;
}

void wb_pg_dns_params(const struct wb_pg_dns *d, struct wb_buf *host, struct wb_buf *hostaddr,
                      struct wb_buf *port)
{
    /* A name with several addresses becomes that many hosts, so libpq
     * still tries each in turn as its own lookup would have. */
    for (size_t i = 0; i < d->nhosts; i++) {
        for (const char *a = d->addrs[i];;) {
            size_t n = strcspn(a, ",");
            const char *sep = host->len ? "," : "";
            wb_buf_printf(host, "%s%s", sep, d->hosts[i]);
            wb_buf_printf(hostaddr, "%s%.*s", sep, (int)n, a);
            if (d->ports)
                wb_buf_printf(port, "%s%s", sep, d->ports[i]);
            if (!a[n])
                break;
            a += n + 1;
        }
    }
}

void wb_pg_dns_cancel(struct wb_pg_dns *d)
{
    d->attempt++;
    pgd_free_hosts(d);
}

void wb_pg_dns_free(struct wb_pg_dns *d, void (*released)(void *ud), void *ud)
{
    wb_pg_dns_cancel(d);
    d->freeing = true;
    d->released = released;
    d->released_ud = ud;
    if (d->running)
        return;
    if (released)
        released(ud);
    free(d);
}
