/* Machine-open and machine-click rules. Every list lives here, each entry
 * with the reason it is on it, so an operator can see why an event was
 * flagged and a new scanner is a one-line change. */
#include "warmbench/machine.h"
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct pattern {
    const char *needle; /* matched case-insensitively anywhere in the User-Agent */
    const char *reason;
};

/* Fetchers that load images on the reader's behalf, so an "open" says
 * nothing about a person having looked. */
static const struct pattern open_agents[] = {
    /* Gmail fetches every image through its proxy, often at delivery. */
    {"GoogleImageProxy", "google-proxy"},
    {"ggpht.com", "google-proxy"},
    /* Yahoo and AOL Mail cache images through their own proxy. */
    {"YahooMailProxy", "yahoo-proxy"},
    /* Outlook.com / Office 365 prefetch images for previews. */
    {"OutlookPrefetch", "outlook-prefetch"},
    {"Microsoft Office Protocol Discovery", "outlook-prefetch"},
    /* Security gateways render mail to scan it before the reader sees it. */
    {"Barracuda", "scanner"},
    {"Mimecast", "scanner"},
    {"Proofpoint", "scanner"},
};

/* Agents that follow links without a person: mail security gateways that
 * detonate every URL, chat and social unfurlers, HTTP libraries and bots. */
static const struct pattern click_agents[] = {
    /* Barracuda's Link Protection visits links at delivery. */
    {"Barracuda", "scanner"},
    /* Mimecast URL Protect rewrites and pre-checks links. */
    {"Mimecast", "scanner"},
    /* Proofpoint URL Defense follows links to sandbox them. */
    {"Proofpoint", "scanner"},
    /* Microsoft Defender Safe Links and Trend Micro / Symantec gateways. */
    {"SafeLinks", "scanner"},
    {"Trend Micro", "scanner"},
    {"Symantec", "scanner"},
    /* Scripts: no person clicks with an HTTP library. */
    {"python-requests", "script"},
    {"Python-urllib", "script"},
    {"curl/", "script"},
    {"Wget", "script"},
    {"Go-http-client", "script"},
    {"libwww-perl", "script"},
    {"Java/", "script"},
    {"okhttp", "script"},
    {"HeadlessChrome", "script"},
    /* Link unfurlers in chat and social apps fetch to build a preview. */
    {"Slackbot", "unfurler"},
    {"facebookexternalhit", "unfurler"},
    {"LinkedInBot", "unfurler"},
    {"Twitterbot", "unfurler"},
    {"WhatsApp", "unfurler"},
    {"TelegramBot", "unfurler"},
    {"Discordbot", "unfurler"},
    /* Search and other crawlers that found a forwarded link. */
    {"bot/", "crawler"},
    {"spider", "crawler"},
    {"crawler", "crawler"},
    /* Image proxies also resolve links when they expand previews. */
    {"GoogleImageProxy", "google-proxy"},
};

static const char *mach_match(const char *ua, const struct pattern *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasestr(ua, p[i].needle))
            return p[i].reason;
    return NULL;
}

/* Apple Mail Privacy Protection loads every image from Apple's own
 * network (17.0.0.0/8) with a bare "Mozilla/5.0" agent, whether or not
 * the mail is ever read. */
static bool mach_apple_mpp(const struct wb_machine_req *r)
{
    if (r->user_agent && !strcmp(r->user_agent, "Mozilla/5.0"))
        return true;
    const char *ip = r->remote_ip;
    if (ip && !strncasecmp(ip, "::ffff:", 7))
        ip += 7; /* IPv4-mapped, from a dual-stack listener */
    return ip && !strncmp(ip, "17.", 3);
}

/* Browsers announce speculative loads; nobody has looked yet. */
static bool mach_prefetch(const struct wb_machine_req *r)
{
    return r->purpose && (strcasestr(r->purpose, "prefetch") || strcasestr(r->purpose, "preview"));
}

const char *wb_machine_open(const struct wb_machine_req *r)
{
    /* A mail client GETs images; HEAD is someone checking the URL. */
    if (r->head)
        return "head";
    /* A person's mail client always names itself; nothing does not. */
    if (!r->user_agent || !*r->user_agent)
        return "no-agent";
    if (mach_apple_mpp(r))
        return "apple-mpp";
    if (mach_prefetch(r))
        return "prefetch";
    return mach_match(r->user_agent, open_agents, sizeof open_agents / sizeof open_agents[0]);
}

const char *wb_machine_click(const struct wb_machine_req *r)
{
    /* Browsers follow links with GET; HEAD is a checker testing the URL. */
    if (r->head)
        return "head";
    if (!r->user_agent || !*r->user_agent)
        return "no-agent";
    if (mach_prefetch(r))
        return "prefetch";
    const char *why = mach_match(r->user_agent, click_agents, sizeof click_agents / sizeof click_agents[0]);
    if (why)
        return why;
    /* No one reads a mail and clicks within seconds of its send; a gateway
     * scanning it on delivery does. */
    if (r->since_send_s >= 0 && r->since_send_s < r->machine_click_s)
        return "too-soon";
    return NULL;
}
