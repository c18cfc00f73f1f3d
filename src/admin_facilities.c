/* Admin API: facilities (create or import, list, show, rename and
 * include/exclude, delete). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin_internal.h"
#include "lockgate/cred.h"

static void done_facility(struct lg_admin_call *c, const redisReply *reply)
{
    lg_admin_call_shaped(c, c->status, lg_admin_shape_facility(reply));
}

void lg_admin_facility_create(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                              const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"name", "facility_id", NULL};
    char err[256];
    const char *name;
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0 ||
        lg_admin_name_get(body, "name", true, &name, err, sizeof(err)) < 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
        return;
    }
    char fac[72];
    json_t *given = json_object_get(body, "facility_id");
    if (given != NULL) {
        if (!json_is_string(given) ||
            !lg_ident_valid(json_string_value(given), json_string_length(given))) {
            lg_admin_reply_error(adm, req, rid, 400, "bad_request",
                                 "facility_id: must match [A-Za-z0-9_-]{1,64}");
            return;
        }
        snprintf(fac, sizeof(fac), "%s", json_string_value(given));
    } else if (lg_id_new("fac_", fac, sizeof(fac)) < 0) {
        lg_admin_reply_error(adm, req, rid, 500, "internal_error", "no randomness");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->status = 201;
    lg_admin_call_key(c, "acct:%s", ids[0]);
    lg_admin_call_key(c, "acct:%s:facilities", ids[0]);
    lg_admin_call_key(c, "facilities");
    lg_admin_call_key(c, "fac:%s", fac);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_argf(c, "%s", fac);
    lg_admin_call_argf(c, "%s", name);
    lg_admin_call_run(c, &lg_admin_script_facility_create, done_facility);
}

void lg_admin_facility_get(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                           const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->status = 200;
    lg_admin_call_key(c, "fac:%s", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_facility_get, done_facility);
}

static void done_list(struct lg_admin_call *c, const redisReply *reply)
{
    json_t *list = lg_admin_shape_list(reply, lg_admin_shape_facility, "facility_id");
    lg_admin_call_shaped(c, 200, json_pack("{s:o}", "facilities", list));
}

void lg_admin_facility_list(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                            const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "acct:%s", ids[0]);
    lg_admin_call_key(c, "acct:%s:facilities", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_facility_list, done_list);
}

void lg_admin_facility_patch(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                             const char *const *ids, json_t *body)
{
    static const char *const fields[] = {"name", "included", NULL};
    char err[256];
    const char *name;
    if (lg_admin_fields_check(body, fields, err, sizeof(err)) < 0 ||
        lg_admin_name_get(body, "name", false, &name, err, sizeof(err)) < 0) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "%s", err);
        return;
    }
    json_t *inc = json_object_get(body, "included");
    if (inc != NULL && !json_is_boolean(inc)) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request", "included: must be true or false");
        return;
    }
    if (inc == NULL && name == NULL) {
        lg_admin_reply_error(adm, req, rid, 400, "bad_request",
                             "body: give at least one of included, name");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    c->status = 200;
    lg_admin_call_key(c, "fac:%s", ids[0]);
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_argf(c, "%s", inc == NULL ? "" : json_is_true(inc) ? "1" : "0");
    lg_admin_call_argf(c, "%s", name != NULL ? "1" : "0");
    lg_admin_call_argf(c, "%s", name != NULL ? name : "");
    lg_admin_call_run(c, &lg_admin_script_facility_patch, done_facility);
}

static void done_deleted(struct lg_admin_call *c, const redisReply *reply)
{
    lg_admin_call_json(c, 204, NULL);
}

void lg_admin_facility_delete(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                              const char *const *ids, json_t *body)
{
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL) return;
    lg_admin_call_key(c, "fac:%s", ids[0]);
    lg_admin_call_key(c, "facilities");
    lg_admin_call_common(c);
    lg_admin_call_argf(c, "%s", ids[0]);
    lg_admin_call_run(c, &lg_admin_script_facility_delete, done_deleted);
}
