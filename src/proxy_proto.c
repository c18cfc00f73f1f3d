/* The PROXY protocol, versions 1 and 2 (haproxy's doc/proxy-protocol.txt):
 * the header's parser, and the wait for it on fresh connections. The header
 * is peeked, never read past: the bytes after it (a TLS ClientHello, an HTTP
 * request) stay in the socket for whoever takes the connection next. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "lockgate/log.h"
#include "lockgate/proxy_proto.h"
#include "lockgate/util.h"

#define V1_MAX 107 /* "PROXY TCP6 " + two addresses + two ports + CRLF */

static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A port: 1 to 5 decimal digits without a leading zero (except "0"), <= 65535. */
static int port_parse(const char *s, size_t len)
{
    if (len == 0 || len > 5 || (len > 1 && s[0] == '0')) return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

static int parse_v1(const unsigned char *buf, size_t len, struct lg_proxy_addr *out)
{
    static const char prefix[] = "PROXY ";
    size_t plen = sizeof(prefix) - 1;
    if (memcmp(buf, prefix, len < plen ? len : plen) != 0) return -1;
    size_t end = 0;
    for (size_t i = plen; i + 1 < len && i + 1 < V1_MAX; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            end = i;
            break;
        }
    if (end == 0) {
        for (size_t i = 0; i < len && i < V1_MAX; i++)
            if (buf[i] == '\n' || buf[i] == '\0') return -1; /* a bare LF or a NUL */
        return len >= V1_MAX ? -1 : 0;
    }
    for (size_t i = 0; i < end; i++)
        if (buf[i] == '\n' || buf[i] == '\0') return -1; /* as when the CRLF was not in yet */
    const char *line = (const char *)buf + plen;
    size_t llen = end - plen;
    if (llen >= 7 && memcmp(line, "UNKNOWN", 7) == 0) {
        out->family = AF_UNSPEC;
        return (int)end + 2;
    }
    /* exactly five fields separated by single spaces */
    const char *f[5];
    size_t flen[5];
    int n = 0;
    for (size_t i = 0; i <= llen;) {
        size_t j = i;
        while (j < llen && line[j] != ' ') j++;
        if (n == 5 || j == i) return -1;
        f[n] = line + i;
        flen[n++] = j - i;
        i = j + 1;
    }
    if (n != 5) return -1;
    int family;
    if (flen[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
        family = AF_INET;
    else if (flen[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return -1;
    char text[INET6_ADDRSTRLEN];
    unsigned char dst[16];
    memset(out, 0, sizeof(*out));
    int sport = port_parse(f[3], flen[3]), dport = port_parse(f[4], flen[4]);
    if (sport < 0 || dport < 0 || flen[1] >= sizeof(text) || flen[2] >= sizeof(text)) return -1;
    memcpy(text, f[2], flen[2]);
    text[flen[2]] = '\0';
    if (inet_pton(family, text, dst) != 1) return -1;
    memcpy(text, f[1], flen[1]);
    text[flen[1]] = '\0';
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->src;
        if (inet_pton(AF_INET, text, &sin->sin_addr) != 1) return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)sport);
        out->len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->src;
        if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)sport);
        out->len = sizeof(*sin6);
    }
    out->family = family;
    return (int)end + 2;
}

static int parse_v2(const unsigned char *buf, size_t len, struct lg_proxy_addr *out)
{
    if (memcmp(buf, v2_sig, len < sizeof(v2_sig) ? len : sizeof(v2_sig)) != 0) return -1;
    if (len >= 13 && ((buf[12] >> 4) != 2 || (buf[12] & 0x0F) > 1)) return -1;
    if (len < 16) return 0;
    size_t total = 16 + ((size_t)buf[14] << 8 | buf[15]);
    if (total > LG_PROXY_MAX) return -1;
    if (len < total) return 0;
    memset(out, 0, sizeof(*out));
    out->family = AF_UNSPEC;
    if ((buf[12] & 0x0F) == 0) return (int)total; /* LOCAL: the balancer itself */
    const unsigned char *a = buf + 16;
    switch (buf[13]) {
    case 0x00: return (int)total; /* UNSPEC */
    case 0x11: {                  /* TCP over IPv4: src, dst, sport, dport */
        if (total - 16 < 12) return -1;
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->src;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a, 4);
        memcpy(&sin->sin_port, a + 8, 2);
        out->family = AF_INET;
        out->len = sizeof(*sin);
        return (int)total;
    }
    case 0x21: { /* TCP over IPv6 */
        if (total - 16 < 36) return -1;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->src;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, a, 16);
        memcpy(&sin6->sin6_port, a + 32, 2);
        out->family = AF_INET6;
        out->len = sizeof(*sin6);
        return (int)total;
    }
    default: return -1; /* UDP and unix sockets: not for an HTTP listener */
    }
}

int lg_proxy_parse(const unsigned char *buf, size_t len, struct lg_proxy_addr *out)
{
    if (len == 0) return 0;
    if (buf[0] == 'P') return parse_v1(buf, len, out);
    if (buf[0] == 0x0D) return parse_v2(buf, len, out);
    return -1;
}

/* ---- waiting for the header ---- */

struct pending {
    struct pending *prev, *next;
    struct lg_proxy_waiter *w;
    evutil_socket_t fd;
    struct event *ev;
    int64_t deadline_ms;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    /* what came of a header not whole yet: taken from the socket, so that
     * its read event does not fire again for the same bytes */
    size_t have;
    unsigned char buf[LG_PROXY_MAX];
};

struct lg_proxy_waiter {
    struct event_base *base;
    int timeout_ms, max_pending, npending;
    lg_proxy_done_cb *cb;
    void *arg;
    struct pending *list;
};

static void pending_end(struct pending *p, bool close_fd)
{
    struct lg_proxy_waiter *w = p->w;
    if (p->prev)
        p->prev->next = p->next;
    else
        w->list = p->next;
    if (p->next) p->next->prev = p->prev;
    w->npending--;
    event_free(p->ev);
    if (close_fd) evutil_closesocket(p->fd);
    free(p);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    int64_t now = lg_mono_ms();
    if (now >= p->deadline_ms) {
        lg_debug("proxy protocol: no header in time; closing");
        pending_end(p, true);
        return;
    }
    /* peeked, so that the bytes after the header stay in the socket */
    unsigned char *buf = p->buf;
    ssize_t n = recv(fd, buf + p->have, sizeof(p->buf) - p->have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) n = -2;
    struct lg_proxy_addr addr;
    int rc = n > 0 ? lg_proxy_parse(buf, p->have + (size_t)n, &addr) : n == -2 ? 0 : -1;
    if (rc == 0 && p->have + (size_t)n == sizeof(p->buf)) rc = -1;
    if (rc < 0) {
        lg_debug("proxy protocol: %s; closing", n == 0  ? "closed before a header"
                                                : n < 0 ? "read error"
                                                        : "not a valid header");
        pending_end(p, true);
        return;
    }
    if (rc == 0) { /* more to come: wait, within what is left of the time */
        /* all of it is header: take it out of the socket */
        if (n > 0 && recv(fd, buf + p->have, (size_t)n, 0) != n) {
            pending_end(p, true);
            return;
        }
        if (n > 0) p->have += (size_t)n;
        int64_t left = p->deadline_ms - now;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        event_add(p->ev, &tv);
        return;
    }
    /* the rest of the header is in the socket: consume exactly it */
    size_t rest = (size_t)rc - p->have;
    if (rest > 0 && recv(fd, buf + p->have, rest, 0) != (ssize_t)rest) {
        pending_end(p, true);
        return;
    }
    struct lg_proxy_waiter *w = p->w;
    struct sockaddr_storage client;
    socklen_t clen;
    if (addr.family == AF_UNSPEC) {
        client = p->peer;
        clen = p->peer_len;
    } else {
        client = addr.src;
        clen = addr.len;
    }
    pending_end(p, false);
    w->cb(fd, (const struct sockaddr *)&client, clen, w->arg);
}

struct lg_proxy_waiter *lg_proxy_waiter_new(struct event_base *base, int timeout_ms,
                                            int max_pending, lg_proxy_done_cb *cb, void *arg)
{
    struct lg_proxy_waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) return NULL;
    w->base = base;
    w->timeout_ms = timeout_ms;
    w->max_pending = max_pending;
    w->cb = cb;
    w->arg = arg;
    return w;
}

void lg_proxy_waiter_add(struct lg_proxy_waiter *w, evutil_socket_t fd, const struct sockaddr *peer,
                         socklen_t len)
{
    struct pending *p = w->npending < w->max_pending ? calloc(1, sizeof(*p)) : NULL;
    if (p == NULL || len > (socklen_t)sizeof(p->peer) ||
        (p->ev = event_new(w->base, fd, EV_READ, on_readable, p)) == NULL) {
        free(p);
        evutil_closesocket(fd);
        return;
    }
    p->w = w;
    p->fd = fd;
    memcpy(&p->peer, peer, len);
    p->peer_len = len;
    p->deadline_ms = lg_mono_ms() + w->timeout_ms;
    p->next = w->list;
    if (w->list) w->list->prev = p;
    w->list = p;
    w->npending++;
    struct timeval tv = {w->timeout_ms / 1000, (w->timeout_ms % 1000) * 1000};
    event_add(p->ev, &tv);
}

void lg_proxy_waiter_free(struct lg_proxy_waiter *w)
{
    if (w == NULL) return;
    while (w->list != NULL) pending_end(w->list, true);
    free(w);
}
