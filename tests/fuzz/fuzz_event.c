/* Fuzz target: events received on the events channel (event.c), and the
 * time and CIDR parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/cache.h"
#include "lockgate/event.h"
#include "lockgate/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lg_event ev;
    lg_event_parse((const char *)data, size, &ev);
    char *s = malloc(size + 1);
    if (s == NULL) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms;
    if (lg_time_parse(s, &ms) == 0) {
        char out[LG_TIME_LEN];
        lg_time_format(ms, out); /* must not overflow */
    }
    struct lg_cidr c;
    if (lg_cidr_parse(s, &c) == 0 && (c.bits < 0 || c.bits > 128)) abort();
    free(s);
    return 0;
}
