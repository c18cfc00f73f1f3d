/* Fuzz target: credential forms and sealed secrets (cred.c). An unsealed
 * value must only ever come from a value sealed with the same key and id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char master[LG_SECRET_KEY_BYTES] = {1, 2, 3};
    char *s = malloc(size + 1);
    if (s == NULL) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    lg_cred_key_valid(s, size);
    lg_cred_secret_valid(s, size);
    lg_id_valid("fac_", s, size);
    lg_ident_valid(s, size);
    char *open = lg_cred_unseal(master, "lk_fuzz", s);
    if (open != NULL) abort(); /* forging AES-GCM by chance: impossible */
    free(s);
    return 0;
}
