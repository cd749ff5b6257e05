/* stderr logging: "LEVEL message" text lines, or one JSON object per line. */
#include "warmbench/log.h"
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum wb_log_level min_level = WB_LOG_INFO;
static enum wb_log_format fmt_kind = WB_LOG_TEXT;
static const char *const names[] = {"debug", "info", "warn", "error"};

void wb_log_setup(enum wb_log_level level, enum wb_log_format format)
{
    min_level = level;
    fmt_kind = format;
}

int wb_log_level_parse(const char *s)
{
    if (!strcasecmp(s, "warning"))
        return WB_LOG_WARN;
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, names[i]))
            return i;
    return -1;
}

void wb_log(enum wb_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* A log line is one line: data never splits it. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (fmt_kind == WB_LOG_JSON) {
        json_t *o = json_pack("{s:s+,s:s,s:s}", "ts", when, "Z", "level", names[level],
                              "msg", msg);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(o);
    } else {
        fprintf(stderr, "%sZ %s %s\n", when, names[level], msg);
    }
}
