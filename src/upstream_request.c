/* Building a request to the upstream: the caller's header lines checked
 * (token names, no CR or LF) and laid out once, with room in front for the
 * request line and Host of whichever URL it goes to. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "upstream_internal.h"

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    char *p = realloc(*buf, n);
    if (p == NULL) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* RFC 9110 token characters: what a header name may hold. */
/* clang-format off */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};
/* clang-format on */

/* A header line must be "Name: value" with a token name and no CR or LF:
 * anything else could split the request towards the upstream. Returns its
 * length (NAME_LEN set), or 0 when it is refused. */
static size_t header_len(const char *h, size_t *name_len)
{
    size_t n = 0;
    while (tchar[(unsigned char)h[n]]) n++;
    if (n == 0 || h[n] != ':') return 0;
    size_t v = strcspn(h + n, "\r\n");
    if (h[n + v] != '\0') return 0;
    *name_len = n;
    return n + v;
}

/* The path as sent: the fragment (never sent in HTTP) is left out. */
int lg_upstream_path_ok(const char *p, size_t *len)
{
    if (p == NULL || p[0] != '/') return 0;
    size_t n = 0;
    for (; p[n] && p[n] != '#'; n++) {
        unsigned char c = (unsigned char)p[n];
        if (c <= 0x20 || c >= 0x7f || n >= LG_UPSTREAM_PATH_MAX) return 0;
    }
    for (size_t i = n; p[i]; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || i >= LG_UPSTREAM_PATH_MAX) return 0;
    }
    *len = n;
    return 1;
}

/* Formats the header lines of the request into REQ's buffer, leaving room
 * for the request line and Host (lg_upstream_req_set_target writes them). Accept-Encoding
 * is left out: the result cannot carry a Content-Encoding, so the body must
 * come back as it is. */
int lg_upstream_req_format(struct lg_upstream_req *req, const char *path, size_t plen,
                           const char *const *headers)
{
    size_t lens[LG_UPSTREAM_HEADERS_MAX], names[LG_UPSTREAM_HEADERS_MAX];
    size_t count = 0, bytes = 0;
    req->own_host = 1;
    for (size_t i = 0; headers && headers[i]; i++) {
        if (count == LG_UPSTREAM_HEADERS_MAX) return -1;
        if ((lens[count] = header_len(headers[i], &names[count])) == 0) return -1;
        if (names[count] == 4 && strncasecmp(headers[i], "Host", 4) == 0) req->own_host = 0;
        bytes += lens[count] + 2;
        if (bytes > LG_UPSTREAM_HEADER_BYTES) return -1;
        count++;
    }
    size_t room = req->up->room_max + plen;
    if (grow(&req->out, &req->out_cap, room + bytes + 2 + plen) < 0) return -1;
    char *p = req->out + room;
    for (size_t i = 0; i < count; i++) {
        if (names[i] == 15 && strncasecmp(headers[i], "Accept-Encoding", 15) == 0) continue;
        memcpy(p, headers[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    req->room = room;
    req->end = (size_t)(p - req->out);
    req->path_off = req->end;
    req->path_len = plen;
    memcpy(p, path, plen);
    return 0;
}

void lg_upstream_req_set_target(struct lg_upstream_req *req, int idx)
{
    const struct lg_upstream_target *t = &req->up->targets[idx];
    const char *method = req->head ? "HEAD " : "GET ";
    size_t mlen = req->head ? 5 : 4;
    size_t len = mlen + t->prefix_len + req->path_len + 11;
    if (req->own_host) len += 6 + t->host_len + 2;
    char *p = req->out + req->room - len;
    req->start = req->room - len;
    memcpy(p, method, mlen);
    p += mlen;
    memcpy(p, t->prefix, t->prefix_len);
    p += t->prefix_len;
    memcpy(p, req->out + req->path_off, req->path_len);
    p += req->path_len;
    memcpy(p, " HTTP/1.1\r\n", 11);
    p += 11;
    if (req->own_host) {
        memcpy(p, "Host: ", 6);
        memcpy(p + 6, t->host, t->host_len);
        memcpy(p + 6 + t->host_len, "\r\n", 2);
    }
    req->target = idx;
}
