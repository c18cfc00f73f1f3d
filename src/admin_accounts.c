/* Admin API: accounts (create, list, show). */
#include <stdio.h>

#include <jansson.h>

#include "admin_internal.h"
#include "lockgate/cred.h"

static void done_account(struct lg_admin_call *c, const redisReply *reply)
{
    lg_admin_call_shaped(c, c->status, lg_admin_shape_account(reply));
}

void lg_admin_account_create(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                             const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"name", NULL};
    char err[256];
    const char *name;
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0 ||
        lg_admin_name_get(body, "name", true, &name, err, sizeof(err)) < 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
        return;
    }
    char id[LG_ACCOUNT_ID_LEN + 1];
    if (lg_id_new("acct_", id, sizeof(id)) < 0) {
        lg_admin_reply_error(adm, req, rid, 500, "internal_error", "no randomness");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->status = 201;
    lg_admin_call_key(c, "accounts");
    lg_admin_call_key(c, "acct:%s", id);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", id);
    lg_admin_call_argf(c, "%s", name);
    lg_admin_call_run(c, &lg_admin_script_account_create, done_account);
}

void lg_admin_account_get(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->status = 200;
    lg_admin_call_key(c, "acct:%s", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_account_get, done_account);
}

static void done_list(struct lg_admin_call *c, const redisReply *reply)
{
    json_t *list = lg_admin_shape_list(reply, lg_admin_shape_account, "account_id");
    lg_admin_call_shaped(c, 200, json_pack("{s:o}", "accounts", list));
}

void lg_admin_account_list(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                           const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "accounts");
    lg_admin_call_common(c);
    lg_admin_call_run(c, &lg_admin_script_account_list, done_list);
}
