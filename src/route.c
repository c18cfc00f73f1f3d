/* Strict parsing of public API paths: a fixed tree of literal segments and
 * identifier segments, nothing decoded, nothing normalised. */
#include <string.h>

#include "lockgate/route.h"

static int ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Splits PATH into at most MAX segments; -1 when a segment is empty (//,
 * trailing slash) or the path does not start with '/'. */
static int split(const char *path, const char *seg[], size_t len[], int max)
{
    if (path[0] != '/') return -1;
    int n = 0;
    const char *p = path + 1;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l == 0 || n == max) return -1;
        seg[n] = p;
        len[n] = l;
        n++;
        if (end == NULL) return n;
        p = end + 1;
    }
}

static int lit(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* An identifier segment into OUT (its characters were checked already). */
static int ident(const char *s, size_t len, char *out)
{
    if (len < 1 || len > LG_IDENT_MAX) return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

enum lg_route_kind lg_route_parse(const char *path, struct lg_route *r)
{
    const char *seg[8];
    size_t len[8];
    r->facility_id[0] = r->unit_id[0] = '\0';
    if (strcmp(path, "/") == 0) return r->kind = LG_ROUTE_NONE;
    int n = split(path, seg, len, 8);
    r->kind = LG_ROUTE_BAD;
    if (n < 0) return r->kind;
    /* Any segment that could never be an identifier or a literal is a bad request. */
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < len[i]; j++)
            if (!ident_char(seg[i][j])) return r->kind;
    r->kind = LG_ROUTE_NONE;
    if (n < 2 || !lit(seg[0], len[0], "v1")) return r->kind;
    if (lit(seg[1], len[1], "feed")) {
        if (n < 3 || !lit(seg[2], len[2], "facilities")) return r->kind;
        if (n == 3) return r->kind = LG_ROUTE_FEED_SNAPSHOT;
        if (n == 4 && lit(seg[3], len[3], "changes")) return r->kind = LG_ROUTE_FEED_CHANGES;
        if (n == 4 && lit(seg[3], len[3], "stream")) return r->kind = LG_ROUTE_FEED_STREAM;
        return r->kind;
    }
    if (!lit(seg[1], len[1], "facilities")) return r->kind;
    if (n == 2) return r->kind = LG_ROUTE_FACILITIES;
    if (ident(seg[2], len[2], r->facility_id) < 0) return r->kind = LG_ROUTE_BAD;
    if (n == 3) return r->kind = LG_ROUTE_FACILITY;
    if (!lit(seg[3], len[3], "units")) return r->kind = LG_ROUTE_NONE;
    if (n == 4) return r->kind = LG_ROUTE_UNITS;
    if (ident(seg[4], len[4], r->unit_id) < 0) return r->kind = LG_ROUTE_BAD;
    if (n == 5) return r->kind = LG_ROUTE_UNIT;
    if (n == 6 && lit(seg[5], len[5], "unlock-code")) return r->kind = LG_ROUTE_UNLOCK_CODE;
    return r->kind = LG_ROUTE_NONE;
}

int lg_route_is_feed(enum lg_route_kind kind)
{
    return kind == LG_ROUTE_FEED_SNAPSHOT || kind == LG_ROUTE_FEED_CHANGES ||
           kind == LG_ROUTE_FEED_STREAM;
}
