/* The PROXY protocol (haproxy's v1 text and v2 binary headers): a load
 * balancer in front names the client's address before the first byte of the
 * connection's own traffic. */
#ifndef LG_PROXY_PROTO_H
#define LG_PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/util.h>

struct event_base;
struct lg_proxy_waiter;

/* Longest header accepted: a v1 line is at most 107 bytes; a v2 header with
 * its TLVs beyond this is refused. */
#define LG_PROXY_MAX 1024

/* What a header says. FAMILY AF_UNSPEC: no address (v1 UNKNOWN, v2 LOCAL
 * such as a balancer's health check, v2 UNSPEC): the socket's own peer is
 * the client then. */
struct lg_proxy_addr {
    int family; /* AF_INET, AF_INET6 or AF_UNSPEC */
    struct sockaddr_storage src;
    socklen_t len;
};

/* Parses a PROXY v1 or v2 header at the start of BUF (LEN bytes, borrowed).
 * Returns the header's length (> 0) with *OUT filled, 0 when BUF is a valid
 * beginning that needs more bytes, -1 when it is not a valid header. */
int lg_proxy_parse(const unsigned char *buf, size_t len, struct lg_proxy_addr *out);

/* Called with a connection whose header was read (and consumed from the
 * socket): FD (ownership passes) and the client's address (borrowed). */
typedef void lg_proxy_done_cb(evutil_socket_t fd, const struct sockaddr *client, socklen_t len,
                              void *arg);

/* Reads PROXY headers off fresh connections on BASE, each within TIMEOUT_MS,
 * at most MAX_PENDING at a time. NULL when out of memory. */
struct lg_proxy_waiter *lg_proxy_waiter_new(struct event_base *base, int timeout_ms,
                                            int max_pending, lg_proxy_done_cb *cb, void *arg);
/* Takes FD (non-blocking; ownership passes) whose socket peer is PEER
 * (copied); CB hears it once its header is read. A connection without a
 * valid header within the time, one that closes first, or one past
 * MAX_PENDING is closed. */
void lg_proxy_waiter_add(struct lg_proxy_waiter *w, evutil_socket_t fd, const struct sockaddr *peer,
                         socklen_t len);
/* Closes every connection still waiting and frees W. */
void lg_proxy_waiter_free(struct lg_proxy_waiter *w);

#endif
