/* Admin API: the audit trail (newest first, filtered by account and key while
 * scanning a bounded number of entries) and lock-change announcements from
 * the lock platform. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin_internal.h"
#include "lockgate/cred.h"
#include "lockgate/http.h"

#define AUDIT_DEFAULT_LIMIT 100
#define AUDIT_BATCH         1000
#define QUERY_VALUE_MAX     128

/* ---- lock changes ---- */

static void done_lock_changed(struct lg_admin_call *c, const redisReply *reply)
{
    lg_admin_call_shaped(
        c, 202,
        reply->type == REDIS_REPLY_STRING ? json_pack("{s:s}", "event_id", reply->str) : NULL);
}

void lg_admin_lock_changed(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                           const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"facility_id", "unit_id", NULL};
    char err[256];
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
        return;
    }
    for (size_t i = 0; fields[i] != NULL; i++) {
        json_t *v = json_object_get(body, fields[i]);
        if (!json_is_string(v) || !lg_ident_valid(json_string_value(v), json_string_length(v))) {
            lg_admin_reply_error(adm, req, rid, 400, "bad_request",
                                 "%s: required, must match [A-Za-z0-9_-]{1,64}", fields[i]);
            return;
        }
    }
    const char *fac = json_string_value(json_object_get(body, "facility_id"));
    const char *unit = json_string_value(json_object_get(body, "unit_id"));
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "fac:%s", fac);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", fac);
    lg_admin_call_argf(c, "%s", unit);
    lg_admin_call_run(c, &lg_admin_script_lock_changed, done_lock_changed);
}

/* ---- audit ---- */

/* Percent-decodes the query value S (LEN bytes) into OUT (OUTLEN); '+' is a
 * space. -1 when malformed, too long, or holding a NUL. */
static int query_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2]))
                return -1;
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            ch = (char)strtol(hex, NULL, 16);
            if (ch == '\0') return -1;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

/* Parses ?account=&key=&limit= into C. -1 with ERR on anything malformed or
 * unknown. Empty values mean "not given". */
static int audit_query(const char *query, struct lg_admin_call *c, char *err, size_t errlen)
{
    c->limit = AUDIT_DEFAULT_LIMIT;
    if (query == NULL) return 0;
    const char *p = query;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        char name[32], value[QUERY_VALUE_MAX + 1];
        if (plen == 0) goto next;
        if (query_decode(p, nlen, name, sizeof(name)) < 0) {
            snprintf(err, errlen, "query: malformed parameter name");
            return -1;
        }
        if (eq == NULL || query_decode(eq + 1, plen - nlen - 1, value, sizeof(value)) < 0) {
            snprintf(err, errlen, "%s: malformed value",
                     strcmp(name, "account") == 0 || strcmp(name, "key") == 0 ||
                             strcmp(name, "limit") == 0
                         ? name
                         : "query");
            return -1;
        }
        if (strcmp(name, "account") == 0 || strcmp(name, "key") == 0) {
            size_t vlen = strlen(value);
            if (vlen >= sizeof(c->filter_account) || (vlen > 0 && !lg_ident_valid(value, vlen))) {
                snprintf(err, errlen, "%s: not a valid id", name);
                return -1;
            }
            memcpy(name[0] == 'a' ? c->filter_account : c->filter_key, value, vlen + 1);
        } else if (strcmp(name, "limit") == 0) {
            char *end;
            long n = strtol(value, &end, 10);
            if (value[0] == '\0' || *end != '\0' || n < 1 || n > ADMIN_AUDIT_LIMIT_MAX) {
                snprintf(err, errlen, "limit: must be an integer from 1 to %d",
                         ADMIN_AUDIT_LIMIT_MAX);
                return -1;
            }
            c->limit = (int)n;
        } else {
            char echo[48];
            lg_admin_echo(name, 24, echo, sizeof(echo));
            snprintf(err, errlen, "%s: unknown query parameter", echo);
            return -1;
        }
    next:
        if (amp == NULL) break;
        p = amp + 1;
    }
    return 0;
}

/* One stream entry [id, [field, value, ...]] as an audit object, every field
 * copied (the data plane writes its own), or NULL when malformed. */
static json_t *audit_entry(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    json_t *o = json_object();
    if (o == NULL) return NULL;
    json_object_set_new(o, "id", json_string(e->element[0]->str));
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (k->len == 0 || k->len > 32 || strcmp(k->str, "id") == 0 ||
            strspn(k->str, "abcdefghijklmnopqrstuvwxyz_") != k->len)
            continue;
        json_t *s = json_stringn(v->str, v->len);
        if (s != NULL) json_object_set_new(o, k->str, s);
    }
    if (json_object_get(o, "account_id") == NULL)
        json_object_set_new(o, "account_id", json_string(""));
    return o;
}

static bool entry_wanted(const struct lg_admin_call *c, const json_t *o)
{
    if (c->filter_account[0] != '\0' &&
        strcmp(json_string_value(json_object_get(o, "account_id")), c->filter_account) != 0)
        return false;
    if (c->filter_key[0] != '\0') {
        const json_t *k = json_object_get(o, "key_id");
        if (!json_is_string(k) || strcmp(json_string_value(k), c->filter_key) != 0) return false;
    }
    return true;
}

static void audit_next(struct lg_admin_call *c);

static void done_audit(struct lg_admin_call *c, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY) {
        lg_admin_call_error(c, 500, "internal_error", "unexpected store answer");
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        /* pages after the first start at the last id seen: skip it */
        if (c->cursor[0] != '\0' && e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[0]->type == REDIS_REPLY_STRING && strcmp(e->element[0]->str, c->cursor) == 0)
            continue;
        json_t *o = audit_entry(e);
        if (o == NULL) continue;
        snprintf(c->cursor, sizeof(c->cursor), "%s", json_string_value(json_object_get(o, "id")));
        c->scanned++;
        if (entry_wanted(c, o) && (int)json_array_size(c->entries) < c->limit)
            json_array_append_new(c->entries, o);
        else
            json_decref(o);
    }
    bool end = (int)reply->elements < c->requested;
    if (end || (int)json_array_size(c->entries) >= c->limit || c->scanned >= ADMIN_AUDIT_SCAN_MAX ||
        c->cursor[0] == '\0') {
        json_t *entries = c->entries;
        c->entries = NULL;
        lg_admin_call_json(c, 200, json_pack("{s:o}", "entries", entries));
        return;
    }
    audit_next(c);
}

/* One XREVRANGE page: COUNT is the limit itself when nothing is filtered (a
 * single round trip), else a batch; each page has its own deadline. */
static void audit_next(struct lg_admin_call *c)
{
    bool filtered = c->filter_account[0] != '\0' || c->filter_key[0] != '\0';
    int count = filtered ? AUDIT_BATCH : c->limit;
    if (c->cursor[0] != '\0') count++; /* the cursor entry comes back again */
    c->requested = count;
    lg_admin_call_reset(c);
    lg_admin_call_argf(c, "XREVRANGE");
    lg_admin_call_argf(c, "%saudit", lg_store_prefix(c->adm->store));
    lg_admin_call_argf(c, "%s", c->cursor[0] ? c->cursor : "+");
    lg_admin_call_argf(c, "-");
    lg_admin_call_argf(c, "COUNT");
    lg_admin_call_argf(c, "%d", count);
    lg_admin_call_cmd(c, done_audit);
}

void lg_admin_audit_list(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                         const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    char err[128];
    if (audit_query(lg_http_query(req), c, err, sizeof(err)) < 0) {
        lg_admin_call_error(c, 400, "bad_request", "%s", err);
        return;
    }
    if (adm->session != NULL) { /* a console user reads their own account's trail only */
        if (c->filter_account[0] != '\0' && strcmp(c->filter_account, adm->session->account) != 0) {
            lg_admin_call_error(c, 404, "not_found", "unknown account");
            return;
        }
        snprintf(c->filter_account, sizeof(c->filter_account), "%s", adm->session->account);
    }
    if ((c->entries = json_array()) == NULL) {
        lg_admin_call_error(c, 500, "internal_error", "out of memory");
        return;
    }
    audit_next(c);
}
