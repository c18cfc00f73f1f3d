/* raw.h: raw client connections for the integration tests (header-only):
 * plain TCP or TLS (OpenSSL, verified against a given CA), bytes that curl
 * would never send, and a strict reader of what comes back, answer by answer.
 * It knows nothing of the harness; itest.h gives it ports and the CA file.
 *
 *   raw_connect(c, port, cafile, src_ip, err, errlen)  connects to 127.0.0.1:PORT
 *                            (from SRC_IP when set), TLS when CAFILE is set
 *                            (SNI and name "localhost"); 0, or -1 with ERR.
 *   raw_send(c, data, len)   writes everything it can; returns the bytes written
 *                            (fewer when the server closed first).
 *   raw_shutdown_wr(c)       half-close (shutdown(SHUT_WR)), plain TCP only.
 *   raw_read(c, buf)         reads what is there without waiting; returns
 *                            RAW_OPEN, RAW_EOF (orderly close) or RAW_RESET.
 *   raw_read_for(c, buf, ms, answers)  reads until the server closes, ANSWERS
 *                            complete answers are in (0: no such stop) or MS
 *                            passed; returns the state as raw_read.
 *   raw_close(c)
 *   raw_parse(buf, len, closed, out, max)  splits the bytes into at most MAX
 *                            answers (status line, header block, body by
 *                            Content-Length, chunked, or up to the close: complete
 *                            when CLOSED); returns how many began.
 *   raw_header(a, name)      a header value of an answer (malloc'd) or NULL.
 *   raw_answers_free(out, n)
 *   raw_escape(data, len, out, cap)  printable form of bytes for messages. */
#ifndef LG_RAW_H
#define LG_RAW_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RAW_FN static __attribute__((unused))

enum { RAW_OPEN = 0, RAW_EOF = 1, RAW_RESET = 2 };

struct raw_conn {
    int fd;
    SSL *ssl; /* NULL on plain TCP */
};

/* What the server sent on one connection. */
struct raw_buf {
    char *data; /* NUL-terminated; may hold NULs itself */
    size_t len, cap;
};

struct raw_answer {
    char first[160]; /* the status line, without its line end */
    int status;      /* 0 when the status line is not HTTP/x.y NNN */
    char *head;      /* header lines, each ending in CRLF or LF (malloc'd) */
    char *body;      /* decoded body (malloc'd, NUL-terminated) */
    size_t body_len;
    int complete; /* the whole answer arrived */
};

RAW_FN int64_t raw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One client context per CA file and process: verification is real (the
 * server's certificate must chain to CAFILE and name localhost). */
static SSL_CTX *raw_tls_ctx(const char *cafile)
{
    static SSL_CTX *ctx;
    static char loaded[4096];
    if (ctx != NULL && strcmp(loaded, cafile) == 0) return ctx;
    if (ctx != NULL) SSL_CTX_free(ctx);
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* a server that closes without close_notify is a close, not an error */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
        SSL_CTX_free(ctx);
        ctx = NULL;
        return NULL;
    }
    snprintf(loaded, sizeof(loaded), "%s", cafile);
    return ctx;
}

RAW_FN void raw_close(struct raw_conn *c)
{
    if (c->ssl != NULL) SSL_free(c->ssl); /* no close_notify: the tests decide what is sent */
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

RAW_FN int raw_connect(struct raw_conn *c, int port, const char *cafile, const char *src_ip,
                       char *err, size_t errlen)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    c->ssl = NULL;
    if (c->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* blocking with bounds until the request is written; reads poll */
    struct timeval tv = {2, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (src_ip != NULL) {
        struct sockaddr_in s = {.sin_family = AF_INET};
        inet_pton(AF_INET, src_ip, &s.sin_addr);
        if (bind(c->fd, (struct sockaddr *)&s, sizeof(s)) < 0) {
            snprintf(err, errlen, "bind %s: %s", src_ip, strerror(errno));
            raw_close(c);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        snprintf(err, errlen, "connect to port %d: %s", port, strerror(errno));
        raw_close(c);
        return -1;
    }
    if (cafile == NULL) return 0;
    SSL_CTX *ctx = raw_tls_ctx(cafile);
    if (ctx == NULL || (c->ssl = SSL_new(ctx)) == NULL) {
        snprintf(err, errlen, "TLS client context with CA %.160s failed", cafile);
        raw_close(c);
        return -1;
    }
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    if (SSL_connect(c->ssl) != 1) {
        unsigned long e = ERR_get_error();
        snprintf(err, errlen, "TLS handshake with port %d failed: %s", port,
                 e ? ERR_reason_error_string(e) : strerror(errno));
        ERR_clear_error();
        raw_close(c);
        return -1;
    }
    return 0;
}

RAW_FN size_t raw_send(struct raw_conn *c, const void *data, size_t len)
{
    const char *p = data;
    size_t done = 0;
    while (done < len) {
        size_t chunk = len - done > 16384 ? 16384 : len - done;
        ssize_t n;
        if (c->ssl != NULL) {
            n = SSL_write(c->ssl, p + done, (int)chunk);
            if (n <= 0) ERR_clear_error();
        } else {
            n = send(c->fd, p + done, chunk, MSG_NOSIGNAL);
        }
        if (n <= 0) break; /* the server may close early on purpose */
        done += (size_t)n;
    }
    return done;
}

RAW_FN void raw_shutdown_wr(struct raw_conn *c) { shutdown(c->fd, SHUT_WR); }

static void raw_buf_add(struct raw_buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *nd = realloc(b->data, cap);
        if (nd == NULL) return;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

RAW_FN void raw_buf_free(struct raw_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Reads what is readable now (never waits: the socket is made non-blocking). */
RAW_FN int raw_read(struct raw_conn *c, struct raw_buf *b)
{
    int fl = fcntl(c->fd, F_GETFL);
    if (!(fl & O_NONBLOCK)) fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    char chunk[16384];
    for (;;) {
        if (c->ssl != NULL) {
            int n = SSL_read(c->ssl, chunk, sizeof(chunk));
            if (n > 0) {
                raw_buf_add(b, chunk, (size_t)n);
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            int saved = errno;
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return RAW_OPEN;
            if (e == SSL_ERROR_ZERO_RETURN) return RAW_EOF;
            if (e == SSL_ERROR_SYSCALL && (saved == ECONNRESET || saved == EPIPE)) return RAW_RESET;
            if (e == SSL_ERROR_SYSCALL && saved == EAGAIN) return RAW_OPEN;
            return RAW_EOF; /* an alert or a broken record ends it too */
        }
        ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
        if (n > 0) {
            raw_buf_add(b, chunk, (size_t)n);
            continue;
        }
        if (n == 0) return RAW_EOF;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return RAW_OPEN;
        if (errno == EINTR) continue;
        return RAW_RESET;
    }
}

RAW_FN int raw_parse(const char *buf, size_t len, int closed, struct raw_answer *out, int max);
RAW_FN void raw_answers_free(struct raw_answer *a, int n);

static int raw_complete_answers(const struct raw_buf *b)
{
    struct raw_answer a[16];
    int n = raw_parse(b->data ? b->data : "", b->len, 0, a, 16);
    int done = 0;
    for (int i = 0; i < n; i++) done += a[i].complete;
    raw_answers_free(a, n);
    return done;
}

RAW_FN int raw_read_for(struct raw_conn *c, struct raw_buf *b, int ms, int answers)
{
    int64_t end = raw_mono_ms() + ms;
    for (;;) {
        int st = raw_read(c, b);
        if (st != RAW_OPEN) return st;
        if (answers > 0 && raw_complete_answers(b) >= answers) return RAW_OPEN;
        int64_t left = end - raw_mono_ms();
        if (left <= 0) return RAW_OPEN;
        if (c->ssl != NULL && SSL_pending(c->ssl) > 0) continue;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        poll(&p, 1, left > 50 ? 50 : (int)left);
    }
}

/* ---- answers ---- */

/* The next line of [P, END): its length without the line end into *LLEN;
 * returns the start of the following line, or NULL when the line is not
 * complete yet. */
static const char *raw_line(const char *p, const char *end, size_t *llen)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) return NULL;
    *llen = (size_t)(nl - p);
    if (*llen > 0 && p[*llen - 1] == '\r') (*llen)--;
    return nl + 1;
}

static const char *raw_find_header(const char *head, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    for (const char *p = head; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t llen = nl ? (size_t)(nl - p) : strlen(p);
        if (llen > 0 && p[llen - 1] == '\r') llen--;
        if (llen > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t n = llen - (size_t)(v - p);
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
            *vlen = n;
            return v;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

RAW_FN char *raw_header(const struct raw_answer *a, const char *name)
{
    size_t n;
    const char *v = a->head ? raw_find_header(a->head, name, &n) : NULL;
    return v ? strndup(v, n) : NULL;
}

RAW_FN int raw_parse(const char *buf, size_t len, int closed, struct raw_answer *out, int max)
{
    const char *p = buf, *end = buf + len;
    int n = 0;
    while (p < end && n < max) {
        struct raw_answer *a = &out[n++];
        memset(a, 0, sizeof(*a));
        size_t llen;
        const char *next = raw_line(p, end, &llen);
        size_t shown = next ? llen : (size_t)(end - p);
        if (shown >= sizeof(a->first)) shown = sizeof(a->first) - 1;
        memcpy(a->first, p, shown);
        for (size_t i = 0; i < shown; i++)
            if ((unsigned char)a->first[i] < 0x20) a->first[i] = '?';
        a->first[shown] = '\0';
        /* any version (it may be echoed wrongly), a space, three digits */
        const char *sp = strncmp(a->first, "HTTP/", 5) == 0 ? strchr(a->first, ' ') : NULL;
        if (sp != NULL && sp[1] >= '1' && sp[1] <= '5' && sp[2] >= '0' && sp[2] <= '9' &&
            sp[3] >= '0' && sp[3] <= '9' && (sp[4] == ' ' || sp[4] == '\0'))
            a->status = atoi(sp + 1);
        a->head = strdup("");
        a->body = strdup("");
        if (next == NULL || a->status == 0) return n; /* not an answer we can walk past */
        p = next;
        /* header lines up to the empty one */
        const char *hstart = p;
        int head_done = 0;
        while (p < end) {
            next = raw_line(p, end, &llen);
            if (next == NULL) break;
            p = next;
            if (llen == 0) {
                head_done = 1;
                break;
            }
        }
        free(a->head);
        a->head = strndup(hstart, (size_t)(p - hstart));
        if (!head_done) return n;
        size_t vlen;
        const char *te = raw_find_header(a->head, "Transfer-Encoding", &vlen);
        const char *cl = raw_find_header(a->head, "Content-Length", &vlen);
        int no_body = (a->status >= 100 && a->status < 200) || a->status == 204 || a->status == 304;
        if (no_body) {
            a->complete = 1;
        } else if (te != NULL && strncasecmp(te, "chunked", 7) == 0) {
            struct raw_buf body = {0};
            for (;;) {
                next = raw_line(p, end, &llen);
                if (next == NULL) break;
                unsigned long size = strtoul(p, NULL, 16);
                if (size == 0) { /* last chunk, then trailers up to an empty line */
                    p = next;
                    while ((next = raw_line(p, end, &llen)) != NULL) {
                        p = next;
                        if (llen == 0) {
                            a->complete = 1;
                            break;
                        }
                    }
                    break;
                }
                if ((size_t)(end - next) < size + 2) {
                    raw_buf_add(&body, next, (size_t)(end - next));
                    p = end;
                    break;
                }
                raw_buf_add(&body, next, size);
                p = next + size;
                if (p < end && *p == '\r') p++;
                if (p < end && *p == '\n') p++;
            }
            if (body.data != NULL) {
                free(a->body);
                a->body = body.data;
                a->body_len = body.len;
            }
        } else if (cl != NULL) {
            size_t want = (size_t)strtoull(cl, NULL, 10);
            size_t have = (size_t)(end - p) < want ? (size_t)(end - p) : want;
            free(a->body);
            a->body = strndup(p, have);
            a->body_len = have;
            a->complete = have == want;
            p += have;
        } else { /* to the end of the connection */
            free(a->body);
            a->body = strndup(p, (size_t)(end - p));
            a->body_len = (size_t)(end - p);
            a->complete = closed;
            p = end;
        }
    }
    return n;
}

RAW_FN void raw_answers_free(struct raw_answer *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].head);
        free(a[i].body);
        a[i].head = a[i].body = NULL;
    }
}

RAW_FN const char *raw_escape(const char *data, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (ch == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (ch < 0x20 || ch >= 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    if (cap > 0) out[o < cap ? o : cap - 1] = '\0';
    return out;
}

#endif
