/* The owner's console on the admin listener: the built-in pages under
 * /console/ (with a Content-Security-Policy that allows no inline script and
 * no framing) and the session API the pages use to sign in and out. The
 * pages then call the admin API itself with their session (admin_scope.c). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin_internal.h"
#include "lockgate/console_assets.h"
#include "lockgate/http.h"

#define CSP                                                                           \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

static void page_headers(struct lg_http_req *req)
{
    lg_http_set_header(req, "Content-Security-Policy", CSP); /* X-Frame-Options: on every answer */
    lg_http_set_header(req, "Referrer-Policy", "no-referrer");
}

static void reply_session(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                          const char *rest, const struct lg_admin_session *s)
{
    lg_admin_reply_json(adm, req, rid, 200,
                        json_pack("{s:s, s:s, s:s, s:s}", "email", s->email, "account_id",
                                  s->account, "role", s->role, "csrf", s->csrf));
}

static void sign_out(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                     const char *rest, const struct lg_admin_session *s)
{
    lg_admin_session_end(adm, req, rid, s);
}

static void serve_api(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                      const char *name)
{
    enum lg_http_method m = lg_http_method(req);
    enum lg_http_method want;
    if (strcmp(name, "sign-in") == 0)
        want = LG_HTTP_POST;
    else if (strcmp(name, "sign-out") == 0)
        want = LG_HTTP_POST;
    else if (strcmp(name, "session") == 0)
        want = LG_HTTP_GET;
    else {
        lg_admin_reply_error(adm, req, rid, 404, "not_found", "no such route");
        return;
    }
    if (m != want && !(want == LG_HTTP_GET && m == LG_HTTP_HEAD)) {
        lg_http_set_header(req, "Allow", want == LG_HTTP_GET ? "GET, HEAD" : "POST");
        lg_admin_reply_error(adm, req, rid, 405, "method_not_allowed", "method not allowed here");
        return;
    }
    if (strcmp(name, "sign-in") == 0)
        lg_console_sign_in(adm, req, rid);
    else
        lg_admin_session_begin(adm, req, rid, "",
                               strcmp(name, "sign-out") == 0 ? sign_out : reply_session);
}

void lg_console_serve(struct lg_admin *adm, struct lg_http_req *req, const char *rid,
                      const char *path)
{
    lg_http_set_header(req, "X-Frame-Options", "DENY");
    if (strncmp(path, "/console/api/", 13) == 0) {
        serve_api(adm, req, rid, path + 13);
        return;
    }
    enum lg_http_method m = lg_http_method(req);
    if (m != LG_HTTP_GET && m != LG_HTTP_HEAD) {
        lg_http_set_header(req, "Allow", "GET, HEAD");
        lg_admin_reply_error(adm, req, rid, 405, "method_not_allowed", "only GET is allowed here");
        return;
    }
    if (strcmp(path, "/console") == 0) {
        lg_http_set_header(req, "Location", "/console/");
        lg_http_reply(req, 308, "text/plain; charset=utf-8", "/console/\n", 10);
        return;
    }
    const char *name = path + 9; /* after "/console/" */
    if (name[0] == '\0') name = "index.html";
    for (const struct lg_console_asset *a = lg_console_assets; a->name != NULL; a++) {
        if (strcmp(a->name, name) != 0) continue;
        page_headers(req);
        lg_http_set_header(req, "Cache-Control", "no-cache");
        lg_http_reply(req, 200, a->type, (const char *)a->data, a->len);
        return;
    }
    lg_admin_reply_error(adm, req, rid, 404, "not_found", "no such page");
}
