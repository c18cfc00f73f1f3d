/* What a console session may reach in the admin API: the routes an owner
 * uses (their account, its facilities and keys, its audit; users only for
 * the "owner" role), and only the ids of their own account. This is the
 * server's check, whatever the pages do: another account's key, facility or
 * user answers 404 like one that does not exist; a route outside the
 * console (accounts, feed keys, platform events) answers 403. */
#include <stdio.h>
#include <string.h>

#include "admin_internal.h"

/* Routes of the console, and whether they manage users (owner only). */
static const struct {
    lg_admin_handler_fn *handler;
    bool users;
} allowed[] = {
    {lg_admin_account_get, false},  {lg_admin_facility_list, false},
    {lg_admin_facility_get, false}, {lg_admin_facility_patch, false},
    {lg_admin_key_create, false},   {lg_admin_key_list, false},
    {lg_admin_key_get, false},      {lg_admin_key_patch, false},
    {lg_admin_key_delete, false},   {lg_admin_key_reveal, false},
    {lg_admin_key_disable, false},  {lg_admin_key_enable, false},
    {lg_admin_key_rotate, false},   {lg_admin_audit_list, false},
    {lg_admin_user_create, true},   {lg_admin_user_list, true},
    {lg_admin_user_get, true},      {lg_admin_user_disable, true},
    {lg_admin_user_enable, true},   {lg_admin_user_password, true},
    {lg_admin_user_delete, true},
};

static void run(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                const struct lg_admin_session *s, lg_admin_handler_fn *handler,
                const char *const *ids, json_t *body)
{
    adm->session = s;
    handler(adm, req, rid, ids, body);
    adm->session = NULL;
}

static const char *noun(enum lg_admin_id_kind kind)
{
    return kind == ID_FAC ? "facility" : kind == ID_USER ? "user" : "key";
}

/* The owner of the looked-up id came back: run the handler when it is the
 * session's account. The kind's noun waits in ids[1]. */
static void done_owner(struct lg_admin_call *c, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, c->session.account) != 0) {
        lg_admin_call_error(c, 404, "not_found", "unknown %s", c->ids[1]);
        return;
    }
    const char *ids[3] = {c->ids[0], NULL, NULL};
    run(c->adm, c->req, c->rid, &c->session, (lg_admin_handler_fn *)c->then, ids, c->body);
    lg_admin_call_end(c);
}

void lg_admin_scope_run(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                        const struct lg_admin_session *s, lg_admin_handler_fn *handler,
                        enum lg_admin_id_kind kind, const char *const *ids, json_t *body)
{
    size_t i = 0, n = sizeof(allowed) / sizeof(allowed[0]);
    while (i < n && allowed[i].handler != handler) i++;
    if (i == n) {
        lg_admin_reply_error(adm, req, rid, 403, "forbidden",
                             "this route is not open to console users");
        return;
    }
    if (allowed[i].users && strcmp(s->role, "owner") != 0) {
        lg_admin_reply_error(adm, req, rid, 403, "forbidden",
                             "only an account's owner manages its console users");
        return;
    }
    if (kind == ID_NONE) {
        run(adm, req, rid, s, handler, ids, body);
        return;
    }
    if (kind == ID_ACCT) {
        if (strcmp(ids[0], s->account) != 0)
            lg_admin_reply_error(adm, req, rid, 404, "not_found", "unknown account");
        else
            run(adm, req, rid, s, handler, ids, body);
        return;
    }
    /* A key, facility or user: its account first (ids never move between
     * accounts, so the answer stays true while the handler runs). */
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->session = *s;
    c->then = (void *)handler;
    c->body = json_incref(body);
    snprintf(c->ids[0], sizeof(c->ids[0]), "%s", ids[0]);
    snprintf(c->ids[1], sizeof(c->ids[1]), "%s", noun(kind));
    const char *what = kind == ID_FAC ? "fac" : kind == ID_USER ? "user" : "key";
    lg_admin_call_argf(c, "HGET");
    lg_admin_call_argf(c, "%s%s:%s", lg_store_prefix(adm->store), what, ids[0]);
    lg_admin_call_argf(c, "account_id");
    lg_admin_call_cmd(c, done_owner);
}
