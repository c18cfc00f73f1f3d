/* Public API routes (SPEC section 5): strict parsing of the request path. */
#ifndef LG_ROUTE_H
#define LG_ROUTE_H

#define LG_IDENT_MAX 64

enum lg_route_kind {
    LG_ROUTE_NONE = 0,      /* no such route: 404 */
    LG_ROUTE_BAD,           /* malformed path or id: 400 */
    LG_ROUTE_FACILITIES,    /* /v1/facilities */
    LG_ROUTE_FACILITY,      /* /v1/facilities/{fac} */
    LG_ROUTE_UNITS,         /* /v1/facilities/{fac}/units */
    LG_ROUTE_UNIT,          /* /v1/facilities/{fac}/units/{unit} */
    LG_ROUTE_UNLOCK_CODE,   /* /v1/facilities/{fac}/units/{unit}/unlock-code */
    LG_ROUTE_FEED_SNAPSHOT, /* /v1/feed/facilities */
    LG_ROUTE_FEED_CHANGES,  /* /v1/feed/facilities/changes */
    LG_ROUTE_FEED_STREAM    /* /v1/feed/facilities/stream */
};

struct lg_route {
    enum lg_route_kind kind;
    char facility_id[LG_IDENT_MAX + 1];
    char unit_id[LG_IDENT_MAX + 1];
};

/* Parses PATH (raw, undecoded, without the query). Ids must be
 * [A-Za-z0-9_-]{1,64}: anything else (percent escapes, dots, empty or
 * overlong segments, double slashes) is LG_ROUTE_BAD. Returns route->kind. */
enum lg_route_kind lg_route_parse(const char *path, struct lg_route *route);

/* True for routes that only feed keys may use. */
int lg_route_is_feed(enum lg_route_kind kind);

#endif
