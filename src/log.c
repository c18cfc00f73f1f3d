/* Leveled logging: one line per message on stderr, with a UTC timestamp. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lockgate/log.h"
#include "lockgate/util.h"

/* Set again on SIGHUP while workers log: atomic, read relaxed. */
static _Atomic int min_level = LG_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void lg_log_set_level(enum lg_log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

int lg_log_level_parse(const char *s, enum lg_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum lg_log_level)i;
            return 0;
        }
    }
    return -1;
}

void lg_log(enum lg_log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed)) return;
    char ts[LG_TIME_LEN], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lg_time_format(lg_now_ms(), ts);
    /* One fprintf per line so lines from several threads do not interleave. */
    fprintf(stderr, "%s lockgate[%s] %s\n", ts, level_names[level], msg);
}
