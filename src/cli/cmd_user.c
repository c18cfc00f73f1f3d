/* lockgate-admin user ...: the owner's console users of an account (create,
 * list, show, disable, enable, delete, set-password). A password comes from
 * --password-file (its first line) or, without one, the server makes a
 * strong one and this prints it once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

#define NOUN "user"

static const char *const user_order[] = {"email",      "account_id", "role", "status",
                                         "created_at", "updated_at", NULL};

/* Whether S may go into a URL path as an email (the server checks the rest). */
static int email_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("@._+-", *s)))
            return 0;
    return 1;
}

static char *user_path(const char *email, const char *tail, int *rc)
{
    char *p = NULL, lower[129];
    if (!email_ok(email)) {
        *rc = lg_cli_usage_error(NOUN, "EMAIL: expected an email address");
        return NULL;
    }
    /* emails are kept in lower case, as user create stores them */
    size_t i = 0;
    for (; email[i] != '\0'; i++)
        lower[i] = (email[i] >= 'A' && email[i] <= 'Z') ? (char)(email[i] - 'A' + 'a') : email[i];
    lower[i] = '\0';
    if (asprintf(&p, "/admin/v1/users/%s%s", lower, tail) < 0) p = NULL;
    *rc = p ? 0 : LG_CLI_EXIT_FAIL;
    return p;
}

/* Sets body["password"] from the first line of --password-file, if given. */
static int password_from_file(json_t *body, const struct lg_cli_args *args)
{
    const char *file = lg_cli_args_get(args, "password-file");
    if (file == NULL) return 0;
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        fprintf(stderr, LG_CLI_NAME ": %s: cannot read the password file\n", file);
        return LG_CLI_EXIT_FAIL;
    }
    char line[1100];
    size_t n = fgets(line, sizeof(line), f) ? strcspn(line, "\r\n") : 0;
    fclose(f);
    line[n] = '\0';
    int rc = 0;
    json_t *pw = json_string(line);
    if (n == 0 || pw == NULL) {
        fprintf(stderr, LG_CLI_NAME ": %s: the first line must hold the password\n", file);
        rc = LG_CLI_EXIT_FAIL;
    } else {
        json_object_set_new(body, "password", pw);
    }
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}

/* Sends one request and shows the user it answers with, and a generated
 * password once. Takes BODY. */
static int call_user(struct lg_cli_ctx *ctx, const char *method, const char *path, json_t *body)
{
    json_t *answer = NULL;
    int rc = lg_cli_call(ctx, method, path, body, &answer);
    json_decref(body);
    if (rc == 0 && answer != NULL) {
        const char *pw = json_string_value(json_object_get(answer, "password"));
        if (ctx->json)
            lg_cli_print_json(answer);
        else
            lg_cli_print_fields(answer, user_order); /* with the password, if any */
        if (pw != NULL)
            fprintf(stderr,
                    "note: the password is shown only now; hand it to the user privately\n");
    }
    json_decref(answer);
    return rc;
}

static int user_create(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    const char *acct = lg_cli_args_get(args, "account");
    const char *role = lg_cli_args_get(args, "role");
    if (!lg_cli_id_valid(acct)) return lg_cli_usage_error(NOUN, "--account: invalid id");
    json_t *body = json_pack("{s:s}", "email", lg_cli_args_get(args, "email"));
    if (body == NULL) return lg_cli_usage_error(NOUN, "--email: not valid UTF-8");
    if (role != NULL) json_object_set_new(body, "role", json_string(role));
    int rc = password_from_file(body, args);
    char *path = NULL;
    if (rc == 0 && asprintf(&path, "/admin/v1/accounts/%s/users", acct) < 0) path = NULL;
    if (rc != 0 || path == NULL) {
        json_decref(body);
        return rc ? rc : LG_CLI_EXIT_FAIL;
    }
    rc = call_user(ctx, "POST", path, body);
    free(path);
    return rc;
}

static int user_list(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    static const char *const cols[] = {"EMAIL", "ROLE", "STATUS", "CREATED_AT"};
    static const char *const fields[] = {"email", "role", "status", "created_at"};
    const char *acct = lg_cli_args_get(args, "account");
    if (!lg_cli_id_valid(acct)) return lg_cli_usage_error(NOUN, "--account: invalid id");
    char *path = NULL;
    if (asprintf(&path, "/admin/v1/accounts/%s/users", acct) < 0) return LG_CLI_EXIT_FAIL;
    json_t *answer = NULL;
    int rc = lg_cli_call(ctx, "GET", path, NULL, &answer);
    free(path);
    if (rc == 0 && ctx->json) {
        lg_cli_print_json(answer);
    } else if (rc == 0) {
        struct lg_cli_table *t = lg_cli_table_new(4, cols);
        json_t *u;
        size_t i;
        json_array_foreach (json_object_get(answer, "users"), i, u) {
            const char *cells[4];
            for (int k = 0; k < 4; k++) {
                const char *v = json_string_value(json_object_get(u, fields[k]));
                cells[k] = v ? v : "-";
            }
            if (t) lg_cli_table_add(t, cells);
        }
        if (t) lg_cli_table_print(t, stdout);
        lg_cli_table_free(t);
    }
    json_decref(answer);
    return rc;
}

/* show, disable, enable, delete, set-password on the positional EMAIL. */
static int user_on(struct lg_cli_ctx *ctx, const struct lg_cli_args *args, const char *method,
                   const char *tail, json_t *body)
{
    int rc;
    char *path = user_path(lg_cli_args_pos(args), tail, &rc);
    if (path == NULL) {
        json_decref(body);
        return rc;
    }
    if (strcmp(method, "DELETE") == 0) {
        json_t *answer = NULL;
        rc = lg_cli_call(ctx, method, path, NULL, &answer);
        json_decref(answer);
        if (rc == 0 && !ctx->json) printf("deleted user %s\n", lg_cli_args_pos(args));
    } else {
        rc = call_user(ctx, method, path, body);
        body = NULL;
    }
    json_decref(body);
    free(path);
    return rc;
}

static int user_show(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return user_on(ctx, args, "GET", "", NULL);
}

static int user_disable(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return user_on(ctx, args, "POST", "/disable", json_object());
}

static int user_enable(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return user_on(ctx, args, "POST", "/enable", json_object());
}

static int user_delete(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args)
{
    return user_on(ctx, args, "DELETE", "", NULL);
}

static int user_set_password(struct lg_cli_ctx *ctx, const char *noun,
                             const struct lg_cli_args *args)
{
    json_t *body = json_object();
    int rc = body ? password_from_file(body, args) : LG_CLI_EXIT_FAIL;
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    return user_on(ctx, args, "POST", "/password", body);
}

static const struct lg_cli_flag none[] = {{NULL, 0, 0}};
static const struct lg_cli_flag create_flags[] = {{"account", LG_CLI_FLAG_VALUE, 1},
                                                  {"email", LG_CLI_FLAG_VALUE, 1},
                                                  {"role", LG_CLI_FLAG_VALUE, 0},
                                                  {"password-file", LG_CLI_FLAG_VALUE, 0},
                                                  {NULL, 0, 0}};
static const struct lg_cli_flag list_flags[] = {{"account", LG_CLI_FLAG_VALUE, 1}, {NULL, 0, 0}};
static const struct lg_cli_flag password_flags[] = {{"password-file", LG_CLI_FLAG_VALUE, 0},
                                                    {NULL, 0, 0}};

const struct lg_cli_verb lg_cli_user_verbs[] = {
    {"create", NULL, NULL, create_flags, user_create},
    {"list", NULL, NULL, list_flags, user_list},
    {"show", NULL, "EMAIL", none, user_show},
    {"disable", NULL, "EMAIL", none, user_disable},
    {"enable", NULL, "EMAIL", none, user_enable},
    {"delete", NULL, "EMAIL", none, user_delete},
    {"set-password", NULL, "EMAIL", password_flags, user_set_password},
    {NULL, NULL, NULL, NULL, NULL},
};
