/* Admin API: API keys and platform feed keys (create, list, show, reveal,
 * update, disable/enable, rotate, delete). Secrets are made here and leave
 * only in the 201 answer: Redis gets the verifier and the sealed copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "admin_internal.h"
#include "lockgate/cred.h"
#include "lockgate/log.h"
#include "lockgate/schema.h"
#include "lockgate/secrets.h"

#define ERRLEN 320

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* The "facilities" field: an array of at most ADMIN_MAX_FACILITIES facility
 * ids, returned sorted without duplicates in *OUT (new reference), or NULL
 * when absent. OWNER names the account in messages. 0 or -1. */
static int facilities_get(const json_t *body, const char *owner, json_t **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    json_t *v = json_object_get(body, "facilities");
    if (v == NULL) return 0;
    if (!json_is_array(v) || json_array_size(v) > ADMIN_MAX_FACILITIES) {
        snprintf(err, errlen, "facilities: must be an array of at most %d facility ids",
                 ADMIN_MAX_FACILITIES);
        return -1;
    }
    size_t n = json_array_size(v), i;
    json_t *e;
    json_array_foreach (v, i, e) {
        if (!json_is_string(e) || !lg_ident_valid(json_string_value(e), json_string_length(e))) {
            char echo[80];
            lg_admin_echo(json_is_string(e) ? json_string_value(e) : "(not a string)", 64, echo,
                          sizeof(echo));
            snprintf(err, errlen, "facilities: %s is not a facility of %s", echo, owner);
            return -1;
        }
    }
    json_t **items = calloc(n + 1, sizeof(*items));
    if (items == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) items[i] = json_array_get(v, i);
    qsort(items, n, sizeof(*items), cmp_json_str);
    json_t *arr = json_array();
    for (i = 0; arr != NULL && i < n; i++)
        if (i == 0 || cmp_json_str(&items[i - 1], &items[i]) != 0) json_array_append(arr, items[i]);
    free(items);
    *out = arr;
    return arr ? 0 : -1;
}

/* Scope rules shared by create and update. CREATE: the request must define a
 * scope. OWNER ("account acct_X") is for messages. Sets "all_facilities" ("1"/"0") and "facilities"
 * in SPEC when the request defines a scope. 0 or -1. */
static int scope_get(const json_t *body, bool create, const char *owner, json_t *spec, char *err,
                     size_t errlen)
{
    json_t *allv = json_object_get(body, "all_facilities");
    int all = -1;
    if (allv != NULL) {
        if (!json_is_boolean(allv)) {
            snprintf(err, errlen, "all_facilities: must be true or false");
            return -1;
        }
        all = json_is_true(allv);
    }
    json_t *facs;
    if (facilities_get(body, owner, &facs, err, errlen) < 0) return -1;
    size_t nfacs = facs ? json_array_size(facs) : 0;
    if (all == 1 && nfacs > 0) {
        snprintf(err, errlen, "facilities: must be empty when all_facilities is true");
        goto fail;
    }
    if (all == -1 && facs == NULL) {
        if (!create) return 0; /* scope unchanged */
        snprintf(err, errlen, "all_facilities: required (true, or false with facilities)");
        goto fail;
    }
    if (all != 1 && nfacs == 0) {
        snprintf(err, errlen,
                 "facilities: at least one facility is required unless all_facilities is true");
        goto fail;
    }
    json_object_set_new(spec, "all_facilities", json_string(all == 1 ? "1" : "0"));
    json_object_set_new(spec, "facilities", facs ? facs : json_array());
    return 0;
fail:
    json_decref(facs);
    return -1;
}

/* rate_per_sec, burst, allowed_cidrs, expires_at into SPEC as strings ("" =
 * default / any / never). With CREATE every one is set. 0 or -1. */
static int limits_get(const json_t *body, bool create, int64_t now_ms, json_t *spec, char *err,
                      size_t errlen)
{
    static const char *const ints[] = {"rate_per_sec", "burst"};
    for (size_t i = 0; i < 2; i++) {
        long long n = 0;
        int rc = lg_admin_int_get(body, ints[i], 1, ADMIN_RATE_MAX, true, &n, err, errlen);
        if (rc < 0) return -1;
        if (rc == 0)
            json_object_set_new(spec, ints[i], json_sprintf("%lld", n));
        else if (rc == 2 || create)
            json_object_set_new(spec, ints[i], json_string(""));
    }
    char cidrs[ADMIN_MAX_CIDRS * 56];
    int rc = lg_admin_cidrs_get(body, cidrs, sizeof(cidrs), err, errlen);
    if (rc < 0) return -1;
    if (rc == 0)
        json_object_set_new(spec, "allowed_cidrs", json_string(cidrs));
    else if (create)
        json_object_set_new(spec, "allowed_cidrs", json_string(""));
    char exp[LG_TIME_LEN];
    rc = lg_admin_expiry_get(body, now_ms, exp, err, errlen);
    if (rc < 0) return -1;
    if (rc == 0)
        json_object_set_new(spec, "expires_at", json_string(exp));
    else if (create)
        json_object_set_new(spec, "expires_at", json_string(""));
    return 0;
}

/* Drops a reference to OBJ (NULL is ignored) with the string members named
 * in FIELDS (NULL-terminated) wiped first: jansson frees strings as they are. */
static void wipe_decref(json_t *obj, const char *const *fields)
{
    for (size_t i = 0; obj != NULL && fields[i] != NULL; i++) {
        json_t *v = json_object_get(obj, fields[i]);
        if (json_is_string(v)) OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    }
    json_decref(obj);
}

static const char *const spec_secrets[] = {"verifier", "sealed", NULL};
static const char *const answer_secrets[] = {"secret", NULL};

static void spec_free(json_t *spec) { wipe_decref(spec, spec_secrets); }

/* Answers C with BODY (taken), whose "secret" is wiped once it is sent. */
static void answer_secret(struct lg_admin_call *c, int status, json_t *body)
{
    lg_admin_call_json(c, status, json_incref(body));
    wipe_decref(body, answer_secrets);
}

/* A fresh key id and secret into C (the secret kept for the answer), with
 * the verifier and sealed copy into SPEC. 0 or -1. */
static int credentials_new(struct lg_admin *adm, struct lg_admin_call *c, char kid[LG_KEY_LEN + 1],
                           json_t *spec)
{
    char secret[LG_SECRET_LEN + 1], verifier[LG_VERIFIER_LEN + 1];
    char *sealed = NULL;
    int rc = -1;
    if (lg_cred_key_new(kid) < 0 || lg_cred_secret_new(secret) < 0) goto out;
    if (lg_cred_verifier(adm->secrets->pepper, adm->secrets->pepper_len, kid, secret,
                         strlen(secret), verifier) < 0)
        goto out;
    if ((sealed = lg_cred_seal(adm->secrets->master, kid, secret)) == NULL) goto out;
    if ((c->secret = strdup(secret)) == NULL) goto out;
    json_object_set_new(spec, "key_id", json_string(kid));
    json_object_set_new(spec, "verifier", json_string(verifier));
    json_object_set_new(spec, "sealed", json_string(sealed));
    rc = 0;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(verifier, sizeof(verifier));
    if (sealed != NULL) OPENSSL_cleanse(sealed, strlen(sealed));
    free(sealed);
    return rc;
}

/* Answers with the key, plus its secret (and what it replaces) when the call
 * made one. */
static void done_key(struct lg_admin_call *c, const redisReply *reply)
{
    json_t *key = lg_admin_shape_key(reply, c->now_ms);
    if (key == NULL) {
        lg_admin_call_error(c, 500, "internal_error", "unexpected store answer");
        return;
    }
    if (c->secret != NULL) json_object_set_new(key, "secret", json_string(c->secret));
    if (c->replaces[0] != '\0') json_object_set_new(key, "replaces", json_string(c->replaces));
    answer_secret(c, c->status, key);
}

static void key_create(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                       const char *acct, json_t *body)
{
    static const char *const api_fields[] = {
        "name",  "all_facilities", "facilities", "rate_per_sec",
        "burst", "allowed_cidrs",  "expires_at", NULL};
    static const char *const feed_fields[] = {"name", NULL};
    char err[ERRLEN];
    const char *name;
    json_t *spec = json_object();
    struct lg_admin_call *c = NULL;
    if (spec == NULL) goto oom;
    int64_t now_ms = lg_now_ms();
    if (lg_admin_fields_check(body, acct ? api_fields : feed_fields, err, sizeof(err)) < 0 ||
        lg_admin_name_get(body, "name", true, &name, err, sizeof(err)) < 0)
        goto bad;
    if (acct != NULL) {
        char owner[96];
        snprintf(owner, sizeof(owner), "account %s", acct);
        if (scope_get(body, true, owner, spec, err, sizeof(err)) < 0 ||
            limits_get(body, true, now_ms, spec, err, sizeof(err)) < 0)
            goto bad;
    } else {
        json_object_set_new(spec, "all_facilities", json_string("0"));
        json_object_set_new(spec, "facilities", json_array());
        limits_get(body, true, now_ms, spec, err, sizeof(err)); /* all defaults */
    }
    json_object_set_new(spec, "account_id", json_string(acct ? acct : ""));
    json_object_set_new(spec, "role", json_string(acct ? LG_ROLE_API : LG_ROLE_FEED));
    json_object_set_new(spec, "name", json_string(name));

    if ((c = lg_admin_call_new(adm, req, rid)) == NULL) goto out;
    char kid[LG_KEY_LEN + 1];
    if (credentials_new(adm, c, kid, spec) < 0) {
        lg_admin_call_error(c, 500, "internal_error", "could not make a credential");
        goto out;
    }
    c->status = 201;
    lg_admin_call_key(c, "key:%s", kid);
    lg_admin_call_key(c, "key:%s:facilities", kid);
    if (acct != NULL) {
        lg_admin_call_key(c, "acct:%s:keys", acct);
        lg_admin_call_key(c, "acct:%s", acct);
    } else {
        lg_admin_call_key(c, "feedkeys");
    }
    lg_admin_call_common(c);
    lg_admin_call_argj(c, spec);
    lg_admin_call_run(c, &lg_admin_script_key_create, done_key);
    goto out;
bad:
    lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
    goto out;
oom:
    lg_admin_reply_error(adm, req, rid, 500, "internal_error", "out of memory");
out:
    spec_free(spec);
}

void lg_admin_key_create(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                         const char *const *ids, json_t *body)
{
    key_create(adm, req, rid, ids[0], body);
}

void lg_admin_feed_key_create(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                              const char *const *ids, json_t *body)
{
    key_create(adm, req, rid, NULL, body);
}

static void done_list(struct lg_admin_call *c, const redisReply *reply)
{
    lg_admin_call_shaped(c, 200,
                         json_pack("{s:o}", "keys", lg_admin_shape_key_list(reply, c->now_ms)));
}

void lg_admin_key_list(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                       const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "acct:%s:keys", ids[0]);
    lg_admin_call_key(c, "acct:%s", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_key_list, done_list);
}

void lg_admin_feed_key_list(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                            const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "feedkeys");
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", "");
    lg_admin_call_run(c, &lg_admin_script_key_list, done_list);
}

void lg_admin_key_get(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                      const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->status = 200;
    lg_admin_call_key(c, "key:%s", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_key_get, done_key);
}

static void done_reveal(struct lg_admin_call *c, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_STRING || c->adm == NULL) {
        lg_admin_call_error(c, 500, "internal_error", "unexpected store answer");
        return;
    }
    char *secret = lg_cred_unseal(c->adm->secrets->master, c->subject, reply->str);
    if (secret == NULL) {
        lg_warn("admin: request %s: the sealed secret of %s cannot be opened (master key?)", c->rid,
                c->subject);
        lg_admin_call_error(c, 500, "internal_error", "the stored secret cannot be opened");
        return;
    }
    json_t *ans = json_pack("{s:s, s:s}", "key_id", c->subject, "secret", secret);
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    answer_secret(c, 200, ans);
}

void lg_admin_key_reveal(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                         const char *const *ids, json_t *body)
{
    if (json_object_size(body) != 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "body: must be empty or {}");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    snprintf(c->subject, sizeof(c->subject), "%s", ids[0]);
    lg_admin_call_key(c, "key:%s", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_key_reveal, done_reveal);
}

void lg_admin_key_patch(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                        const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"name",  "all_facilities", "facilities", "rate_per_sec",
                                         "burst", "allowed_cidrs",  "expires_at", NULL};
    char err[ERRLEN];
    const char *name;
    json_t *patch = json_object();
    if (patch == NULL) {
        lg_admin_reply_error(adm, req, rid, 500, "internal_error", "out of memory");
        return;
    }
    if (json_object_size(body) == 0) {
        snprintf(err, sizeof(err), "body: give at least one field to change");
        goto bad;
    }
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0 ||
        lg_admin_name_get(body, "name", false, &name, err, sizeof(err)) < 0 ||
        scope_get(body, false, "the key's account", patch, err, sizeof(err)) < 0 ||
        limits_get(body, false, lg_now_ms(), patch, err, sizeof(err)) < 0)
        goto bad;
    if (name != NULL) json_object_set_new(patch, "name", json_string(name));
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c != NULL) {
        c->status = 200;
        lg_admin_call_key(c, "key:%s", ids[0]);
        lg_admin_call_key(c, "key:%s:facilities", ids[0]);
        lg_admin_call_common(c);
        lg_admin_call_argf(c, "%s", ids[0]);
        lg_admin_call_argj(c, patch);
        lg_admin_call_run(c, &lg_admin_script_key_update, done_key);
    }
    json_decref(patch);
    return;
bad:
    json_decref(patch);
    lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
}

static void key_status(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                       const char *kid, json_t *body, bool enable)
{
    if (json_object_size(body) != 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "body: must be empty or {}");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->status = 200;
    lg_admin_call_key(c, "key:%s", kid);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", kid);
    lg_admin_call_argf(c, "%s", enable ? "active" : "disabled");
    lg_admin_call_argf(c, "%s", enable ? "key.enabled" : "key.disabled");
    lg_admin_call_run(c, &lg_admin_script_key_status, done_key);
}

void lg_admin_key_disable(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const char *const *ids, json_t *body)
{
    key_status(adm, req, rid, ids[0], body, false);
}

void lg_admin_key_enable(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                         const char *const *ids, json_t *body)
{
    key_status(adm, req, rid, ids[0], body, true);
}

void lg_admin_key_rotate(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                         const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"grace_seconds", NULL};
    char err[ERRLEN];
    long long grace = 0;
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0 ||
        lg_admin_int_get(body, "grace_seconds", 0, ADMIN_GRACE_MAX, false, &grace, err,
                         sizeof(err)) < 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
        return;
    }
    json_t *spec = json_object();
    struct lg_admin_call *c = spec ? lg_admin_call_new(adm, req, rid) : NULL;
    if (c == NULL) {
        if (spec == NULL)
            lg_admin_reply_error(adm, req, rid, 500, "internal_error", "out of memory");
        json_decref(spec);
        return;
    }
    char kid[LG_KEY_LEN + 1];
    if (credentials_new(adm, c, kid, spec) < 0) {
        spec_free(spec);
        lg_admin_call_error(c, 500, "internal_error", "could not make a credential");
        return;
    }
    char till[LG_TIME_LEN] = "";
    if (grace > 0) lg_time_format(c->now_ms + grace * 1000, till);
    c->status = 201;
    snprintf(c->replaces, sizeof(c->replaces), "%s", ids[0]);
    lg_admin_call_key(c, "key:%s", ids[0]);
    lg_admin_call_key(c, "key:%s:facilities", ids[0]);
    lg_admin_call_key(c, "key:%s", kid);
    lg_admin_call_key(c, "key:%s:facilities", kid);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_argf(c, "%s", kid);
    lg_admin_call_argf(c, "%s", json_string_value(json_object_get(spec, "verifier")));
    lg_admin_call_argf(c, "%s", json_string_value(json_object_get(spec, "sealed")));
    lg_admin_call_argf(c, "%lld", grace);
    lg_admin_call_argf(c, "%s", till);
    spec_free(spec);
    lg_admin_call_run(c, &lg_admin_script_key_rotate, done_key);
}

static void done_deleted(struct lg_admin_call *c, const redisReply *reply)
{
    lg_admin_call_json(c, 204, NULL);
}

void lg_admin_key_delete(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                         const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "key:%s", ids[0]);
    lg_admin_call_key(c, "key:%s:facilities", ids[0]);
    lg_admin_call_key(c, "rl:%s", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_key_delete, done_deleted);
}
