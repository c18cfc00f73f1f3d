/* Fuzz target: admin API request bodies through the validators (admin_json.c). */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "../../src/admin_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    static const char *const allowed[] = {"name",    "all_facilities", "facilities",
                                          "rate_per_sec", "burst",     "allowed_cidrs",
                                          "expires_at", NULL};
    char err[256], cidrs[4096], exp[LG_TIME_LEN];
    const char *name;
    long long v;
    lg_admin_fields_check(body, allowed, err, sizeof(err));
    lg_admin_name_get(body, "name", true, &name, err, sizeof(err));
    lg_admin_int_get(body, "burst", 1, 100000, true, &v, err, sizeof(err));
    lg_admin_cidrs_get(body, cidrs, sizeof(cidrs), err, sizeof(err));
    lg_admin_expiry_get(body, 1800000000000LL, exp, err, sizeof(err));
    json_decref(body);
    return 0;
}
