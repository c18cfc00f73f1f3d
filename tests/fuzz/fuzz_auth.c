/* Fuzz target: credentials from request headers (auth.c), split from one
 * input into an Authorization value and an X-API-Key / X-API-Secret pair. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/auth.h"
#include "lockgate/cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    /* fields separated by NUL bytes: authorization, key, secret */
    const char *f[3] = {NULL, NULL, NULL};
    size_t off = 0;
    for (int i = 0; i < 3 && off <= size; i++) {
        f[i] = buf + off;
        off += strlen(buf + off) + 1;
    }
    char key[LG_KEY_LEN + 1], secret[LG_SECRET_LEN + 1];
    const char *auth = (size > 0 && data[0] & 1) ? f[0] : NULL;
    if (lg_auth_parse(auth, f[1], f[2], key, secret) == LG_AUTH_OK) {
        /* only well-formed, checksummed credentials come out */
        if (!lg_cred_key_valid(key, strlen(key)) || !lg_cred_secret_valid(secret, strlen(secret)))
            abort();
    }
    free(buf);
    return 0;
}
