/* Fuzz target: PROXY protocol v1/v2 headers (proxy_proto.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lockgate/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lg_proxy_addr a;
    int n = lg_proxy_parse(data, size, &a);
    /* A header is never longer than what was given, nor than the cap; its
     * address is one of the families it may be. */
    if (n > 0 && ((size_t)n > size || n > LG_PROXY_MAX)) abort();
    if (n > 0 && a.family != AF_INET && a.family != AF_INET6 && a.family != AF_UNSPEC) abort();
    /* Every beginning of a valid header asks for more, never refuses. */
    if (n > 0)
        for (int k = 0; k < n; k++)
            if (lg_proxy_parse(data, (size_t)k, &a) != 0) abort();
    return 0;
}
