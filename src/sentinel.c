/* Redis Sentinel on hiredis's async API: a question (which server is the
 * primary?) asked of each Sentinel in turn, each with a deadline, and a
 * subscription to +switch-master on every Sentinel: the leader of a failover
 * announces it at once, the others only once its hello reaches them
 * (seconds later). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/crypto.h>

#include "lockgate/config.h"
#include "lockgate/log.h"
#include "lockgate/sentinel.h"

#define ASK_TIMEOUT_MS  500 /* one Sentinel, connect to answer */
#define SUB_BACKOFF_MIN 100
#define SUB_BACKOFF_MAX 2000

struct addr {
    char host[256];
    int port;
};

/* The subscription to one Sentinel. */
struct sub {
    struct lg_sentinel *s;
    int idx;
    redisAsyncContext *ac;
    int backoff_ms;
    struct event *timer;
};

struct lg_sentinel {
    struct event_base *base;
    struct addr addrs[LG_SENTINELS_MAX];
    int naddrs;
    int good; /* the Sentinel that answered last: asked first */
    char master[128];
    char password[256];
    /* the question */
    redisAsyncContext *ask_ac;
    int tried;
    lg_sentinel_addr_cb *ask_cb;
    void *ask_arg;
    struct event *ask_timer;  /* deadline of the Sentinel asked now */
    struct event *next_timer; /* moves on to the next Sentinel outside hiredis */
    struct sub subs[LG_SENTINELS_MAX];
    lg_sentinel_switch_cb *switch_cb;
    void *switch_arg;
    struct addr switched; /* the last +switch-master, handed over by switch_timer */
    struct event *switch_timer;
};

/* "host:port" or "[ipv6]:port", already validated by the config. */
static void addr_parse(const char *text, size_t len, struct addr *a)
{
    char buf[LG_ADDR_MAX];
    snprintf(buf, sizeof(buf), "%.*s", (int)len, text);
    char *colon = strrchr(buf, ':');
    a->port = colon ? atoi(colon + 1) : 0;
    if (colon) *colon = '\0';
    const char *host = buf;
    if (buf[0] == '[') {
        host = buf + 1;
        char *close = strchr(buf, ']');
        if (close) *close = '\0';
    }
    snprintf(a->host, sizeof(a->host), "%s", host);
}

/* Every connection to a Sentinel authenticates first when a password is set;
 * a refused AUTH makes the next command fail, which moves on. */
static redisAsyncContext *sentinel_connect(struct lg_sentinel *s, const struct addr *a,
                                           redisDisconnectCallback *on_lost)
{
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (ac == NULL || ac->err) {
        if (ac != NULL) redisAsyncFree(ac);
        return NULL;
    }
    ac->data = s;
    redisLibeventAttach(ac, s->base);
    redisAsyncSetDisconnectCallback(ac, on_lost);
    if (s->password[0] != '\0') {
        const char *argv[] = {"AUTH", s->password};
        redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, NULL);
    }
    return ac;
}

/* Drops a context of ours from outside its callbacks: pending callbacks run
 * with NULL and see it is no longer ours. */
static void context_drop(redisAsyncContext **slot)
{
    redisAsyncContext *ac = *slot;
    *slot = NULL;
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

/* ---- the question ---- */

static void ask_next(struct lg_sentinel *s);

static void ask_done(struct lg_sentinel *s, const char *host, int port)
{
    lg_sentinel_addr_cb *cb = s->ask_cb;
    void *arg = s->ask_arg;
    s->ask_cb = NULL;
    evtimer_del(s->ask_timer);
    cb(host, port, arg);
}

static void on_ask_lost(const redisAsyncContext *ac, int status)
{
    struct lg_sentinel *s = ac->data;
    if (s == NULL || s->ask_ac != ac) return;
    s->ask_ac = NULL; /* hiredis frees it */
    struct timeval zero = {0, 0};
    evtimer_add(s->next_timer, &zero);
}

static void on_ask_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct lg_sentinel *s = privdata;
    redisReply *reply = r;
    if (s == NULL || s->ask_ac != ac) return;
    /* NULL: hiredis is freeing the context (a refused connect calls no
     * disconnect callback, only this one) */
    if (reply == NULL) s->ask_ac = NULL;
    if (s->ask_cb == NULL) return;
    const struct addr *asked = &s->addrs[(s->good + s->tried - 1) % s->naddrs];
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING && reply->element[0]->len < 256) {
        struct addr primary;
        snprintf(primary.host, sizeof(primary.host), "%s", reply->element[0]->str);
        primary.port = atoi(reply->element[1]->str);
        if (primary.port > 0 && primary.port < 65536) {
            s->good = (s->good + s->tried - 1) % s->naddrs;
            ac->data = NULL; /* its end is no longer news */
            s->ask_ac = NULL;
            redisAsyncDisconnect(ac);
            ask_done(s, primary.host, primary.port);
            return;
        }
    }
    lg_warn("sentinel %s:%d: no primary for %s: %s", asked->host, asked->port, s->master,
            reply == NULL                      ? "no answer"
            : reply->type == REDIS_REPLY_ERROR ? reply->str
                                               : "unknown master");
    struct timeval zero = {0, 0};
    evtimer_add(s->next_timer, &zero);
}

static void ask_next(struct lg_sentinel *s)
{
    context_drop(&s->ask_ac);
    evtimer_del(s->ask_timer);
    if (s->ask_cb == NULL) return;
    if (s->tried == s->naddrs) {
        lg_warn("sentinels: none named a primary for %s", s->master);
        ask_done(s, NULL, 0);
        return;
    }
    const struct addr *a = &s->addrs[(s->good + s->tried) % s->naddrs];
    s->tried++;
    s->ask_ac = sentinel_connect(s, a, on_ask_lost);
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", s->master};
    if (s->ask_ac == NULL ||
        redisAsyncCommandArgv(s->ask_ac, on_ask_reply, s, 3, argv, NULL) != REDIS_OK) {
        struct timeval zero = {0, 0};
        evtimer_add(s->next_timer, &zero);
        return;
    }
    struct timeval tv = {ASK_TIMEOUT_MS / 1000, (ASK_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(s->ask_timer, &tv);
}

static void on_next_timer(evutil_socket_t fd, short what, void *arg) { ask_next(arg); }

int lg_sentinel_ask(struct lg_sentinel *s, lg_sentinel_addr_cb *cb, void *arg)
{
    if (s->ask_cb != NULL) return -1;
    s->ask_cb = cb;
    s->ask_arg = arg;
    s->tried = 0;
    ask_next(s);
    return 0;
}

/* ---- the subscriptions ---- */

static void sub_retry(struct sub *b)
{
    struct timeval tv = {b->backoff_ms / 1000, (b->backoff_ms % 1000) * 1000};
    evtimer_add(b->timer, &tv);
    b->backoff_ms = b->backoff_ms * 2 > SUB_BACKOFF_MAX ? SUB_BACKOFF_MAX : b->backoff_ms * 2;
}

static void on_sub_lost(const redisAsyncContext *ac, int status)
{
    struct sub *b = ac->data;
    if (b == NULL || b->ac != ac) return;
    b->ac = NULL;
    lg_debug("sentinel %s:%d: subscription lost: %s", b->s->addrs[b->idx].host,
             b->s->addrs[b->idx].port, ac->errstr[0] ? ac->errstr : "closed");
    sub_retry(b);
}

static void on_switch_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lg_sentinel *s = arg;
    s->switch_cb(s->switched.host, s->switched.port, s->switch_arg);
}

/* "+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT" */
static void on_sub_message(redisAsyncContext *ac, void *r, void *privdata)
{
    struct sub *b = privdata;
    redisReply *reply = r;
    if (b == NULL || b->ac != ac) return;
    if (reply == NULL) { /* hiredis frees it: lost, or a refused connect (no other callback) */
        b->ac = NULL;
        sub_retry(b);
        return;
    }
    struct lg_sentinel *s = b->s;
    if (reply->type == REDIS_REPLY_ERROR) {
        lg_warn("sentinel %s:%d: SUBSCRIBE refused: %s", s->addrs[b->idx].host,
                s->addrs[b->idx].port, reply->str);
        return; /* the connection stays; the others and the question still work */
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply *kind = reply->element[0], *payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING) return;
    if (strcmp(kind->str, "subscribe") == 0) {
        b->backoff_ms = SUB_BACKOFF_MIN;
        return;
    }
    if (strcmp(kind->str, "message") != 0 || payload->type != REDIS_REPLY_STRING ||
        payload->len > 600)
        return;
    char name[128], oldip[256], newip[256];
    int oldport, newport;
    if (sscanf(payload->str, "%127s %255s %d %255s %d", name, oldip, &oldport, newip, &newport) !=
            5 ||
        strcmp(name, s->master) != 0 || newport < 1 || newport > 65535)
        return;
    if (strcmp(s->switched.host, newip) == 0 && s->switched.port == newport) return; /* heard */
    lg_info("sentinel %s:%d: %s moved from %s:%d to %s:%d", s->addrs[b->idx].host,
            s->addrs[b->idx].port, name, oldip, oldport, newip, newport);
    snprintf(s->switched.host, sizeof(s->switched.host), "%s", newip);
    s->switched.port = newport;
    struct timeval zero = {0, 0};
    evtimer_add(s->switch_timer, &zero);
}

static void on_sub_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sub *b = arg;
    if (b->ac != NULL) return;
    b->ac = sentinel_connect(b->s, &b->s->addrs[b->idx], on_sub_lost);
    if (b->ac != NULL) b->ac->data = b;
    const char *argv[] = {"SUBSCRIBE", "+switch-master"};
    if (b->ac == NULL ||
        redisAsyncCommandArgv(b->ac, on_sub_message, b, 2, argv, NULL) != REDIS_OK) {
        context_drop(&b->ac);
        sub_retry(b);
        return;
    }
    /* A Sentinel that vanished without a FIN is noticed by TCP keepalive. */
    redisEnableKeepAlive(&b->ac->c);
}

/* ---- life ---- */

struct lg_sentinel *lg_sentinel_new(struct event_base *base, const struct lg_config *cfg,
                                    lg_sentinel_switch_cb *on_switch, void *arg)
{
    struct lg_sentinel *s = calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->base = base;
    s->switch_cb = on_switch;
    s->switch_arg = arg;
    snprintf(s->master, sizeof(s->master), "%s", cfg->redis_master_name);
    snprintf(s->password, sizeof(s->password), "%s", cfg->redis_sentinel_password);
    for (const char *p = cfg->redis_sentinels; *p && s->naddrs < LG_SENTINELS_MAX;) {
        size_t len = strcspn(p, ",");
        addr_parse(p, len, &s->addrs[s->naddrs++]);
        p += len;
        if (*p == ',') p++;
    }
    s->ask_timer = evtimer_new(base, on_next_timer, s);
    s->next_timer = evtimer_new(base, on_next_timer, s);
    s->switch_timer = evtimer_new(base, on_switch_timer, s);
    if (s->naddrs == 0 || s->ask_timer == NULL || s->next_timer == NULL || s->switch_timer == NULL)
        goto err;
    struct timeval zero = {0, 0};
    for (int i = 0; i < s->naddrs; i++) {
        struct sub *b = &s->subs[i];
        b->s = s;
        b->idx = i;
        b->backoff_ms = SUB_BACKOFF_MIN;
        if ((b->timer = evtimer_new(base, on_sub_timer, b)) == NULL) goto err;
        evtimer_add(b->timer, &zero);
    }
    return s;
err:
    lg_sentinel_free(s);
    return NULL;
}

void lg_sentinel_free(struct lg_sentinel *s)
{
    if (s == NULL) return;
    s->ask_cb = NULL;
    context_drop(&s->ask_ac);
    for (int i = 0; i < s->naddrs; i++) {
        context_drop(&s->subs[i].ac);
        if (s->subs[i].timer) event_free(s->subs[i].timer);
    }
    if (s->ask_timer) event_free(s->ask_timer);
    if (s->next_timer) event_free(s->next_timer);
    if (s->switch_timer) event_free(s->switch_timer);
    OPENSSL_cleanse(s->password, sizeof(s->password));
    free(s);
}
