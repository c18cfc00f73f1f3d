/* The access log: one JSON line per answered request on stdout, buffered
 * per thread and written in batches. Never a secret: the path is logged
 * without its query, and no header is. */
#ifndef LG_ACCESS_LOG_H
#define LG_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

struct lg_access_entry {
    const char *request_id; /* may be NULL */
    const char *client_ip;
    const char *method;
    const char *path; /* may be NULL (a request that could not be parsed) */
    int status;
    size_t bytes;
    int64_t ms;
};

/* Appends E's line to the calling thread's buffer; BASE is the thread's
 * loop, which flushes the buffer shortly after its first line. */
void lg_access_log(struct event_base *base, const struct lg_access_entry *e);
/* Writes out and frees the calling thread's buffer (a thread leaving its loop). */
void lg_access_log_thread_done(void);

#endif
