/* JSON answers: the shared error body and compact JSON documents. */
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "lockgate/http.h"
#include "lockgate/reply.h"

#define JSON_TYPE "application/json"

/* The one error body builder: the compact text (malloc'd) or NULL. */
static char *error_text(const char *code, const char *message, const char *request_id)
{
    const char *rid = request_id ? request_id : "";
    json_t *body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message", message,
                             "request_id", rid);
    if (body == NULL) /* MESSAGE was not UTF-8 */
        body = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "message",
                         "the request was refused", "request_id", rid);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

void lg_http_reply_error_body(struct lg_http_req *req, int status, const char *code,
                              const char *message, const char *request_id)
{
    char *text = error_text(code, message, request_id);
    if (text == NULL) {
        static const char fallback[] =
            "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";
        lg_http_reply(req, status, JSON_TYPE, fallback, sizeof(fallback) - 1);
        return;
    }
    lg_http_reply(req, status, JSON_TYPE, text, strlen(text));
    free(text);
}

void lg_http_reply_error(struct lg_http_req *req, int status, const char *code, const char *message,
                         const char *request_id)
{
    if (request_id != NULL) lg_http_set_header(req, "X-Request-Id", request_id);
    lg_http_reply_error_body(req, status, code, message, request_id);
}

void lg_http_reply_json(struct lg_http_req *req, int status, json_t *body)
{
    if (body == NULL) {
        lg_http_reply(req, status, JSON_TYPE, NULL, 0);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        lg_http_reply_error(req, 500, "internal_error", "answer could not be serialized", NULL);
        return;
    }
    size_t len = strlen(text);
    lg_http_reply(req, status, JSON_TYPE, text, len);
    OPENSSL_cleanse(text, len);
    free(text);
}
