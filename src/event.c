/* Events: parsing the JSON published on the events channel, and the same
 * event as an entry of the events stream (SPEC section 9). */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

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

/* FIELD's value into OUT (CAP bytes): 0, or -1 when it does not fit. */
static int entry_field(const redisReply *v, char *out, size_t cap)
{
    if (v->type != REDIS_REPLY_STRING || v->len >= cap) return -1;
    memcpy(out, v->str, v->len + 1);
    return 0;
}

int lg_event_from_entry(const redisReply *entry, struct lg_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->included = -1;
    if (entry == NULL || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) return -1;
    const redisReply *id = entry->element[0], *f = entry->element[1];
    if (entry_field(id, ev->id, sizeof(ev->id)) < 0 || f->type != REDIS_REPLY_ARRAY) return -1;
    static const struct {
        const char *name;
        size_t offset, size;
    } fields[] = {
#define EVF(n) {#n, offsetof(struct lg_event, n), sizeof(((struct lg_event *)0)->n)}
        EVF(type), EVF(account_id), EVF(key_id), EVF(facility_id), EVF(unit_id), EVF(at),
#undef EVF
    };
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING) return -1;
        if (strcmp(k->str, "included") == 0) {
            if (v->type != REDIS_REPLY_STRING || (strcmp(v->str, "0") && strcmp(v->str, "1")))
                return -1;
            ev->included = v->str[0] == '1';
            continue;
        }
        for (size_t j = 0; j < sizeof(fields) / sizeof(fields[0]); j++)
            if (strcmp(k->str, fields[j].name) == 0 &&
                entry_field(v, (char *)ev + fields[j].offset, fields[j].size) < 0)
                return -1;
    }
    return ev->type[0] != '\0' ? 0 : -1;
}
