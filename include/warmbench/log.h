/* Logging to stderr (journald under systemd): one line per event worth an
 * operator's attention, as text or as one JSON object per line. */
#ifndef WB_LOG_H
#define WB_LOG_H

enum wb_log_level { WB_LOG_DEBUG, WB_LOG_INFO, WB_LOG_WARN, WB_LOG_ERROR };
enum wb_log_format { WB_LOG_TEXT, WB_LOG_JSON };

void wb_log_setup(enum wb_log_level level, enum wb_log_format format);
/* Parses "debug", "info", "warn"/"warning", "error"; -1 when unknown. */
int wb_log_level_parse(const char *s);
void wb_log(enum wb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define wb_debug(...) wb_log(WB_LOG_DEBUG, __VA_ARGS__)
#define wb_info(...)  wb_log(WB_LOG_INFO, __VA_ARGS__)
#define wb_warn(...)  wb_log(WB_LOG_WARN, __VA_ARGS__)
#define wb_error(...) wb_log(WB_LOG_ERROR, __VA_ARGS__)

#endif
