/* Console sign-in: email and password checked against the user's scrypt
 * hash, with failures counted per email and per client address in Redis
 * (shared by every instance); past the limit every attempt is 429 with
 * Retry-After until the window ends, whether the password is right or not.
 * The answer to a failure never tells whether the email exists: an unknown
 * email costs one scrypt check too and answers the same 401.
 *
 * A scrypt check takes a core for about a tenth of a second (32 MiB), so it
 * runs on a thread of its own, at most SIGNIN_THREADS at once, and the admin
 * loop (health, readiness, the API) goes on meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>

#include "admin_internal.h"
#include "lockgate/http.h"
#include "lockgate/password.h"

#define FAIL_WINDOW_MS  (15 * 60 * 1000)
#define FAILS_PER_EMAIL 5
#define FAILS_PER_ADDR  20
#define SIGNIN_THREADS  4

/* One password check in flight. The thread reads only PW and STORED and
 * writes only OK; the admin loop takes the rest back once EV fires. */
struct lg_signin_job {
    struct lg_signin_job *next;
    struct lg_admin_call *c;
    struct event *ev;
    pthread_t thread;
    char pw[LG_PASSWORD_MAX + 1];
    char stored[LG_PASSWORD_HASH_MAX];
    char account[LG_ACCOUNT_ID_LEN + 1], role[16];
    bool active, ok;
};

/* KEYS: signin:email:{e}, signin:addr:{ip}, user:{e}. ARGV[1] email limit,
 * [2] address limit. {'throttled', ms left} or {'ok', account, role,
 * status, password hash} ('' for an unknown user). */
static struct lg_script script_begin = {
    .name = "signin_begin",
    .source = "local fe = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
              "local fa = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
              "local t = 0\n"
              "if fe >= tonumber(ARGV[1]) then t = math.max(t, redis.call('PTTL', KEYS[1])) end\n"
              "if fa >= tonumber(ARGV[2]) then t = math.max(t, redis.call('PTTL', KEYS[2])) end\n"
              "if t ~= 0 then return {'throttled', tostring(t)} end\n"
              "local u = redis.call('HMGET', KEYS[3], 'account_id', 'role', 'status', 'password')\n"
              "return {'ok', u[1] or '', u[2] or '', u[3] or '', u[4] or ''}\n"};

/* KEYS: the two counters. ARGV[1] window ms. */
static struct lg_script script_fail = {
    .name = "signin_fail",
    .source = "for i = 1, 2 do\n"
              "  if redis.call('INCR', KEYS[i]) == 1 or redis.call('PTTL', KEYS[i]) < 0 then\n"
              "    redis.call('PEXPIRE', KEYS[i], ARGV[1])\n"
              "  end\n"
              "end\n"
              "return 1\n"};

static void counters(struct lg_admin_call *c)
{
    lg_admin_call_key(c, "signin:email:%s", c->session.email);
    lg_admin_call_key(c, "signin:addr:%s", c->peer);
}

static void done_fail(struct lg_admin_call *c, const redisReply *reply)
{
    lg_admin_call_error(c, 401, "invalid_credentials", "the email or password is wrong");
}

static const char *str_at(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
}

static void *check_thread(void *arg)
{
    struct lg_signin_job *job = arg;
    job->ok = lg_password_verify(job->pw, strlen(job->pw), job->stored[0] ? job->stored : NULL);
    OPENSSL_cleanse(job->pw, sizeof(job->pw));
    event_active(job->ev, EV_READ, 0); /* thread-safe: evthread_use_pthreads */
    return NULL;
}

/* Takes JOB out of ADM's list, its thread joined; the caller frees it. */
static void job_unlink(struct lg_admin *adm, struct lg_signin_job *job)
{
    pthread_join(job->thread, NULL);
    event_free(job->ev);
    for (struct lg_signin_job **p = &adm->signins; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    adm->signins_running--;
}

static void on_checked(evutil_socket_t fd, short what, void *arg)
{
    struct lg_signin_job *job = arg;
    struct lg_admin_call *c = job->c;
    job_unlink(c->adm, job);
    bool ok = job->ok && job->active;
    if (ok) lg_admin_session_create(c, c->session.email, job->account, job->role);
    free(job);
    if (ok) return;
    lg_admin_call_reset(c);
    counters(c);
    lg_admin_call_argf(c, "%d", FAIL_WINDOW_MS);
    lg_admin_call_run(c, &script_fail, done_fail);
}

void lg_console_free(struct lg_admin *adm)
{
    while (adm->signins != NULL) {
        struct lg_signin_job *job = adm->signins;
        job_unlink(adm, job);
        lg_admin_call_end(job->c);
        free(job);
    }
}

static void done_begin(struct lg_admin_call *c, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        lg_admin_call_error(c, 500, "internal_error", "unexpected store answer");
        return;
    }
    if (strcmp(str_at(reply, 0), "throttled") == 0) {
        long long ms = atoll(str_at(reply, 1));
        char secs[24];
        snprintf(secs, sizeof(secs), "%lld", ms > 0 ? (ms + 999) / 1000 : 1);
        lg_http_set_header(c->req, "Retry-After", secs);
        lg_admin_call_error(c, 429, "rate_limited", "too many failed sign-ins; try again later");
        return;
    }
    const char *account = str_at(reply, 1), *role = str_at(reply, 2);
    const char *status = str_at(reply, 3), *stored = str_at(reply, 4);
    struct lg_admin *adm = c->adm;
    struct lg_signin_job *job =
        adm->signins_running < SIGNIN_THREADS ? calloc(1, sizeof(*job)) : NULL;
    if (job == NULL) {
        lg_http_set_header(c->req, "Retry-After", "1");
        lg_admin_call_error(c, 503, "busy", "too many sign-ins at once; try again");
        return;
    }
    job->c = c;
    snprintf(job->pw, sizeof(job->pw), "%s", c->secret);
    OPENSSL_cleanse(c->secret, strlen(c->secret));
    snprintf(job->stored, sizeof(job->stored), "%s", stored);
    snprintf(job->account, sizeof(job->account), "%s", account);
    snprintf(job->role, sizeof(job->role), "%s", role);
    job->active = strcmp(status, "active") == 0 && account[0] != '\0';
    if ((job->ev = event_new(adm->base, -1, 0, on_checked, job)) == NULL ||
        pthread_create(&job->thread, NULL, check_thread, job) != 0) {
        if (job->ev) event_free(job->ev);
        OPENSSL_cleanse(job->pw, sizeof(job->pw));
        free(job);
        lg_admin_call_error(c, 500, "internal_error", "cannot check the password now");
        return;
    }
    job->next = adm->signins;
    adm->signins = job;
    adm->signins_running++;
}

/* A sign-in must come from the console's own page: JSON (which a form on
 * another site cannot send without the browser asking first) and, when the
 * browser names its origin, this host. Else another site could sign a
 * visitor in to the attacker's account. */
static bool same_origin(struct lg_http_req *req)
{
    const char *ct = lg_http_hdr(req, LG_HDR_CONTENT_TYPE);
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' '))
        return false;
    const char *origin = lg_http_hdr(req, LG_HDR_ORIGIN);
    if (origin == NULL) return true;
    const char *host = lg_http_hdr(req, LG_HDR_HOST);
    const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    return rest != NULL && host != NULL && strcasecmp(rest, host) == 0;
}

void lg_console_sign_in(struct lg_admin *adm, struct lg_http_req *req, const char *rid)
{
    if (!same_origin(req)) {
        lg_admin_reply_error(adm, req, rid, 403, "forbidden",
                             "sign in from the console's page (JSON, same origin)");
        return;
    }
    size_t len = 0;
    const char *text = lg_http_body(req, &len);
    json_t *body =
        len <= ADMIN_MAX_BODY ? json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *ev = json_object_get(body, "email"), *pv = json_object_get(body, "password");
    if (!json_is_object(body) || !json_is_string(ev) || !json_is_string(pv) ||
        json_string_length(ev) == 0 || json_string_length(ev) > ADMIN_EMAIL_MAX ||
        json_string_length(pv) == 0 || json_string_length(pv) > LG_PASSWORD_MAX) {
        static const char *const secrets[] = {"password", NULL};
        lg_admin_wipe_decref(body, secrets);
        lg_admin_reply_error(adm, req, rid, 400, "bad_request",
                             "body: {\"email\", \"password\"} required");
        return;
    }
    struct lg_admin_call *c = lg_admin_call_new(adm, req, rid);
    if (c == NULL || (c->secret = strdup(json_string_value(pv))) == NULL) {
        static const char *const secrets[] = {"password", NULL};
        if (c != NULL) lg_admin_call_error(c, 500, "internal_error", "out of memory");
        lg_admin_wipe_decref(body, secrets);
        return;
    }
    const char *e = json_string_value(ev);
    size_t i = 0;
    for (; e[i] != '\0' && i < ADMIN_EMAIL_MAX; i++)
        c->session.email[i] = (e[i] >= 'A' && e[i] <= 'Z') ? (char)(e[i] - 'A' + 'a') : e[i];
    c->session.email[i] = '\0';
    bool valid = e[i] == '\0' && lg_admin_email_valid(c->session.email, i);
    static const char *const secrets[] = {"password", NULL};
    lg_admin_wipe_decref(body, secrets);
    if (!valid) { /* no user has it; it never becomes part of a Redis key */
        lg_admin_call_error(c, 401, "invalid_credentials", "the email or password is wrong");
        return;
    }
    counters(c);
    lg_admin_call_key(c, "user:%s", c->session.email);
    lg_admin_call_argf(c, "%d", FAILS_PER_EMAIL);
    lg_admin_call_argf(c, "%d", FAILS_PER_ADDR);
    lg_admin_call_run(c, &script_begin, done_begin);
}
