/* Small shared helpers: clocks, ISO 8601 times and request ids. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "lockgate/util.h"

int64_t lg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lg_time_format(int64_t ms, char *out)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    memcpy(out, buf, LG_TIME_LEN - 1);
    out[LG_TIME_LEN - 1] = '\0';
}

int lg_time_parse(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int millis = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
        return -1;
    const char *p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3) millis = millis * 10 + (*p - '0');
        if (digits == 0) return -1;
        for (; digits < 3; digits++) millis *= 10;
    }
    if (strcmp(p, "Z") != 0) return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    *ms = (int64_t)t * 1000 + millis;
    return 0;
}

void lg_request_id_new(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[8];
    if (RAND_bytes(r, sizeof(r)) != 1) memset(r, 0, sizeof(r));
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[16] = '\0';
}
