/* JSON answers shared by the admin API and the data plane: the one error body
 * of SPEC section 5, {"error":{"code","message","request_id"}}, and plain
 * JSON documents. Both answer the request, which is invalid afterwards. */
#ifndef LG_REPLY_H
#define LG_REPLY_H

#include <jansson.h>

struct lg_http_req;

/* Answers STATUS with the JSON error body. CODE and MESSAGE are borrowed
 * (MESSAGE must be UTF-8; a generic text replaces it otherwise). When
 * REQUEST_ID is non-NULL it goes into the body and the X-Request-Id header;
 * pass NULL when the caller already set that header (the body then carries
 * ""). Headers such as WWW-Authenticate or Retry-After are set by the caller
 * before. Content-Type is application/json. */
void lg_http_reply_error(struct lg_http_req *req, int status, const char *code, const char *message,
                         const char *request_id);
/* The same for a request whose X-Request-Id header the caller already set
 * (a handler the pipeline passed the request to): REQUEST_ID (NULL for "")
 * goes into the body only. */
void lg_http_reply_error_body(struct lg_http_req *req, int status, const char *code,
                              const char *message, const char *request_id);

/* Answers STATUS with BODY serialized compactly, Content-Type
 * application/json. BODY is stolen (decref'd here); NULL answers with no
 * body (204). X-Request-Id is the caller's to set. The serialized text is
 * wiped before it is freed, since some answers carry a secret. */
void lg_http_reply_json(struct lg_http_req *req, int status, json_t *body);

#endif
