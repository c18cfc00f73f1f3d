/* Small shared helpers: clocks, time formatting, request ids. */
#ifndef LG_UTIL_H
#define LG_UTIL_H

#include <stdint.h>
#include <stddef.h>

#define LG_TIME_LEN 25 /* "2026-11-26T01:11:06.123Z" + NUL */

/* Wall clock in milliseconds since the epoch. */
int64_t lg_now_ms(void);
/* Monotonic clock in milliseconds. */
int64_t lg_mono_ms(void);
/* Monotonic clock in microseconds. */
int64_t lg_mono_us(void);
/* Formats MS as ISO 8601 UTC with milliseconds into OUT (LG_TIME_LEN bytes). */
void lg_time_format(int64_t ms, char *out);
/* Parses what lg_time_format writes (also without milliseconds). -1 on error. */
int lg_time_parse(const char *s, int64_t *ms);
/* FNV-1a of LEN bytes at DATA: the hash of every in-memory table. */
uint64_t lg_hash(const void *data, size_t len);
/* The longest request id, whether the client sent it (X-Request-Id: a token
 * of at most this many characters, else a new one is made) or lockgate made
 * it: every buffer that holds a request id has LG_REQUEST_ID_MAX + 1 bytes. */
#define LG_REQUEST_ID_MAX 64
/* 16 random hex chars + NUL into OUT (17 bytes: a request id buffer of
 * LG_REQUEST_ID_MAX + 1 has room), for request ids. */
void lg_request_id_new(char *out);

#endif
