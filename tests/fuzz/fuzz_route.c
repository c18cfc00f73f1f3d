/* Fuzz target: public API paths and query strings (route.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = malloc(size + 1);
    if (path == NULL) return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    struct lg_route r;
    enum lg_route_kind k = lg_route_parse(path, &r);
    /* Whatever parsed, the ids it gives are strict identifiers. */
    if (k != LG_ROUTE_BAD && k != LG_ROUTE_NONE) {
        if (strspn(r.facility_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
            strlen(r.facility_id))
            abort();
        if (strlen(r.facility_id) > LG_IDENT_MAX || strlen(r.unit_id) > LG_IDENT_MAX) abort();
    }
    free(path);
    return 0;
}
