/* Leveled logging to stderr. Never pass a secret or an Authorization header. */
#ifndef LG_LOG_H
#define LG_LOG_H

enum lg_log_level { LG_LOG_DEBUG, LG_LOG_INFO, LG_LOG_WARN, LG_LOG_ERROR };

/* Lines below LEVEL are dropped. Thread-safe (SIGHUP sets it while workers log). */
void lg_log_set_level(enum lg_log_level level);
/* Parses "debug", "info", "warn", "error"; returns -1 on anything else. */
int lg_log_level_parse(const char *s, enum lg_log_level *out);
void lg_log(enum lg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef NDEBUG
#define lg_debug(...) ((void)0)
#else
#define lg_debug(...) lg_log(LG_LOG_DEBUG, __VA_ARGS__)
#endif
#define lg_info(...)  lg_log(LG_LOG_INFO, __VA_ARGS__)
#define lg_warn(...)  lg_log(LG_LOG_WARN, __VA_ARGS__)
#define lg_error(...) lg_log(LG_LOG_ERROR, __VA_ARGS__)

#endif
