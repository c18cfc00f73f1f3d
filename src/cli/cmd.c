/* The nouns and verbs of lockgate-admin: each verb turns its parsed
 * arguments into one admin API request (two for 'key show --reveal') and
 * prints the answer as a table, "field: value" lines or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define SECRET_ONCE  "Shown in full once here; send it to the one party it is for."
#define SECRET_AGAIN "Shown in full; send it to the one party it is for."

static const char *const account_order[] = {"account_id", "name", "created_at", NULL};
static const char *const facility_order[] = {"facility_id", "account_id", "name", "included",
                                             "created_at",  "updated_at", NULL};
static const char *const key_order[] = {
    "key_id",         "replaces",     "account_id",   "role",  "name",          "status",
    "all_facilities", "facilities",   "rate_per_sec", "burst", "allowed_cidrs", "created_at",
    "updated_at",     "last_used_at", "expires_at",   NULL};
static const char *const event_order[] = {"event_id", NULL};

static int oom(void)
{
    fputs(LG_CLI_NAME ": out of memory\n", stderr);
    return LG_CLI_EXIT_FAIL;
}

/* Checks an id that is about to become part of a URL. */
static int check_id(const char *noun, const char *what, const char *id)
{
    char *s;

    if (lg_cli_id_valid(id)) return 0;
    s = lg_cli_sanitize(id);
    lg_cli_usage_error(noun, "%s: invalid id '%.80s%s' (expected 1 to 64 of A-Z a-z 0-9 _ -)", what,
                       s ? s : "?", s && strlen(s) > 80 ? "..." : "");
    free(s);
    return LG_CLI_EXIT_USAGE;
}

/* Sets BODY[FIELD] to the string VALUE given with --FLAG. json_string refuses
 * text that is not UTF-8, which is a usage error, not a crash. */
static int set_string(json_t *body, const char *noun, const char *field, const char *flag,
                      const char *value)
{
    json_t *s = json_string(value);

    if (!s) return lg_cli_usage_error(noun, "--%s: value is not valid UTF-8", flag);
    if (json_object_set_new(body, field, s) != 0) return oom();
    return 0;
}

/* Sets BODY[FIELD] to the strings given with each --FLAG. */
static int set_string_list(json_t *body, const char *noun, const char *field, const char *flag,
                           const struct lg_cli_args *args)
{
    json_t *arr = json_array();
    size_t n = lg_cli_args_count(args, flag);

    if (!arr) return oom();
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_string(lg_cli_args_nth(args, flag, i));

        if (!s) {
            json_decref(arr);
            return lg_cli_usage_error(noun, "--%s: value is not valid UTF-8", flag);
        }
        if (json_array_append_new(arr, s) != 0) {
            json_decref(arr);
            return oom();
        }
    }
    if (json_object_set_new(body, field, arr) != 0) return oom();
    return 0;
}

/* Sets BODY[FIELD] from the integer flag --FLAG, parsed strictly. VALUE equal
 * to NULL_WORD ("default") means null when NULL_WORD_OK (update), and leaves
 * the field out otherwise (create), which comes to the same thing. */
static int set_int(json_t *body, const char *noun, const char *field, const char *flag,
                   const char *value, int null_word_ok, const char *null_word)
{
    long long v;
    json_t *j;

    if (null_word && strcmp(value, null_word) == 0) {
        if (!null_word_ok) return 0;
        j = json_null();
    } else if (lg_cli_parse_int(value, &v) != 0) {
        return lg_cli_usage_error(noun, "--%s: '%.40s' is not a whole number", flag, value);
    } else {
        j = json_integer((json_int_t)v);
    }
    if (!j || json_object_set_new(body, field, j) != 0) return oom();
    return 0;
}

static void print_secret(const json_t *answer, const char *warning)
{
    const char *secret = json_string_value(json_object_get(answer, "secret"));
    char *s;

    if (!secret) return;
    s = lg_cli_sanitize(secret);
    if (s) printf("secret: %s\n", s);
    free(s);
    fprintf(stderr, "%s\n", warning);
}

/* Prints one object: JSON as-is, or its fields and, when present, its secret. */
static void show_object(const struct lg_cli_ctx *ctx, const json_t *answer,
                        const char *const *order, const char *warning)
{
    if (!answer) return;
    if (ctx->json) {
        lg_cli_print_json(answer);
        if (warning && json_object_get(answer, "secret")) fprintf(stderr, "%s\n", warning);
        return;
    }
    lg_cli_print_fields(answer, order);
    if (warning) print_secret(answer, warning);
}

static char *field_text(const json_t *obj, const char *name)
{
    return lg_cli_value_text(name, json_object_get(obj, name));
}

enum list_kind { LIST_ACCOUNTS, LIST_FACILITIES, LIST_KEYS, LIST_AUDIT };

static const char *const account_cols[] = {"ACCOUNT_ID", "NAME", "CREATED_AT"};
static const char *const account_fields[] = {"account_id", "name", "created_at"};
static const char *const facility_cols[] = {"FACILITY_ID", "NAME", "INCLUDED", "UPDATED_AT"};
static const char *const facility_fields[] = {"facility_id", "name", "included", "updated_at"};
static const char *const key_cols[] = {"KEY_ID", "NAME",  "STATUS",   "SCOPE",
                                       "RATE",   "BURST", "LAST_USED"};
static const char *const key_fields[] = {"key_id",       "name",  "status",      NULL,
                                         "rate_per_sec", "burst", "last_used_at"};
static const char *const audit_cols[] = {"AT",       "ACTION", "ACCOUNT", "KEY",
                                         "FACILITY", "UNIT",   "OUTCOME"};
static const char *const audit_fields[] = {"at",          "action",  "account_id", "key_id",
                                           "facility_id", "unit_id", "outcome"};

/* "ALL", "FEED" or "N facilities" for a key's SCOPE column. */
static char *key_scope(const json_t *key)
{
    const char *role = json_string_value(json_object_get(key, "role"));
    size_t n;
    char buf[48];

    if (role && strcmp(role, "feed") == 0) return strdup("FEED");
    if (json_is_true(json_object_get(key, "all_facilities"))) return strdup("ALL");
    n = json_array_size(json_object_get(key, "facilities"));
    snprintf(buf, sizeof(buf), "%zu %s", n, n == 1 ? "facility" : "facilities");
    return strdup(buf);
}

/* Prints ANSWER[MEMBER] as a table of KIND, or the JSON answer. */
static int show_list(const struct lg_cli_ctx *ctx, const json_t *answer, const char *member,
                     enum list_kind kind)
{
    const char *const *cols, *const *fields;
    size_t ncols, i;
    struct lg_cli_table *t;
    json_t *items, *item;
    int rc = 0;

    if (ctx->json) {
        if (answer) lg_cli_print_json(answer);
        return 0;
    }
    switch (kind) {
    case LIST_ACCOUNTS: cols = account_cols, fields = account_fields, ncols = 3; break;
    case LIST_FACILITIES: cols = facility_cols, fields = facility_fields, ncols = 4; break;
    case LIST_KEYS: cols = key_cols, fields = key_fields, ncols = 7; break;
    default: cols = audit_cols, fields = audit_fields, ncols = 7; break;
    }
    items = json_object_get(answer, member);
    if (!json_is_array(items)) {
        fprintf(stderr, LG_CLI_NAME ": invalid answer: no '%s' list\n", member);
        return LG_CLI_EXIT_FAIL;
    }
    t = lg_cli_table_new(ncols, cols);
    if (!t) return oom();
    json_array_foreach (items, i, item) {
        char *cells[7] = {0};
        int bad = 0;

        for (size_t c = 0; c < ncols; c++) {
            cells[c] = fields[c] ? field_text(item, fields[c]) : key_scope(item);
            if (!cells[c]) bad = 1;
        }
        if (bad || lg_cli_table_add(t, (const char *const *)cells) != 0) rc = oom();
        for (size_t c = 0; c < ncols; c++) free(cells[c]);
        if (rc) break;
    }
    if (!rc) lg_cli_table_print(t, stdout);
    lg_cli_table_free(t);
    return rc;
}

/* Sends one request and prints an object answer. Takes ownership of BODY. */
static int call_show(struct lg_cli_ctx *ctx, const char *method, const char *path, json_t *body,
                     const char *const *order, const char *warning)
{
    json_t *answer = NULL;
    int rc = lg_cli_call(ctx, method, path, body, &answer);

    json_decref(body);
    if (rc == 0) show_object(ctx, answer, order, warning);
    json_decref(answer);
    return rc;
}

static int call_list(struct lg_cli_ctx *ctx, const char *path, const char *member,
                     enum list_kind kind)
{
    json_t *answer = NULL;
    int rc = lg_cli_call(ctx, "GET", path, NULL, &answer);

    if (rc == 0) rc = show_list(ctx, answer, member, kind);
    json_decref(answer);
    return rc;
}

static int call_delete(struct lg_cli_ctx *ctx, const char *path, const char *what, const char *id)
{
    json_t *answer = NULL;
    int rc = lg_cli_call(ctx, "DELETE", path, NULL, &answer);

    if (rc == 0) {
        if (ctx->json && answer)
            lg_cli_print_json(answer);
        else if (!ctx->json)
            printf("deleted %s %s\n", what, id);
    }
    json_decref(answer);
    return rc;
}

/* Builds "/admin/v1/<a><id><b>" after checking ID; NULL after an error (*RC set). */
static char *id_path(const char *noun, const char *what, const char *a, const char *id,
                     const char *b, int *rc)
{
    char *p;

    *rc = check_id(noun, what, id);
    if (*rc) return NULL;
    if (asprintf(&p, "/admin/v1/%s%s%s", a, id, b ? b : "") < 0) {
        *rc = oom();
        return NULL;
    }
    return p;
}

/* ---- account ---- */

/* POSTs {"name"} from --name to PATH and shows the created object. */
static int create_named(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args,
                        const char *path, const char *const *order, const char *secret_note)
{
    json_t *body = json_object();
    int rc;

    if (!body) return oom();
    rc = set_string(body, noun, "name", "name", lg_cli_args_get(args, "name"));
    if (rc) {
        json_decref(body);
        return rc;
    }
    return call_show(ctx, "POST", path, body, order, secret_note);
}

static int account_create(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return create_named(ctx, noun, args, "/admin/v1/accounts", account_order, NULL);
}

static int account_list(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return call_list(ctx, "/admin/v1/accounts", "accounts", LIST_ACCOUNTS);
}

static int account_show(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    int rc;
    char *path = id_path(noun, "ACCOUNT_ID", "accounts/", lg_cli_args_pos(args), NULL, &rc);

    if (!path) return rc;
    rc = call_show(ctx, "GET", path, NULL, account_order, NULL);
    free(path);
    return rc;
}

/* ---- facility ---- */

static int facility_create(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    int rc;
    char *path = id_path(noun, "--account", "accounts/", lg_cli_args_get(args, "account"),
                         "/facilities", &rc);
    json_t *body;

    if (!path) return rc;
    body = json_object();
    if (!body) {
        free(path);
        return oom();
    }
    rc = set_string(body, noun, "name", "name", lg_cli_args_get(args, "name"));
    if (!rc && lg_cli_args_has(args, "id"))
        rc = set_string(body, noun, "facility_id", "id", lg_cli_args_get(args, "id"));
    if (rc) {
        json_decref(body);
        free(path);
        return rc;
    }
    rc = call_show(ctx, "POST", path, body, facility_order, NULL);
    free(path);
    return rc;
}

static int facility_list(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    int rc;
    char *path = id_path(noun, "--account", "accounts/", lg_cli_args_get(args, "account"),
                         "/facilities", &rc);

    if (!path) return rc;
    rc = call_list(ctx, path, "facilities", LIST_FACILITIES);
    free(path);
    return rc;
}

static int facility_show(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    int rc;
    char *path = id_path(noun, "FACILITY_ID", "facilities/", lg_cli_args_pos(args), NULL, &rc);

    if (!path) return rc;
    rc = call_show(ctx, "GET", path, NULL, facility_order, NULL);
    free(path);
    return rc;
}

/* PATCH /admin/v1/facilities/{fac} with BODY (taken). */
static int facility_patch(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args,
                          json_t *body)
{
    int rc;
    char *path = id_path(noun, "FACILITY_ID", "facilities/", lg_cli_args_pos(args), NULL, &rc);

    if (!path) {
        json_decref(body);
        return rc;
    }
    rc = call_show(ctx, "PATCH", path, body, facility_order, NULL);
    free(path);
    return rc;
}

static int facility_rename(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    json_t *body = json_object();
    int rc;

    if (!body) return oom();
    rc = set_string(body, noun, "name", "name", lg_cli_args_get(args, "name"));
    if (rc) {
        json_decref(body);
        return rc;
    }
    return facility_patch(ctx, noun, args, body);
}

static int facility_set_included(struct lg_cli_ctx *ctx, const char *noun,
                                 const struct lg_cli_args *args, int included)
{
    json_t *body = json_pack("{s:b}", "included", included);

    if (!body) return oom();
    return facility_patch(ctx, noun, args, body);
}

static int facility_exclude(struct lg_cli_ctx *ctx, const char *noun,
                            const struct lg_cli_args *args)
{
    return facility_set_included(ctx, noun, args, 0);
}

static int facility_include(struct lg_cli_ctx *ctx, const char *noun,
                            const struct lg_cli_args *args)
{
    return facility_set_included(ctx, noun, args, 1);
}

static int facility_delete(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    int rc;
    char *path = id_path(noun, "FACILITY_ID", "facilities/", lg_cli_args_pos(args), NULL, &rc);

    if (!path) return rc;
    rc = call_delete(ctx, path, "facility", lg_cli_args_pos(args));
    free(path);
    return rc;
}

/* ---- key ---- */

/* The optional key fields shared by create and update; UPDATE allows the
 * reset words ("default", "never") and --no-allow-cidr. */
static int key_optional(json_t *body, const char *noun, const struct lg_cli_args *args, int update)
{
    const char *v;
    int rc = 0;

    if ((v = lg_cli_args_get(args, "rate")))
        rc = set_int(body, noun, "rate_per_sec", "rate", v, update, "default");
    if (!rc && (v = lg_cli_args_get(args, "burst")))
        rc = set_int(body, noun, "burst", "burst", v, update, "default");
    if (!rc && lg_cli_args_has(args, "allow-cidr"))
        rc = set_string_list(body, noun, "allowed_cidrs", "allow-cidr", args);
    if (!rc && lg_cli_args_has(args, "no-allow-cidr")) {
        if (lg_cli_args_has(args, "allow-cidr"))
            return lg_cli_usage_error(noun, "key update: --allow-cidr and --no-allow-cidr "
                                            "exclude each other");
        if (json_object_set_new(body, "allowed_cidrs", json_array()) != 0) return oom();
    }
    if (!rc && (v = lg_cli_args_get(args, "expires-at"))) {
        if (update && strcmp(v, "never") == 0) {
            if (json_object_set_new(body, "expires_at", json_null()) != 0) return oom();
        } else {
            rc = set_string(body, noun, "expires_at", "expires-at", v);
        }
    }
    return rc;
}

/* key create and key update take the same flags; a scope and a name are
 * required at creation only, and an update must change something. */
static int key_write(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args,
                     int update)
{
    const char *verb = update ? "key update" : "key create";
    int all = lg_cli_args_has(args, "all-facilities");
    int some = lg_cli_args_has(args, "facility");
    json_t *body;
    char *path;
    int rc = 0;

    if (all && some)
        return lg_cli_usage_error(noun, "%s: --all-facilities and --facility exclude each other",
                                  verb);
    if (!update && !all && !some)
        return lg_cli_usage_error(noun, "key create: needs --all-facilities or at least one "
                                        "--facility");
    if (update)
        path = id_path(noun, "KEY_ID", "keys/", lg_cli_args_pos(args), NULL, &rc);
    else
        path =
            id_path(noun, "--account", "accounts/", lg_cli_args_get(args, "account"), "/keys", &rc);
    if (!path) return rc;
    body = json_object();
    if (!body) {
        free(path);
        return oom();
    }
    if (!update || lg_cli_args_has(args, "name"))
        rc = set_string(body, noun, "name", "name", lg_cli_args_get(args, "name"));
    if (!rc && (all || !update) &&
        json_object_set_new(body, "all_facilities", json_boolean(all)) != 0)
        rc = oom();
    if (!rc && some) rc = set_string_list(body, noun, "facilities", "facility", args);
    if (!rc) rc = key_optional(body, noun, args, update);
    if (!rc && json_object_size(body) == 0)
        rc = lg_cli_usage_error(noun, "key update: nothing to change; give at least one of "
                                      "--name, --all-facilities, --facility, --rate, --burst, "
                                      "--allow-cidr, --no-allow-cidr, --expires-at");
    if (rc) {
        json_decref(body);
        free(path);
        return rc;
    }
    rc = call_show(ctx, update ? "PATCH" : "POST", path, body, key_order,
                   update ? NULL : SECRET_ONCE);
    free(path);
    return rc;
}

static int key_create(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return key_write(ctx, noun, args, 0);
}

static int key_update(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return key_write(ctx, noun, args, 1);
}

static int key_list(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    int rc;
    char *path =
        id_path(noun, "--account", "accounts/", lg_cli_args_get(args, "account"), "/keys", &rc);

    if (!path) return rc;
    rc = call_list(ctx, path, "keys", LIST_KEYS);
    free(path);
    return rc;
}

static int key_show(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    const char *id = lg_cli_args_pos(args);
    json_t *key = NULL, *revealed = NULL, *secret;
    char *path, *reveal_path = NULL;
    int rc;

    path = id_path(noun, "KEY_ID", "keys/", id, NULL, &rc);
    if (!path) return rc;
    if (!lg_cli_args_has(args, "reveal")) {
        rc = call_show(ctx, "GET", path, NULL, key_order, NULL);
        free(path);
        return rc;
    }
    reveal_path = id_path(noun, "KEY_ID", "keys/", id, "/reveal", &rc);
    if (!reveal_path) goto done;
    rc = lg_cli_call(ctx, "GET", path, NULL, &key);
    if (rc) goto done;
    if (!key) {
        fputs(LG_CLI_NAME ": invalid answer: no key\n", stderr);
        rc = LG_CLI_EXIT_FAIL;
        goto done;
    }
    rc = lg_cli_call(ctx, "POST", reveal_path, NULL, &revealed);
    if (rc) goto done;
    secret = json_object_get(revealed, "secret");
    if (!json_is_string(secret)) {
        fputs(LG_CLI_NAME ": invalid answer: no secret revealed\n", stderr);
        rc = LG_CLI_EXIT_FAIL;
        goto done;
    }
    /* One document for --json: the key with its secret. */
    if (json_object_set(key, "secret", secret) != 0) {
        rc = oom();
        goto done;
    }
    show_object(ctx, key, key_order, SECRET_AGAIN);
done:
    json_decref(key);
    json_decref(revealed);
    free(reveal_path);
    free(path);
    return rc;
}

/* POST /admin/v1/keys/{key}/<action> with an empty body. */
static int key_action(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args,
                      const char *action)
{
    int rc;
    char *path = id_path(noun, "KEY_ID", "keys/", lg_cli_args_pos(args), action, &rc);

    if (!path) return rc;
    rc = call_show(ctx, "POST", path, NULL, key_order, NULL);
    free(path);
    return rc;
}

static int key_disable(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return key_action(ctx, noun, args, "/disable");
}

static int key_enable(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return key_action(ctx, noun, args, "/enable");
}

static int key_rotate(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    const char *grace = lg_cli_args_get(args, "grace");
    json_t *body = NULL;
    char *path;
    int rc;

    if (grace) {
        body = json_object();
        if (!body) return oom();
        rc = set_int(body, noun, "grace_seconds", "grace", grace, 0, NULL);
        if (rc) {
            json_decref(body);
            return rc;
        }
    }
    path = id_path(noun, "KEY_ID", "keys/", lg_cli_args_pos(args), "/rotate", &rc);
    if (!path) {
        json_decref(body);
        return rc;
    }
    rc = call_show(ctx, "POST", path, body, key_order, SECRET_ONCE);
    free(path);
    return rc;
}

static int key_delete(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    int rc;
    char *path = id_path(noun, "KEY_ID", "keys/", lg_cli_args_pos(args), NULL, &rc);

    if (!path) return rc;
    rc = call_delete(ctx, path, "key", lg_cli_args_pos(args));
    free(path);
    return rc;
}

/* ---- feed-key ---- */

static int feed_key_create(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return create_named(ctx, noun, args, "/admin/v1/feed-keys", key_order, SECRET_ONCE);
}

static int feed_key_list(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return call_list(ctx, "/admin/v1/feed-keys", "keys", LIST_KEYS);
}

/* ---- audit, lock-changed ---- */

static int audit_run(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    const char *account = lg_cli_args_get(args, "account");
    const char *key = lg_cli_args_get(args, "key");
    const char *limit = lg_cli_args_get(args, "limit");
    char path[256];
    const char *sep = "?";
    long long n = 0;
    int rc, len;

    if (account && (rc = check_id(noun, "--account", account))) return rc;
    if (key && (rc = check_id(noun, "--key", key))) return rc;
    if (limit && lg_cli_parse_int(limit, &n) != 0)
        return lg_cli_usage_error(noun, "--limit: '%.40s' is not a whole number", limit);
    /* Ids are [A-Za-z0-9_-] and need no escaping in a query string; the
     * buffer holds the longest possible query. */
    len = snprintf(path, sizeof(path), "/admin/v1/audit");
    if (account) {
        len += snprintf(path + len, sizeof(path) - (size_t)len, "%saccount=%s", sep, account);
        sep = "&";
    }
    if (key) {
        len += snprintf(path + len, sizeof(path) - (size_t)len, "%skey=%s", sep, key);
        sep = "&";
    }
    if (limit) snprintf(path + len, sizeof(path) - (size_t)len, "%slimit=%lld", sep, n);
    return call_list(ctx, path, "entries", LIST_AUDIT);
}

static int lock_changed_run(struct lg_cli_ctx *ctx, const char *noun,
                            const struct lg_cli_args *args)
{
    json_t *body = json_object();
    int rc;

    if (!body) return oom();
    rc = set_string(body, noun, "facility_id", "facility", lg_cli_args_get(args, "facility"));
    if (!rc) rc = set_string(body, noun, "unit_id", "unit", lg_cli_args_get(args, "unit"));
    if (rc) {
        json_decref(body);
        return rc;
    }
    return call_show(ctx, "POST", "/admin/v1/events/lock-changed", body, event_order, NULL);
}

/* ---- the tables ---- */

#define FLAG_END   \
    {              \
        NULL, 0, 0 \
    }

static const struct lg_cli_flag no_flags[] = {FLAG_END};
static const struct lg_cli_flag name_required[] = {{"name", LG_CLI_FLAG_VALUE, 1}, FLAG_END};
static const struct lg_cli_flag account_required[] = {{"account", LG_CLI_FLAG_VALUE, 1}, FLAG_END};
static const struct lg_cli_flag facility_create_flags[] = {{"account", LG_CLI_FLAG_VALUE, 1},
                                                           {"name", LG_CLI_FLAG_VALUE, 1},
                                                           {"id", LG_CLI_FLAG_VALUE, 0},
                                                           FLAG_END};
static const struct lg_cli_flag key_create_flags[] = {{"account", LG_CLI_FLAG_VALUE, 1},
                                                      {"name", LG_CLI_FLAG_VALUE, 1},
                                                      {"all-facilities", LG_CLI_FLAG_BOOL, 0},
                                                      {"facility", LG_CLI_FLAG_LIST, 0},
                                                      {"rate", LG_CLI_FLAG_VALUE, 0},
                                                      {"burst", LG_CLI_FLAG_VALUE, 0},
                                                      {"allow-cidr", LG_CLI_FLAG_LIST, 0},
                                                      {"expires-at", LG_CLI_FLAG_VALUE, 0},
                                                      FLAG_END};
static const struct lg_cli_flag key_update_flags[] = {{"name", LG_CLI_FLAG_VALUE, 0},
                                                      {"all-facilities", LG_CLI_FLAG_BOOL, 0},
                                                      {"facility", LG_CLI_FLAG_LIST, 0},
                                                      {"rate", LG_CLI_FLAG_VALUE, 0},
                                                      {"burst", LG_CLI_FLAG_VALUE, 0},
                                                      {"allow-cidr", LG_CLI_FLAG_LIST, 0},
                                                      {"no-allow-cidr", LG_CLI_FLAG_BOOL, 0},
                                                      {"expires-at", LG_CLI_FLAG_VALUE, 0},
                                                      FLAG_END};
static const struct lg_cli_flag key_show_flags[] = {{"reveal", LG_CLI_FLAG_BOOL, 0}, FLAG_END};
static const struct lg_cli_flag key_rotate_flags[] = {{"grace", LG_CLI_FLAG_VALUE, 0}, FLAG_END};
static const struct lg_cli_flag audit_flags[] = {{"account", LG_CLI_FLAG_VALUE, 0},
                                                 {"key", LG_CLI_FLAG_VALUE, 0},
                                                 {"limit", LG_CLI_FLAG_VALUE, 0},
                                                 FLAG_END};
static const struct lg_cli_flag lock_changed_flags[] = {
    {"facility", LG_CLI_FLAG_VALUE, 1}, {"unit", LG_CLI_FLAG_VALUE, 1}, FLAG_END};

static const struct lg_cli_verb account_verbs[] = {
    {"create", NULL, NULL, name_required, account_create},
    {"list", NULL, NULL, no_flags, account_list},
    {"show", NULL, "ACCOUNT_ID", no_flags, account_show},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct lg_cli_verb facility_verbs[] = {
    {"create", NULL, NULL, facility_create_flags, facility_create},
    {"list", NULL, NULL, account_required, facility_list},
    {"show", NULL, "FACILITY_ID", no_flags, facility_show},
    {"rename", NULL, "FACILITY_ID", name_required, facility_rename},
    {"exclude", NULL, "FACILITY_ID", no_flags, facility_exclude},
    {"include", NULL, "FACILITY_ID", no_flags, facility_include},
    {"delete", NULL, "FACILITY_ID", no_flags, facility_delete},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct lg_cli_verb key_verbs[] = {
    {"create", NULL, NULL, key_create_flags, key_create},
    {"list", NULL, NULL, account_required, key_list},
    {"show", NULL, "KEY_ID", key_show_flags, key_show},
    {"update", NULL, "KEY_ID", key_update_flags, key_update},
    {"disable", "lock", "KEY_ID", no_flags, key_disable},
    {"enable", "unlock", "KEY_ID", no_flags, key_enable},
    {"rotate", NULL, "KEY_ID", key_rotate_flags, key_rotate},
    {"delete", NULL, "KEY_ID", no_flags, key_delete},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct lg_cli_verb feed_key_verbs[] = {
    {"create", NULL, NULL, name_required, feed_key_create},
    {"list", NULL, NULL, no_flags, feed_key_list},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct lg_cli_verb audit_verbs[] = {
    {NULL, NULL, NULL, audit_flags, audit_run},
    {NULL, NULL, NULL, NULL, NULL},
};

static const struct lg_cli_verb lock_changed_verbs[] = {
    {NULL, NULL, NULL, lock_changed_flags, lock_changed_run},
    {NULL, NULL, NULL, NULL, NULL},
};

#define GLOBAL_LINE \
    "Global options (--url, --token-file, --cacert, --json): see '" LG_CLI_NAME " --help'.\n"

const struct lg_cli_noun lg_cli_nouns[] = {
    {"account", "create, list, show",
     "usage: " LG_CLI_NAME " [GLOBAL OPTIONS] account VERB [ARGS]\n"
     "\n"
     "  account create --name N     create an account\n"
     "  account list                list all accounts\n"
     "  account show ACCOUNT_ID     show one account\n"
     "\n" GLOBAL_LINE,
     account_verbs},
    {"facility", "create, list, show, rename, exclude, include, delete",
     "usage: " LG_CLI_NAME " [GLOBAL OPTIONS] facility VERB [ARGS]\n"
     "\n"
     "  facility create --account A --name N [--id FAC]\n"
     "                                  create a facility (included); --id picks its id\n"
     "  facility list --account A       list an account's facilities\n"
     "  facility show FAC               show one facility\n"
     "  facility rename FAC --name N    rename a facility\n"
     "  facility exclude FAC            exclude it: no key reaches it any more\n"
     "  facility include FAC            include it again\n"
     "  facility delete FAC             delete it and remove it from every key\n"
     "\n" GLOBAL_LINE,
     facility_verbs},
    {"key", "create, list, show, update, disable|lock, enable|unlock, rotate, delete",
     "usage: " LG_CLI_NAME " [GLOBAL OPTIONS] key VERB [ARGS]\n"
     "\n"
     "  key create --account A --name N (--all-facilities | --facility F [--facility F2 ...])\n"
     "             [--rate R] [--burst B] [--allow-cidr C ...] [--expires-at T]\n"
     "                                  create an API key; prints its secret once\n"
     "  key list --account A            list an account's keys (never secrets)\n"
     "  key show K [--reveal]           show a key; --reveal also prints its secret (audited)\n"
     "  key update K [--name N] [--all-facilities | --facility F ...]\n"
     "             [--rate R|default] [--burst B|default]\n"
     "             [--allow-cidr C ... | --no-allow-cidr] [--expires-at T|never]\n"
     "                                  change a key; --facility replaces its facility list\n"
     "  key disable K                   lock a key (alias: lock)\n"
     "  key enable K                    unlock a key (alias: unlock)\n"
     "  key rotate K [--grace SECONDS]  new key with the same scope and limits; the old one\n"
     "                                  is disabled now, or expires after the grace\n"
     "  key delete K                    delete a key\n"
     "\n"
     "  --rate R          requests per second, 1 to 100000 ('default': the configured default)\n"
     "  --burst B         burst size, 1 to 100000 ('default': the configured default)\n"
     "  --allow-cidr C    allowed client address or CIDR, repeatable, at most 32\n"
     "  --no-allow-cidr   remove the address allowlist\n"
     "  --expires-at T    ISO 8601 UTC time, e.g. 2027-01-31T00:00:00Z ('never' on update)\n"
     "  --grace SECONDS   0 to 2592000, default 0\n"
     "\n"
     "Feed keys are shown, revealed, disabled, enabled, rotated and deleted with these verbs.\n"
     "\n" GLOBAL_LINE,
     key_verbs},
    {"feed-key", "create, list (platform-wide keys for the facility feed)",
     "usage: " LG_CLI_NAME " [GLOBAL OPTIONS] feed-key VERB [ARGS]\n"
     "\n"
     "  feed-key create --name N        create a feed key; prints its secret once\n"
     "  feed-key list                   list feed keys\n"
     "\n"
     "Show, reveal, disable, enable, rotate and delete feed keys with 'key VERB K'.\n"
     "\n" GLOBAL_LINE,
     feed_key_verbs},
    {"audit", "recent unlock-code reads and admin actions, newest first",
     "usage: " LG_CLI_NAME " [GLOBAL OPTIONS] audit [--account A] [--key K] [--limit N]\n"
     "\n"
     "  --account A       only entries of this account\n"
     "  --key K           only entries of this key\n"
     "  --limit N         at most N entries, 1 to 1000 (default 100)\n"
     "\n" GLOBAL_LINE,
     audit_verbs},
    {"user", "create, list, show, disable, enable, delete, set-password (console users)",
     "usage: " LG_CLI_NAME " [GLOBAL OPTIONS] user VERB [ARGS]\n"
     "\n"
     "  user create --account A --email E [--role owner|client_admin] [--password-file F]\n"
     "                                  create a console user (role owner by default);\n"
     "                                  without F a strong password is made and printed once\n"
     "  user list --account A           list an account's console users\n"
     "  user show E                     show one user\n"
     "  user disable E                  refuse their sign-ins and end their sessions now\n"
     "  user enable E                   allow them again\n"
     "  user delete E                   delete the user and end their sessions\n"
     "  user set-password E [--password-file F]\n"
     "                                  new password (from F's first line, or made and\n"
     "                                  printed once); ends their sessions\n"
     "\n" GLOBAL_LINE,
     lg_cli_user_verbs},
    {"lock-changed", "announce a lock change to feed subscribers",
     "usage: " LG_CLI_NAME " [GLOBAL OPTIONS] lock-changed --facility F --unit U\n"
     "\n"
     "  --facility F      the facility of the unit\n"
     "  --unit U          the unit whose lock changed\n"
     "\n" GLOBAL_LINE,
     lock_changed_verbs},
    {NULL, NULL, NULL, NULL},
};
