/* Events: parsing the JSON published on the events channel (SPEC section 9). */
#include <string.h>

#include <jansson.h>

#include "lockgate/event.h"

#define EVENT_MAX_BYTES 4096

static int copy_str(json_t *obj, const char *name, char *out, size_t cap, int required)
{
    json_t *v = json_object_get(obj, name);
    out[0] = '\0';
    if (v == NULL || json_is_null(v)) return required ? -1 : 0;
    if (!json_is_string(v)) return -1;
    size_t len = json_string_length(v);
    if (len >= cap) return -1;
    memcpy(out, json_string_value(v), len + 1);
    return 0;
}

int lg_event_parse(const char *json, size_t len, struct lg_event *ev)
{
    if (len > EVENT_MAX_BYTES) return -1;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL) return -1;
    int rc = -1;
    if (!json_is_object(root)) goto out;
    if (copy_str(root, "id", ev->id, sizeof(ev->id), 0) < 0 ||
        copy_str(root, "type", ev->type, sizeof(ev->type), 1) < 0 ||
        copy_str(root, "account_id", ev->account_id, sizeof(ev->account_id), 0) < 0 ||
        copy_str(root, "key_id", ev->key_id, sizeof(ev->key_id), 0) < 0 ||
        copy_str(root, "facility_id", ev->facility_id, sizeof(ev->facility_id), 0) < 0 ||
        copy_str(root, "unit_id", ev->unit_id, sizeof(ev->unit_id), 0) < 0 ||
        copy_str(root, "at", ev->at, sizeof(ev->at), 0) < 0)
        goto out;
    json_t *inc = json_object_get(root, "included");
    if (inc == NULL || json_is_null(inc))
        ev->included = -1;
    else if (json_is_boolean(inc))
        ev->included = json_is_true(inc);
    else
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
