/* The admin API's JSON edges: validation of request fields (names, limits,
 * CIDRs, times) before anything reaches Redis, and the shaping of the
 * scripts' store views into the API objects of admin-api (accounts,
 * facilities, keys). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admin_internal.h"
#include "lockgate/cache.h"
#include "lockgate/util.h"

/* ---- validation ---- */

void lg_admin_echo(const char *s, size_t max, char *out, size_t outlen)
{
    size_t len = strlen(s);
    bool cut = len > max;
    if (cut) {
        len = max;
        /* back off continuation bytes so no character is split */
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
    }
    snprintf(out, outlen, "%.*s%s", (int)len, s, cut ? "..." : "");
}

int lg_admin_fields_check(const json_t *obj, const char *const *allowed, char *err, size_t errlen)
{
    const char *name;
    json_t *v;
    json_object_foreach ((json_t *)obj, name, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++) ok = strcmp(allowed[i], name) == 0;
        if (!ok) {
            char echo[80];
            lg_admin_echo(name, 64, echo, sizeof(echo));
            snprintf(err, errlen, "%s: unknown field", echo);
            return -1;
        }
    }
    return 0;
}

/* Characters (code points) of valid UTF-8 S, which jansson guarantees. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

int lg_admin_name_get(const json_t *obj, const char *field, bool required, const char **out,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (v == NULL) {
        if (!required) return 0;
        snprintf(err, errlen, "%s: required", field);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s: must be a string", field);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    size_t n = utf8_chars(s, len);
    if (n < 1 || n > ADMIN_NAME_MAX || strlen(s) != len) {
        snprintf(err, errlen, "%s: must be 1 to %d characters", field, ADMIN_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7F) {
            snprintf(err, errlen, "%s: must not contain control characters", field);
            return -1;
        }
    }
    *out = s;
    return 0;
}

int lg_admin_int_get(const json_t *obj, const char *field, long long min, long long max,
                     bool null_ok, long long *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, field);
    if (v == NULL) return 1;
    if (json_is_null(v) && null_ok) return 2;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "%s: must be an integer from %lld to %lld%s", field, min, max,
                 null_ok ? " or null" : "");
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* One address or CIDR into its canonical text ("10.0.0.0/8", "2001:db8::/32",
 * "192.0.2.7"), parsed by the same code the gateways use. 0 or -1. */
static int cidr_canon(const char *s, char *out, size_t outlen)
{
    struct lg_cidr c;
    char canon[INET6_ADDRSTRLEN];
    if (lg_cidr_parse(s, &c) < 0 || inet_ntop(c.family, c.addr, canon, sizeof(canon)) == NULL)
        return -1;
    if (strchr(s, '/') == NULL)
        snprintf(out, outlen, "%s", canon);
    else
        snprintf(out, outlen, "%s/%d", canon, c.bits);
    return 0;
}

int lg_admin_cidrs_get(const json_t *obj, char *out, size_t outlen, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, "allowed_cidrs");
    if (v == NULL) return 1;
    if (!json_is_array(v) || json_array_size(v) > ADMIN_MAX_CIDRS) {
        snprintf(err, errlen, "allowed_cidrs: must be an array of at most %d addresses or CIDRs",
                 ADMIN_MAX_CIDRS);
        return -1;
    }
    size_t used = 0, i;
    json_t *e;
    out[0] = '\0';
    json_array_foreach (v, i, e) {
        char canon[80];
        if (!json_is_string(e) || cidr_canon(json_string_value(e), canon, sizeof(canon)) < 0) {
            char echo[80];
            lg_admin_echo(json_is_string(e) ? json_string_value(e) : "(not a string)", 64, echo,
                          sizeof(echo));
            snprintf(err, errlen, "allowed_cidrs: %s is not an IPv4 or IPv6 address or CIDR", echo);
            return -1;
        }
        int n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", canon);
        if (n < 0 || (size_t)n >= outlen - used) {
            snprintf(err, errlen, "allowed_cidrs: too long");
            return -1;
        }
        used += (size_t)n;
    }
    return 0;
}

int lg_admin_expiry_get(const json_t *obj, int64_t now_ms, char out[LG_TIME_LEN], char *err,
                        size_t errlen)
{
    json_t *v = json_object_get(obj, "expires_at");
    if (v == NULL) return 1;
    out[0] = '\0';
    if (json_is_null(v)) return 0;
    int64_t ms;
    if (!json_is_string(v) || json_string_length(v) > 40 ||
        lg_time_parse(json_string_value(v), &ms) < 0) {
        snprintf(err, errlen,
                 "expires_at: must be an ISO 8601 UTC time such as "
                 "\"2030-01-31T12:00:00Z\", or null");
        return -1;
    }
    if (ms <= now_ms) {
        snprintf(err, errlen, "expires_at: must be in the future");
        return -1;
    }
    lg_time_format(ms, out);
    return 0;
}

/* ---- shaping store views ---- */

/* FIELD's value in FLAT, or NULL when it has none. */
static const char *flat_find(const redisReply *flat, const char *field)
{
    if (flat == NULL || flat->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        const redisReply *k = flat->element[i], *v = flat->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, field) == 0)
            return v->type == REDIS_REPLY_STRING ? v->str : NULL;
    }
    return NULL;
}

const char *lg_admin_flat_get(const redisReply *flat, const char *field)
{
    const char *v = flat_find(flat, field);
    return v != NULL ? v : "";
}

/* A JSON string from store text; text that is not UTF-8 (never written by
 * us) becomes "" rather than failing the whole answer. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    return j ? j : json_string("");
}

static json_t *jstr_or_null(const char *s) { return s[0] ? jstr(s) : json_null(); }

static json_t *jint_or_null(const char *s)
{
    if (s[0] == '\0') return json_null();
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') return json_null();
    return json_integer(n);
}

static bool view_ok(const redisReply *view, size_t n)
{
    if (view == NULL || view->type != REDIS_REPLY_ARRAY || view->elements != n) return false;
    if (view->element[0]->type != REDIS_REPLY_STRING) return false;
    for (size_t i = 1; i < n; i++)
        if (view->element[i]->type != REDIS_REPLY_ARRAY) return false;
    return true;
}

json_t *lg_admin_shape_account(const redisReply *view)
{
    if (!view_ok(view, 2)) return NULL;
    const redisReply *h = view->element[1];
    return json_pack("{s:o, s:o, s:o}", "account_id", jstr(view->element[0]->str), "name",
                     jstr(lg_admin_flat_get(h, "name")), "created_at",
                     jstr(lg_admin_flat_get(h, "created_at")));
}

json_t *lg_admin_shape_facility(const redisReply *view)
{
    if (!view_ok(view, 2)) return NULL;
    const redisReply *h = view->element[1];
    struct lg_facility f; /* the gateway's parser: the same defaults it serves by */
    if (lg_facility_parse(&f, view->element[0]->str, flat_find(h, "account_id"),
                          flat_find(h, "name"), flat_find(h, "included")) < 0)
        return NULL;
    return json_pack("{s:o, s:o, s:o, s:b, s:o, s:o}", "facility_id", jstr(f.id), "account_id",
                     jstr(f.account_id), "name", jstr(f.name), "included", f.included, "created_at",
                     jstr(lg_admin_flat_get(h, "created_at")), "updated_at",
                     jstr(lg_admin_flat_get(h, "updated_at")));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *sorted_strings(const redisReply *set)
{
    json_t *arr = json_array();
    if (arr == NULL || set->elements == 0) return arr;
    const char **v = calloc(set->elements, sizeof(*v));
    if (v == NULL) {
        json_decref(arr);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < set->elements; i++)
        if (set->element[i]->type == REDIS_REPLY_STRING) v[n++] = set->element[i]->str;
    qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, jstr(v[i]));
    free(v);
    return arr;
}

static json_t *split_commas(const char *s)
{
    json_t *arr = json_array();
    while (arr != NULL && *s != '\0') {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len > 0) {
            json_t *e = json_stringn(s, len);
            json_array_append_new(arr, e ? e : json_string(""));
        }
        s += len + (comma ? 1 : 0);
    }
    return arr;
}

json_t *lg_admin_shape_key(const redisReply *view, int64_t now_ms)
{
    if (!view_ok(view, 3)) return NULL;
    const redisReply *h = view->element[1];
    const char *status = lg_admin_flat_get(h, "status");
    const char *expires = lg_admin_flat_get(h, "expires_at");
    int64_t exp_ms;
    if (strcmp(status, "disabled") != 0) {
        status = "active";
        if (expires[0] != '\0' && lg_time_parse(expires, &exp_ms) == 0 && exp_ms <= now_ms)
            status = "expired";
    }
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "key_id",
        jstr(view->element[0]->str), "account_id", jstr(lg_admin_flat_get(h, "account_id")), "role",
        jstr(lg_admin_flat_get(h, "role")), "name", jstr(lg_admin_flat_get(h, "name")), "status",
        status, "all_facilities", strcmp(lg_admin_flat_get(h, "all_facilities"), "1") == 0,
        "facilities", sorted_strings(view->element[2]), "rate_per_sec",
        jint_or_null(lg_admin_flat_get(h, "rate_per_sec")), "burst",
        jint_or_null(lg_admin_flat_get(h, "burst")), "allowed_cidrs",
        split_commas(lg_admin_flat_get(h, "allowed_cidrs")), "created_at",
        jstr(lg_admin_flat_get(h, "created_at")), "updated_at",
        jstr(lg_admin_flat_get(h, "updated_at")), "last_used_at",
        jstr_or_null(lg_admin_flat_get(h, "last_used_at")), "expires_at", jstr_or_null(expires));
}

static const char *sort_id_field;

static int cmp_created(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "created_at")),
                   json_string_value(json_object_get(y, "created_at")));
    if (c != 0) return c;
    return strcmp(json_string_value(json_object_get(x, sort_id_field)),
                  json_string_value(json_object_get(y, sort_id_field)));
}

/* Shapes every element and sorts by created_at, then id (the admin API runs
 * on one thread, so the comparator's static id field is safe). */
static json_t *shape_sorted(const redisReply *list, json_t *(*shape)(const redisReply *, int64_t),
                            json_t *(*shape1)(const redisReply *), int64_t now_ms,
                            const char *id_field)
{
    if (list == NULL || list->type != REDIS_REPLY_ARRAY) return NULL;
    json_t **items = calloc(list->elements + 1, sizeof(*items));
    if (items == NULL) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < list->elements; i++) {
        json_t *o = shape ? shape(list->element[i], now_ms) : shape1(list->element[i]);
        if (o != NULL) items[n++] = o;
    }
    sort_id_field = id_field;
    qsort(items, n, sizeof(*items), cmp_created);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (arr != NULL)
            json_array_append_new(arr, items[i]);
        else
            json_decref(items[i]);
    }
    free(items);
    return arr;
}

json_t *lg_admin_shape_list(const redisReply *list, json_t *(*shape)(const redisReply *),
                            const char *id_field)
{
    return shape_sorted(list, NULL, shape, 0, id_field);
}

json_t *lg_admin_shape_key_list(const redisReply *list, int64_t now_ms)
{
    return shape_sorted(list, lg_admin_shape_key, NULL, now_ms, "key_id");
}

void lg_admin_wipe_decref(json_t *obj, const char *const *fields)
{
    for (size_t i = 0; obj != NULL && fields[i] != NULL; i++) {
        json_t *v = json_object_get(obj, fields[i]);
        if (json_is_string(v)) OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
    json_decref(obj);
}
