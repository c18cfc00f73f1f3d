/* The Redis connection of one event loop. hiredis 0.14 has no timeouts, so
 * every command carries its own deadline (kept in send order, watched by one
 * timer for the oldest); a connection that stops
 * answering is dropped and re-opened with backoff, and users hear about both
 * edges so they can flush what they cached. With Sentinels the address is
 * asked of them before each connect, the server must say ROLE "master"
 * before the connection counts as up, and +switch-master moves it at once. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "lockgate/args.h"
#include "lockgate/config.h"
#include "lockgate/list.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/sentinel.h"
#include "lockgate/store.h"
#include "lockgate/util.h"

#define BACKOFF_MIN_MS     50
#define BACKOFF_MAX_MS     2000
#define CONNECT_TIMEOUT_MS 1000

/* One command in flight. Pooled: the hot path allocates nothing. */
struct pending {
    struct lg_list free_link; /* in st->free_list */
    struct lg_list deadline;  /* in st->deadlines, while not delivered */
    struct lg_store *st;
    lg_store_cb *cb;
    void *arg;
    int64_t deadline_ms;
    int64_t sent_us;          /* for the round trip in the metrics */
    int delivered;            /* the user callback has run (deadline or reply) */
    struct lg_script *script; /* set for EVALSHA, to resend as EVAL on NOSCRIPT */
    char nkeys[16];           /* the key count as text, argv[2] of EVALSHA/EVAL */
    struct lg_args args;      /* argv[0..2] the command, then copies of the keys and args */
};

struct lg_store {
    struct event_base *base;
    char host[256];
    int port;
    char prefix[64];
    int timeout_ms;
    char username[128];
    char password[256];
    redisAsyncContext *ac;
    int up; /* connected and usable */
    int backoff_ms;
    int64_t last_reply_ms; /* monotonic time of the last reply on this connection */
    struct event *reconnect_timer;
    struct event *ready_timer;   /* runs "connected" work outside hiredis callbacks */
    struct event *connect_timer; /* a connect that takes too long is abandoned */
    struct lg_list free_list;
    struct lg_list deadlines;     /* undelivered commands, oldest deadline first */
    struct event *deadline_timer; /* fires for the oldest (lazily: maybe earlier) */
    int64_t deadline_armed_ms;    /* 0: not armed */
    int inflight;
    lg_store_state_cb *state_cb;
    void *state_arg;
    /* pub/sub mode: "up" for users means every channel confirmed by Redis */
    char *channels[LG_STORE_MAX_CHANNELS];
    int nchannels;
    int notified_up;          /* users were told "up" and not yet "down" */
    struct event *drop_timer; /* drops the connection from outside hiredis callbacks */
    lg_store_message_cb *message_cb;
    void *message_arg;
    int freeing;
    /* Sentinel discovery ([redis] sentinels); NULL: host and port as given */
    struct lg_sentinel *sentinel;
    int asking;         /* a question to the Sentinels is in flight */
    int switched;       /* host and port come from +switch-master: connect without asking */
    uint64_t failovers; /* the primary moved (another address after a Sentinel answer) */
};

static void store_connect(struct lg_store *st);
static void store_connect_to(struct lg_store *st);

static void notify_state(struct lg_store *st, bool up)
{
    if (up == (st->notified_up != 0)) return; /* each edge once */
    st->notified_up = up;
    if (st->state_cb != NULL && !st->freeing) st->state_cb(st, up, st->state_arg);
}

static void schedule_reconnect(struct lg_store *st)
{
    if (st->freeing) return;
    struct timeval tv = {st->backoff_ms / 1000, (st->backoff_ms % 1000) * 1000};
    evtimer_add(st->reconnect_timer, &tv);
    st->backoff_ms = st->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : st->backoff_ms * 2;
}

/* The connection is gone (AC, if still ours, is freed by the caller or by
 * hiredis): tell the users once and retry from a timer. */
static void connection_lost(struct lg_store *st, const char *why)
{
    int was_up = st->up;
    st->ac = NULL;
    st->up = 0;
    evtimer_del(st->connect_timer);
    evtimer_del(st->ready_timer);
    if (was_up) lg_warn("redis %s:%d: connection lost: %s", st->host, st->port, why);
    notify_state(st, false);
    schedule_reconnect(st);
}

/* Drops the current connection (if any). Safe to call from timers, never
 * from inside a hiredis callback for a live context. */
static void store_drop(struct lg_store *st, const char *why)
{
    redisAsyncContext *ac = st->ac;
    st->ac = NULL; /* callbacks run by the free below see it is no longer ours */
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac); /* runs every pending callback with a NULL reply */
    }
    connection_lost(st, why);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg) { store_connect(arg); }

/* hiredis calls this on a failed connect (never the disconnect callback then)
 * and on every loss; hiredis frees the context after it returns. */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct lg_store *st = ac->data;
    if (st == NULL || st->ac != ac) return; /* dropped by us already */
    connection_lost(st, ac->errstr[0] ? ac->errstr : "closed by the server");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct lg_store *st = ac->data;
    if (st == NULL || st->ac != ac) return;
    if (status != REDIS_OK) {
        lg_debug("redis %s:%d: connect failed: %s", st->host, st->port, ac->errstr);
        on_disconnect(ac, status);
        return;
    }
    evtimer_del(st->connect_timer);
    /* No commands from inside the connect callback: finish on a zero timer. */
    struct timeval zero = {0, 0};
    evtimer_add(st->ready_timer, &zero);
}

/* Every reply on a subscribed connection: the confirmations of SUBSCRIBE
 * (the connection counts as up only once Redis confirmed every channel, so
 * no event can be missed in between), then the messages. */
static void on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    struct lg_store *st = privdata;
    redisReply *reply = r;
    if (reply == NULL || st->freeing || st->ac != ac) return;
    st->last_reply_ms = lg_mono_ms();
    if (reply->type == REDIS_REPLY_ERROR) {
        lg_error("redis %s:%d: SUBSCRIBE refused: %s", st->host, st->port, reply->str);
        struct timeval zero = {0, 0};
        evtimer_add(st->drop_timer, &zero);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply *kind = reply->element[0], *chan = reply->element[1], *payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING) return;
    if (strcmp(kind->str, "subscribe") == 0) {
        if (payload->type == REDIS_REPLY_INTEGER && payload->integer == st->nchannels) {
            st->backoff_ms = BACKOFF_MIN_MS;
            notify_state(st, true);
        }
        return;
    }
    if (strcmp(kind->str, "message") == 0 && payload->type == REDIS_REPLY_STRING &&
        st->message_cb != NULL)
        st->message_cb(st, chan->str, payload->str, payload->len, st->message_arg);
}

static void send_subscribe(struct lg_store *st)
{
    const char *argv[1 + LG_STORE_MAX_CHANNELS];
    argv[0] = "SUBSCRIBE";
    for (int i = 0; i < st->nchannels; i++) argv[1 + i] = st->channels[i];
    redisAsyncCommandArgv(st->ac, on_message, st, 1 + st->nchannels, argv, NULL);
}

static void on_drop_timer(evutil_socket_t fd, short what, void *arg)
{
    store_drop(arg, "refused by Redis");
}

void lg_store_reset(struct lg_store *st, const char *why)
{
    if (st->ac != NULL) store_drop(st, why);
}

static void on_auth(redisAsyncContext *ac, void *r, void *privdata)
{
    struct lg_store *st = privdata;
    redisReply *reply = r;
    if (reply == NULL || st->freeing || st->ac != ac) return;
    if (reply->type == REDIS_REPLY_ERROR) {
        lg_error("redis %s:%d: AUTH refused: %s", st->host, st->port, reply->str);
        struct timeval zero = {0, 0};
        evtimer_add(st->drop_timer, &zero);
    }
}

/* The connection is usable: commands flow, or the subscription starts. */
static void store_ready(struct lg_store *st)
{
    st->up = 1;
    /* The backoff restarts only once the connection proved usable: at once
     * for commands, at the confirmation of SUBSCRIBE for a subscriber. */
    if (st->nchannels == 0) st->backoff_ms = BACKOFF_MIN_MS;
    st->last_reply_ms = lg_mono_ms();
    lg_info("redis %s:%d: connected%s", st->host, st->port, st->nchannels ? " (subscriber)" : "");
    if (st->nchannels > 0)
        send_subscribe(st); /* "up" when Redis confirms (on_message) */
    else
        notify_state(st, true);
}

/* A Sentinel's answer may be stale (a demoted primary, back as a replica):
 * only a server that says it is the primary is used. */
static void on_role(redisAsyncContext *ac, void *r, void *privdata)
{
    struct lg_store *st = privdata;
    redisReply *reply = r;
    if (reply == NULL || st->freeing || st->ac != ac) return;
    evtimer_del(st->connect_timer);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") == 0) {
        store_ready(st);
        return;
    }
    lg_warn("redis %s:%d: not the primary (ROLE %s); asking the Sentinels again", st->host,
            st->port,
            reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                    reply->element[0]->type == REDIS_REPLY_STRING
                ? reply->element[0]->str
                : "refused");
    struct timeval zero = {0, 0};
    evtimer_add(st->drop_timer, &zero);
}

static void on_ready_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_store *st = arg;
    if (st->ac == NULL) return;
    /* A peer that vanished without a FIN is noticed by TCP keepalive. */
    redisEnableKeepAlive(&st->ac->c);
    if (st->password[0] != '\0') {
        /* First on the connection: everything pipelined after it runs
         * authenticated, or fails (and the failed AUTH drops the connection). */
        const char *argv[3] = {"AUTH", st->username, st->password};
        if (st->username[0] != '\0')
            redisAsyncCommandArgv(st->ac, on_auth, st, 3, argv, NULL);
        else {
            argv[1] = st->password;
            redisAsyncCommandArgv(st->ac, on_auth, st, 2, argv, NULL);
        }
    }
    if (st->sentinel != NULL) {
        const char *argv[] = {"ROLE"};
        redisAsyncCommandArgv(st->ac, on_role, st, 1, argv, NULL);
        /* the same bound as the connect: a server that never answers is dropped */
        struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
        evtimer_add(st->connect_timer, &tv);
        return;
    }
    store_ready(st);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    store_drop(arg, "connect timed out");
}

/* The Sentinels' answer: connect there, or count it as Redis down. */
static void on_primary(const char *host, int port, void *arg)
{
    struct lg_store *st = arg;
    st->asking = 0;
    if (st->freeing || st->ac != NULL) return;
    if (st->switched) { /* +switch-master came meanwhile: newer than this answer */
        st->switched = 0;
        store_connect_to(st);
        return;
    }
    if (host == NULL) {
        schedule_reconnect(st);
        return;
    }
    if (st->port != 0 && (strcmp(st->host, host) != 0 || st->port != port)) st->failovers++;
    snprintf(st->host, sizeof(st->host), "%s", host);
    st->port = port;
    store_connect_to(st);
}

static void store_connect(struct lg_store *st)
{
    if (st->ac != NULL || st->freeing || st->asking) return;
    if (st->sentinel != NULL && !st->switched) {
        st->asking = 1;
        if (lg_sentinel_ask(st->sentinel, on_primary, st) < 0) st->asking = 0;
        return;
    }
    st->switched = 0;
    store_connect_to(st);
}

/* +switch-master for our master: leave the old primary now and go to the
 * new one without waiting for the backoff. */
static void on_switch(const char *host, int port, void *arg)
{
    struct lg_store *st = arg;
    if (st->freeing) return;
    bool same = strcmp(st->host, host) == 0 && st->port == port;
    if (same && st->ac != NULL) return;
    if (!same) st->failovers++;
    snprintf(st->host, sizeof(st->host), "%s", host);
    st->port = port;
    st->switched = 1;
    if (st->asking) return; /* its answer connects here (on_primary) */
    if (st->ac != NULL) store_drop(st, "the Sentinels moved the primary");
    evtimer_del(st->reconnect_timer);
    st->backoff_ms = BACKOFF_MIN_MS;
    store_connect(st);
}

static void store_connect_to(struct lg_store *st)
{
    redisAsyncContext *ac = redisAsyncConnect(st->host, st->port);
    if (ac == NULL || ac->err) {
        lg_debug("redis %s:%d: %s", st->host, st->port, ac ? ac->errstr : "out of memory");
        if (ac != NULL) redisAsyncFree(ac);
        schedule_reconnect(st);
        return;
    }
    ac->data = st;
    st->ac = ac;
    redisLibeventAttach(ac, st->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(st->connect_timer, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg);

struct lg_store *lg_store_new(struct event_base *base, const struct lg_config *cfg)
{
    struct lg_store *st = calloc(1, sizeof(*st));
    if (st == NULL) return NULL;
    lg_list_init(&st->free_list);
    lg_list_init(&st->deadlines);
    st->base = base;
    snprintf(st->host, sizeof(st->host), "%s", cfg->redis_host);
    st->port = cfg->redis_port;
    snprintf(st->prefix, sizeof(st->prefix), "%s", cfg->redis_prefix);
    snprintf(st->username, sizeof(st->username), "%s", cfg->redis_username);
    snprintf(st->password, sizeof(st->password), "%s", cfg->redis_password);
    st->timeout_ms = cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : 50;
    st->backoff_ms = BACKOFF_MIN_MS;
    st->reconnect_timer = evtimer_new(base, on_reconnect_timer, st);
    st->ready_timer = evtimer_new(base, on_ready_timer, st);
    st->connect_timer = evtimer_new(base, on_connect_timeout, st);
    st->drop_timer = evtimer_new(base, on_drop_timer, st);
    st->deadline_timer = evtimer_new(base, on_deadline, st);
    if (st->reconnect_timer == NULL || st->ready_timer == NULL || st->connect_timer == NULL ||
        st->drop_timer == NULL || st->deadline_timer == NULL)
        goto err;
    if (cfg->redis_sentinels[0] != '\0') {
        st->host[0] = '\0';
        st->port = 0; /* not known until a Sentinel answers */
        if ((st->sentinel = lg_sentinel_new(base, cfg, on_switch, st)) == NULL) goto err;
    }
    store_connect(st);
    return st;
err:
    lg_store_free(st);
    return NULL;
}

static void pending_free(struct pending *p)
{
    lg_args_free(&p->args);
    free(p);
}

void lg_store_free(struct lg_store *st)
{
    if (st == NULL) return;
    st->freeing = 1;
    if (st->ac != NULL) {
        redisAsyncContext *ac = st->ac;
        st->ac = NULL;
        st->up = 0;
        redisAsyncFree(ac); /* pending callbacks run with NULL and return to the pool */
    }
    lg_sentinel_free(st->sentinel);
    if (st->reconnect_timer) event_free(st->reconnect_timer);
    if (st->ready_timer) event_free(st->ready_timer);
    if (st->connect_timer) event_free(st->connect_timer);
    if (st->drop_timer) event_free(st->drop_timer);
    if (st->deadline_timer) event_free(st->deadline_timer);
    struct lg_list *n;
    while ((n = lg_list_pop_front(&st->free_list)) != NULL)
        pending_free(LG_CONTAINER_OF(n, struct pending, free_link));
    for (int i = 0; i < st->nchannels; i++) free(st->channels[i]);
    OPENSSL_cleanse(st->password, sizeof(st->password));
    free(st);
}

void lg_store_on_state(struct lg_store *st, lg_store_state_cb *cb, void *arg)
{
    st->state_cb = cb;
    st->state_arg = arg;
}

bool lg_store_up(const struct lg_store *st) { return st->up; }
uint64_t lg_store_failovers(const struct lg_store *st) { return st->failovers; }
const char *lg_store_prefix(const struct lg_store *st) { return st->prefix; }

static struct pending *pending_get(struct lg_store *st)
{
    struct lg_list *n = lg_list_pop_front(&st->free_list);
    struct pending *p;
    if (n != NULL) {
        p = LG_CONTAINER_OF(n, struct pending, free_link);
    } else {
        p = calloc(1, sizeof(*p));
        if (p == NULL) return NULL;
        lg_list_init(&p->free_link);
        lg_list_init(&p->deadline);
    }
    p->st = st;
    p->delivered = 0;
    p->script = NULL;
    st->inflight++;
    return p;
}

static void pending_put(struct pending *p)
{
    struct lg_store *st = p->st;
    st->inflight--;
    lg_args_release(&p->args); /* they may hold a verifier and a sealed secret */
    if (st->freeing) {
        pending_free(p);
        return;
    }
    lg_list_push_front(&st->free_list, &p->free_link);
}

/* The undelivered command whose deadline comes first, or NULL. */
static struct pending *oldest(const struct lg_store *st)
{
    struct lg_list *n = lg_list_first(&st->deadlines);
    return n != NULL ? LG_CONTAINER_OF(n, struct pending, deadline) : NULL;
}

static void deadline_arm(struct lg_store *st, int64_t now)
{
    int64_t at = oldest(st)->deadline_ms, ms = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(st->deadline_timer, &tv);
    st->deadline_armed_ms = at;
}

/* Queues P's deadline. Deadlines are send time plus one timeout, so the
 * queue is in deadline order; the timer moves only when it is not armed. */
static void deadline_push(struct pending *p, int64_t now)
{
    struct lg_store *st = p->st;
    p->deadline_ms = now + st->timeout_ms;
    lg_list_push_back(&st->deadlines, &p->deadline);
    if (st->deadline_armed_ms == 0) deadline_arm(st, now);
}

static void deliver(struct pending *p, redisReply *reply)
{
    if (p->delivered) return;
    p->delivered = 1;
    lg_list_remove(&p->deadline);
    lg_metrics_redis_command(reply != NULL, lg_mono_us() - p->sent_us);
    p->cb(p->st, reply, p->arg);
}

/* The deadlines: callers whose command is overdue hear "failed" now. A
 * connection that has not answered anything for a whole deadline is
 * considered dead and dropped. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct lg_store *st = arg;
    st->deadline_armed_ms = 0;
    int64_t now = lg_mono_ms();
    bool overdue = false;
    struct pending *p;
    while ((p = oldest(st)) != NULL && p->deadline_ms <= now) {
        overdue = true;
        deliver(p, NULL);
    }
    if (overdue && st->ac != NULL && lg_mono_ms() - st->last_reply_ms >= st->timeout_ms)
        store_drop(st, "command deadline passed");
    if (oldest(st) != NULL && st->deadline_armed_ms == 0) deadline_arm(st, lg_mono_ms());
}

static int send_eval(struct pending *p);

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct pending *p = privdata;
    struct lg_store *st = p->st;
    redisReply *reply = r;
    if (reply != NULL) st->last_reply_ms = lg_mono_ms();
    if (reply != NULL && !p->delivered && p->script != NULL && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && st->ac == ac) {
        if (send_eval(p) == 0) return; /* the same pending waits for the EVAL reply */
        reply = NULL;
    }
    deliver(p, reply);
    pending_put(p);
}

static void arm(struct pending *p, lg_store_cb *cb, void *arg)
{
    p->cb = cb;
    p->arg = arg;
    p->sent_us = lg_mono_us();
    deadline_push(p, lg_mono_ms());
}

static int send_argv(struct lg_store *st, struct pending *p, int argc, const char **argv,
                     const size_t *argvlen)
{
    return redisAsyncCommandArgv(st->ac, on_reply, p, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

int lg_store_argv(struct lg_store *st, lg_store_cb *cb, void *arg, int argc, const char **argv,
                  const size_t *argvlen)
{
    if (!st->up || st->ac == NULL || st->nchannels > 0) return -1;
    struct pending *p = pending_get(st);
    if (p == NULL) return -1;
    arm(p, cb, arg);
    if (send_argv(st, p, argc, argv, argvlen) < 0) {
        p->delivered = 1;
        lg_list_remove(&p->deadline);
        pending_put(p);
        return -1;
    }
    return 0;
}

/* Scripts are static and shared by every worker: the digest is filled once,
 * under a lock, by the first thread to use the script; afterwards a single
 * acquire load is all a request pays. */
static void script_sha(struct lg_script *s)
{
    if (atomic_load_explicit(&s->ready, memory_order_acquire)) return;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    if (!atomic_load_explicit(&s->ready, memory_order_relaxed)) {
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)s->source, strlen(s->source), md);
        for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
        atomic_store_explicit(&s->ready, 1, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
}

static int send_eval(struct pending *p)
{
    struct lg_store *st = p->st;
    struct lg_args *a = &p->args;
    a->argv[0] = "EVAL";
    a->argvlen[0] = 4;
    a->argv[1] = p->script->source;
    a->argvlen[1] = strlen(p->script->source);
    /* argv[2] already holds the key count from the EVALSHA call. */
    lg_debug("redis: script %s was not loaded; sending it as EVAL", p->script->name);
    return send_argv(st, p, a->argc + 3, a->argv, a->argvlen);
}

/* EVALSHA SCRIPT, sent as CMD when given (already in wire form), else
 * formatted from the arguments, which are kept for a NOSCRIPT resend. */
static int script_send(struct lg_store *st, struct lg_script *script, const char *cmd, size_t len,
                       lg_store_cb *cb, void *arg, int nkeys, int argc, const char **argv,
                       const size_t *argvlen)
{
    if (!st->up || st->ac == NULL || st->nchannels > 0) return -1;
    script_sha(script);
    struct pending *p = pending_get(st);
    if (p == NULL) return -1;
    /* kept for a NOSCRIPT answer, to be sent again as EVAL */
    struct lg_args *a = &p->args;
    if (lg_args_keep(a, 3, argc, argv, argvlen) < 0) {
        p->delivered = 1;
        pending_put(p);
        return -1;
    }
    p->script = script;
    int nklen = snprintf(p->nkeys, sizeof(p->nkeys), "%d", nkeys);
    a->argv[0] = "EVALSHA";
    a->argvlen[0] = 7;
    a->argv[1] = script->sha;
    a->argvlen[1] = 40;
    a->argv[2] = p->nkeys;
    a->argvlen[2] = (size_t)nklen;
    arm(p, cb, arg);
    int rc = cmd != NULL ? (redisAsyncFormattedCommand(st->ac, on_reply, p, cmd, len) == REDIS_OK
                                ? 0
                                : -1)
                         : send_argv(st, p, argc + 3, a->argv, a->argvlen);
    if (rc < 0) {
        p->delivered = 1;
        lg_list_remove(&p->deadline);
        pending_put(p);
        return -1;
    }
    return 0;
}

int lg_store_script(struct lg_store *st, struct lg_script *script, lg_store_cb *cb, void *arg,
                    int nkeys, int argc, const char **argv, const size_t *argvlen)
{
    return script_send(st, script, NULL, 0, cb, arg, nkeys, argc, argv, argvlen);
}

int lg_store_script_format(struct lg_script *script, int nkeys, int argc, const char **argv,
                           const size_t *argvlen, char **cmd)
{
    script_sha(script);
    const char *av[16];
    size_t al[16];
    char nk[16];
    if (argc + 3 > 16) return -1;
    int nklen = snprintf(nk, sizeof(nk), "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = script->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = (size_t)nklen;
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    return redisFormatCommandArgv(cmd, argc + 3, av, al);
}

int lg_store_script_formatted(struct lg_store *st, struct lg_script *script, const char *cmd,
                              size_t len, lg_store_cb *cb, void *arg, int nkeys, int argc,
                              const char **argv, const size_t *argvlen)
{
    return script_send(st, script, cmd, len, cb, arg, nkeys, argc, argv, argvlen);
}

int lg_store_subscribe(struct lg_store *st, const char *const *channels, int n,
                       lg_store_message_cb *cb, void *arg)
{
    if (n < 1 || n > LG_STORE_MAX_CHANNELS || st->nchannels > 0) return -1;
    for (int i = 0; i < n; i++)
        if ((st->channels[st->nchannels] = strdup(channels[i])) != NULL) st->nchannels++;
    if (st->nchannels != n) return -1;
    st->message_cb = cb;
    st->message_arg = arg;
    if (st->up && st->ac != NULL) send_subscribe(st);
    return 0;
}
