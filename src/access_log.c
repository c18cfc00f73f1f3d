/* The access log, gathered in a per-thread buffer and written with one
 * write() when it fills or, at the latest, FLUSH_MS after its first line,
 * so a busy gateway does not pay a syscall and a stdio lock per request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lockgate/access_log.h"
#include "lockgate/util.h"

#define BUF_SIZE 65536
#define LINE_MAX 1024
#define FLUSH_MS 100

struct access_buf {
    struct event *timer;
    size_t len;
    char data[BUF_SIZE];
};
static _Thread_local struct access_buf *buf;

static void flush(void)
{
    size_t off = 0;
    while (buf != NULL && off < buf->len) {
        ssize_t n = write(STDOUT_FILENO, buf->data + off, buf->len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* stdout gone: the lines are lost, not the gateway */
        off += (size_t)n;
    }
    if (buf != NULL) buf->len = 0;
}

static void on_flush(evutil_socket_t fd, short what, void *arg) { flush(); }

void lg_access_log_thread_done(void)
{
    flush();
    if (buf != NULL && buf->timer != NULL) event_free(buf->timer);
    free(buf);
    buf = NULL;
}

/* Appends S to OUT as JSON string content: printable ASCII only (other bytes
 * become '?'), quotes and backslashes escaped, at most MAX source bytes. */
static size_t json_text(char *out, const char *s, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; s[i] && i < max; i++) {
        char ch = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        if (ch == '"' || ch == '\\') out[n++] = '\\';
        out[n++] = ch;
    }
    return n;
}

void lg_access_log(struct event_base *base, const struct lg_access_entry *e)
{
    if (buf == NULL) {
        if ((buf = calloc(1, sizeof(*buf))) == NULL) return;
        if ((buf->timer = evtimer_new(base, on_flush, NULL)) == NULL) {
            free(buf);
            buf = NULL;
            return;
        }
    }
    char at[LG_TIME_LEN], line[LINE_MAX], rid[2 * LG_REQUEST_ID_MAX + 1], path[520];
    lg_time_format(lg_now_ms(), at);
    rid[json_text(rid, e->request_id ? e->request_id : "", LG_REQUEST_ID_MAX)] = '\0';
    path[json_text(path, e->path ? e->path : "", 256)] = '\0';
    int n = snprintf(line, sizeof(line),
                     "{\"at\":\"%s\",\"request_id\":\"%s\",\"client_ip\":\"%s\",\"method\":\"%s\","
                     "\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"ms\":%lld}\n",
                     at, rid, e->client_ip, e->method, path, e->status, e->bytes, (long long)e->ms);
    if (n <= 0 || (size_t)n >= sizeof(line)) return;
    if (buf->len + (size_t)n > BUF_SIZE) flush();
    if (buf->len == 0) {
        struct timeval tv = {0, FLUSH_MS * 1000};
        evtimer_add(buf->timer, &tv);
    }
    memcpy(buf->data + buf->len, line, (size_t)n);
    buf->len += (size_t)n;
}
