/* Per-key GCRA rate limiting: one Lua script in Redis decides for every
 * gateway at once, hot keys lease a few requests at a time; when Redis is
 * down or late, the instance's local fallback (ratelimit_local.c) decides
 * with the same arithmetic (gcra.c). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/list.h"
#include "lockgate/log.h"
#include "lockgate/ratelimit.h"
#include "lockgate/ratelimit_local.h"
#include "lockgate/store.h"
#include "lockgate/table.h"
#include "lockgate/util.h"

/* The script computes in ticks of 1/1024 ms, as gcra.c does (see there): the
 * same operations on the same doubles. */
#define KEY_ID_MAX       64 /* key ids are "lk_" + 30 chars; longer ones are refused */
#define WARN_INTERVAL_MS 10000
/* Leases: a key asked for more than once within LEASE_MS takes a batch of
 * its allowance from Redis in one step (at most 1/LEASE_FRACTION of its
 * burst, and no more than it used in the last LEASE_MS) and spends it here;
 * what is not spent within LEASE_MS lapses (it is never admitted later). */
#define LEASE_MS       5
#define LEASE_FRACTION 8
#define LEASE_MAX_KEYS 1024

/* KEYS[1] the TAT in ticks; ARGV rate per second, burst, and "peek" or N:
 * admit up to N requests at once (a lease; 1 without it). Replies four
 * integers: admitted (0 to N), remaining, reset seconds, retry-after seconds
 * (each a whole number from 0 to 2^31-1, so Redis's integer conversion of
 * Lua numbers loses nothing).
 * TIME is non-deterministic, which is fine: Redis >= 5 replicates a script's
 * effects (the SET), and replicate_commands() asks for that on older ones. */
static struct lg_script gcra_script = {
    .name = "gcra",
    .source =
        "if redis.replicate_commands then redis.replicate_commands() end\n"
        "local rate = tonumber(ARGV[1])\n"
        "local burst = tonumber(ARGV[2])\n"
        "if rate == nil or not (rate >= 1e-6) then rate = 1e-6 end\n"
        "if rate > 1e9 then rate = 1e9 end\n"
        "if burst == nil or not (burst >= 1) then burst = 1 end\n"
        "burst = math.floor(burst)\n"
        "if burst > 2147483647 then burst = 2147483647 end\n"
        "local T = math.floor(1024000 / rate + 0.5)\n"
        "if T < 1 then T = 1 end\n"
        "local limit = burst * T\n"
        "local time = redis.call('TIME')\n"
        "local now = tonumber(time[1]) * 1024000 + math.floor(tonumber(time[2]) * 1024 / 1000)\n"
        "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
        "local function out(v)\n"
        "  if not (v >= 0) then v = 0 end\n"
        "  if v > 2147483647 then v = 2147483647 end\n"
        "  return math.floor(v)\n"
        "end\n"
        "local t = tat\n"
        "if t < now then t = now end\n"
        /* peek: the state now, nothing consumed (refusals after authentication) */
        "if ARGV[3] == 'peek' then\n"
        "  return {1, out(math.floor((limit - (t - now)) / T)),\n"
        "          out(math.ceil((t - now) / 1024000)), 0}\n"
        "end\n"
        "local n = math.floor(tonumber(ARGV[3] or '1') or 1)\n"
        "if not (n >= 1) then n = 1 end\n"
        /* as many of the N as fit now, each one interval later than the last */
        "local fit = math.floor((now + limit - t) / T)\n"
        "if fit > n then fit = n end\n"
        "local new = t + T\n"
        "if fit >= 1 then\n"
        "  new = t + fit * T\n"
        "  local ttl = math.ceil((new - now) / 1024)\n"
        "  if ttl < 1 then ttl = 1 end\n"
        "  if ttl > 1e13 then ttl = 1e13 end\n"
        "  redis.call('SET', KEYS[1], string.format('%.0f', new),\n"
        "             'PX', string.format('%.0f', ttl))\n"
        "  return {fit, out(math.floor((limit - (new - now)) / T)),\n"
        "          out(math.ceil((new - now) / 1024000)), 0}\n"
        "end\n"
        "local retry = math.ceil((new - limit - now) / 1024000)\n"
        "if retry < 1 then retry = 1 end\n"
        "return {0, 0, out(math.ceil((t - now) / 1024000)), out(retry)}\n",
};

/* One check waiting for Redis. Pooled; the key id is copied because the
 * caller's string need not outlive lg_ratelimit_check. */
struct rl_lease;

struct rl_call {
    struct lg_list link;     /* in rl->inflight, or rl->free_calls */
    struct lg_ratelimit *rl; /* NULL once the limiter was freed under it */
    struct rl_lease *lease;  /* a lease request: its waiters get the answer */
    int asked;                   /* how many the lease request asked for */
    lg_ratelimit_cb *cb;
    void *arg;
    double rate;
    int burst;
    bool peek; /* report the state, consume nothing */
    size_t key_len;
    char key[KEY_ID_MAX];
};

/* A check waiting for its key's lease request. */
struct rl_wait {
    struct lg_list link; /* in its lease's waits, or rl->free_waits */
    lg_ratelimit_cb *cb;
    void *arg;
};

/* One key's lease. At most one lease request is in flight per key; checks
 * that come meanwhile wait for it in order. */
struct rl_lease {
    struct lg_table_node node; /* in rl->leases */
    size_t key_len;
    char key[KEY_ID_MAX];
    int tokens;         /* admitted by Redis, not handed out yet */
    int64_t expires_ms; /* the tokens lapse then */
    int remaining;      /* Redis's remaining after the grant */
    int reset_s;
    int64_t window_ms; /* demand: checks in this and the last LEASE_MS */
    int seen, seen_last;
    int64_t used_ms;
    int inflight; /* single checks of this key waiting for Redis */
    bool asking;  /* a lease request is in flight */
    char *cmd;    /* the single check of this key, formatted once (for CMD_RATE, CMD_BURST) */
    int cmd_len;
    double cmd_rate;
    int cmd_burst;
    bool busy; /* its waiters are being answered: not to be evicted */
    struct lg_list waits; /* struct rl_wait, first come first answered */
};

struct lg_ratelimit {
    struct lg_store *st;
    /* struct rl_lease by key, at most LEASE_MAX_KEYS of them: the table
     * keeps its LEASE_MAX_KEYS buckets, here, and never grows */
    struct lg_table leases;
    struct lg_table_node *lease_slots[LEASE_MAX_KEYS];
    int64_t evicted_ms; /* the last sweep of unused leases (at most one per 100 ms) */
    struct lg_list free_waits;
    struct lg_list free_calls;
    struct lg_list inflight;
    int64_t last_warn_ms;
    /* the script's rate and burst arguments, formatted again only when they
     * change (nearly every key uses the configured defaults) */
    double rate_last;
    int burst_last;
    char rate_s[32], burst_s[16];
    int rate_len, burst_len;
};

/* ---- Redis path ---- */

static struct rl_call *call_get(struct lg_ratelimit *rl)
{
    struct lg_list *l = lg_list_pop_front(&rl->free_calls);
    struct rl_call *c = l != NULL ? LG_CONTAINER_OF(l, struct rl_call, link) : NULL;
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) return NULL;
    }
    c->rl = rl;
    c->lease = NULL;
    c->asked = 0;
    lg_list_push_front(&rl->inflight, &c->link);
    return c;
}

static void call_put(struct rl_call *c)
{
    struct lg_ratelimit *rl = c->rl;
    if (rl == NULL) { /* orphaned by lg_ratelimit_free */
        free(c);
        return;
    }
    lg_list_remove(&c->link);
    lg_list_push_front(&rl->free_calls, &c->link);
}

/* Parses a decimal reply element "0".."2147483647"; -1 on anything else. */
static int reply_int(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < 0 || r->integer > INT_MAX)
        return -1;
    return (int)r->integer;
}

/* The script's answer for a request of up to ASKED at once: *ADMITTED of
 * them were admitted. */
static int parse_reply(const redisReply *reply, int burst, int asked,
                       struct lg_ratelimit_result *res, int *admitted)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) return -1;
    int allowed = reply_int(reply->element[0]);
    int remaining = reply_int(reply->element[1]);
    int reset = reply_int(reply->element[2]);
    int retry = reply_int(reply->element[3]);
    if (allowed < 0 || allowed > asked || remaining < 0 || reset < 0 || retry < 0) return -1;
    if (!allowed && retry < 1) return -1;
    *admitted = allowed;
    memset(res, 0, sizeof(*res));
    res->allowed = allowed >= 1;
    res->limit = burst;
    res->remaining = remaining < burst ? remaining : burst;
    res->reset_s = reset;
    res->retry_after_s = allowed ? 0 : retry;
    res->local = false;
    return 0;
}

static void warn_sometimes(struct lg_ratelimit *rl, const redisReply *reply)
{
    int64_t now = lg_mono_ms();
    if (rl->last_warn_ms != 0 && now - rl->last_warn_ms < WARN_INTERVAL_MS) return;
    rl->last_warn_ms = now;
    if (reply->type == REDIS_REPLY_ERROR)
        lg_warn("ratelimit: redis error %.200s; deciding locally", reply->str);
    else
        lg_warn("ratelimit: unexpected redis reply (type %d); deciding locally", reply->type);
}

static void lease_answer(struct rl_call *c, const redisReply *reply);

static void on_reply(struct lg_store *st, redisReply *reply, void *arg)
{
    struct rl_call *c = arg;
    if (c->asked > 0) {
        lease_answer(c, reply);
        return;
    }
    struct lg_ratelimit *rl = c->rl;
    lg_ratelimit_cb *cb = c->cb;
    void *cb_arg = c->arg;
    struct lg_ratelimit_result res;
    int admitted;
    if (c->lease != NULL) c->lease->inflight--;
    if (rl == NULL) {
        lg_gcra_refuse(c->burst, &res); /* the limiter is gone (shutdown): still answer */
    } else if (parse_reply(reply, c->burst, 1, &res, &admitted) < 0) {
        /* NULL: down, disconnected or past the deadline; the deadline is
         * timeout_ms, so no request waits longer than that. */
        if (reply != NULL) warn_sometimes(rl, reply);
        if (c->peek)
            lg_ratelimit_local_peek(c->key, c->key_len, c->rate, c->burst, &res);
        else
            lg_ratelimit_local_decide(c->key, c->key_len, c->rate, c->burst, &res);
    }
    /* Release first: the callback may check again or free the limiter. */
    call_put(c);
    cb(&res, cb_arg);
}

/* ---- leases ---- */

/* The hash of a key id in the lease table. */
static uint64_t lease_hash(const char *key, size_t len)
{
    uint64_t hash = lg_hash(key, len);
    return hash ^ (hash >> 31);
}

static void lease_free(struct rl_lease *l)
{
    free(l->cmd);
    free(l);
}

/* lg_table_each callback: drops a lease nobody uses (no tokens worth
 * keeping, nothing waiting), ARG being the limiter. */
static void lease_drop_unused(struct lg_table_node *n, void *arg)
{
    struct lg_ratelimit *rl = arg;
    struct rl_lease *l = LG_CONTAINER_OF(n, struct rl_lease, node);
    if (!l->asking && !l->busy && l->inflight == 0 && rl->evicted_ms - l->used_ms > 1000) {
        lg_table_remove(&rl->leases, n);
        lease_free(l);
    }
}

/* KEY's lease (made on first sight), or NULL when the table is full. */
static struct rl_lease *lease_get(struct lg_ratelimit *rl, const char *key, size_t len, int64_t now)
{
    uint64_t hash = lease_hash(key, len);
    for (struct lg_table_node *n = lg_table_first(&rl->leases, hash); n != NULL;
         n = lg_table_next(n)) {
        struct rl_lease *l = LG_CONTAINER_OF(n, struct rl_lease, node);
        if (l->key_len == len && memcmp(l->key, key, len) == 0) return l;
    }
    if (lg_table_count(&rl->leases) >= LEASE_MAX_KEYS && now - rl->evicted_ms >= 100) {
        rl->evicted_ms = now;
        lg_table_each(&rl->leases, lease_drop_unused, rl);
    }
    /* checked one at a time, exactly */
    if (lg_table_count(&rl->leases) >= LEASE_MAX_KEYS) return NULL;
    struct rl_lease *l = calloc(1, sizeof(*l));
    if (l == NULL) return NULL;
    l->key_len = len;
    memcpy(l->key, key, len);
    l->window_ms = now;
    lg_list_init(&l->waits);
    lg_table_insert(&rl->leases, &l->node, hash);
    return l;
}

/* Hands out one leased token: the answer is what Redis said at the grant,
 * plus the tokens still held here (they are part of what remains). */
static void lease_spend(struct rl_lease *l, int burst, struct lg_ratelimit_result *res)
{
    l->tokens--;
    memset(res, 0, sizeof(*res));
    res->allowed = true;
    res->limit = burst;
    long rem = (long)l->remaining + l->tokens;
    res->remaining = rem < burst ? (int)rem : burst;
    res->reset_s = l->reset_s;
}

static int wait_push(struct lg_ratelimit *rl, struct rl_lease *l, lg_ratelimit_cb *cb, void *arg)
{
    struct lg_list *n = lg_list_pop_front(&rl->free_waits);
    struct rl_wait *w = n != NULL ? LG_CONTAINER_OF(n, struct rl_wait, link) : malloc(sizeof(*w));
    if (w == NULL) return -1;
    w->cb = cb;
    w->arg = arg;
    lg_list_push_back(&l->waits, &w->link);
    return 0;
}

/* Takes the first waiter off L: its callback and argument. RL may be NULL
 * (an orphaned lease): the record is freed then. */
static void wait_pop(struct lg_ratelimit *rl, struct rl_lease *l, lg_ratelimit_cb **cb, void **arg)
{
    struct rl_wait *w = LG_CONTAINER_OF(lg_list_pop_front(&l->waits), struct rl_wait, link);
    *cb = w->cb;
    *arg = w->arg;
    if (rl != NULL)
        lg_list_push_front(&rl->free_waits, &w->link);
    else
        free(w);
}

static int script_send(struct lg_ratelimit *rl, struct rl_call *c, const char *key_id, size_t len,
                       const char *mode, size_t mode_len, struct rl_lease *cache);

/* Asks Redis for up to N of L's allowance at once. 0, or -1 (not sent). */
static int lease_ask(struct lg_ratelimit *rl, struct rl_lease *l, double rate, int burst, int n)
{
    struct rl_call *c = call_get(rl);
    if (c == NULL) return -1;
    c->rate = rate;
    c->burst = burst;
    c->peek = false;
    c->lease = l;
    c->asked = n;
    c->key_len = l->key_len;
    memcpy(c->key, l->key, l->key_len);
    char mode[16];
    int mlen = snprintf(mode, sizeof(mode), "%d", n);
    if (script_send(rl, c, l->key, l->key_len, mode, (size_t)mlen, NULL) < 0) {
        call_put(c);
        return -1;
    }
    l->asking = true;
    return 0;
}

static int lease_size(const struct rl_lease *l, int burst, int waiting)
{
    int cap = burst / LEASE_FRACTION, n = l->seen + l->seen_last;
    if (n < waiting) n = waiting;
    if (n > cap) n = cap;
    return n < 1 ? 1 : n;
}

/* A lease request's answer: tokens to its waiters in order; a refusal to
 * all of them (the key is past its allowance now); without Redis, local
 * decisions, as for a single check. */
static void lease_answer(struct rl_call *c, const redisReply *reply)
{
    struct lg_ratelimit *rl = c->rl;
    struct rl_lease *l = c->lease;
    double rate = c->rate;
    int burst = c->burst, asked = c->asked, got = 0;
    struct lg_ratelimit_result res;
    int ok = rl != NULL ? parse_reply(reply, burst, asked, &res, &got) : -1;
    if (ok < 0 && rl != NULL && reply != NULL) warn_sometimes(rl, reply);
    call_put(c);
    l->asking = false;
    l->busy = true;
    int64_t now = lg_mono_ms();
    if (ok == 0 && got > 0) {
        l->tokens = got;
        l->expires_ms = now + LEASE_MS;
        l->remaining = res.remaining;
        l->reset_s = res.reset_s;
    }
    lg_ratelimit_cb *cb;
    void *arg;
    while (!lg_list_empty(&l->waits)) {
        struct lg_ratelimit_result r;
        if (l->tokens > 0) {
            lease_spend(l, burst, &r);
        } else if (ok == 0 && got == 0) {
            r = res; /* refused */
        } else if (ok == 0 && rl != NULL) {
            /* more waited than were granted: ask again for the rest */
            int waiting = 0;
            struct lg_list *w, *next;
            LG_LIST_EACH(w, next, &l->waits) waiting++;
            if (lease_ask(rl, l, rate, burst, lease_size(l, burst, waiting)) == 0) break;
            ok = -1;
            continue;
        } else if (rl != NULL) {
            lg_ratelimit_local_decide(l->key, l->key_len, rate, burst, &r);
        } else {
            lg_gcra_refuse(burst, &r); /* shutting down */
        }
        wait_pop(rl, l, &cb, &arg);
        cb(&r, arg); /* may check again, on this key too */
    }
    l->busy = false;
    if (rl == NULL) lease_free(l); /* orphaned: the limiter is gone */
}

struct lg_ratelimit *lg_ratelimit_new(struct lg_store *st)
{
    struct lg_ratelimit *rl = calloc(1, sizeof(*rl));
    if (rl == NULL) return NULL;
    rl->st = st;
    rl->leases = (struct lg_table){rl->lease_slots, LEASE_MAX_KEYS - 1, 0, false};
    lg_list_init(&rl->free_waits);
    lg_list_init(&rl->free_calls);
    lg_list_init(&rl->inflight);
    rl->rate_last = -1;
    rl->burst_last = -1;
    return rl;
}

/* lg_table_each callback for lg_ratelimit_free: a lease being asked for
 * is freed by its answer (orphaned), any other now. */
static void lease_free_unasked(struct lg_table_node *n, void *arg)
{
    (void)arg;
    struct rl_lease *l = LG_CONTAINER_OF(n, struct rl_lease, node);
    if (!l->asking) lease_free(l);
}

void lg_ratelimit_free(struct lg_ratelimit *rl)
{
    if (rl == NULL) return;
    /* Checks still waiting on the store are answered (refused) when their
     * reply or deadline comes; they free themselves then. */
    struct lg_list *n, *next;
    LG_LIST_EACH(n, next, &rl->inflight)
    {
        struct rl_call *c = LG_CONTAINER_OF(n, struct rl_call, link);
        c->rl = NULL;
        lg_list_remove(&c->link);
        if (c->asked == 0) c->lease = NULL; /* a lease being asked for dies with its answer */
    }
    lg_table_each(&rl->leases, lease_free_unasked, NULL);
    while ((n = lg_list_pop_front(&rl->free_waits)) != NULL)
        free(LG_CONTAINER_OF(n, struct rl_wait, link));
    while ((n = lg_list_pop_front(&rl->free_calls)) != NULL)
        free(LG_CONTAINER_OF(n, struct rl_call, link));
    free(rl);
}

static void ratelimit_ask(struct lg_ratelimit *rl, const char *key_id, double rate_per_sec,
                          int burst, bool peek, lg_ratelimit_cb *cb, void *arg);

void lg_ratelimit_check(struct lg_ratelimit *rl, const char *key_id, double rate_per_sec, int burst,
                        lg_ratelimit_cb *cb, void *arg)
{
    ratelimit_ask(rl, key_id, rate_per_sec, burst, false, cb, arg);
}

void lg_ratelimit_peek(struct lg_ratelimit *rl, const char *key_id, double rate_per_sec, int burst,
                       lg_ratelimit_cb *cb, void *arg)
{
    ratelimit_ask(rl, key_id, rate_per_sec, burst, true, cb, arg);
}

static void ratelimit_ask(struct lg_ratelimit *rl, const char *key_id, double rate_per_sec,
                          int burst, bool peek, lg_ratelimit_cb *cb, void *arg)
{
    struct lg_ratelimit_result res;
    double rate = lg_gcra_clamp_rate(rate_per_sec);
    burst = lg_gcra_clamp_burst(burst);
    size_t len = strnlen(key_id, KEY_ID_MAX + 1);
    if (len == 0 || len > KEY_ID_MAX) {
        /* Never happens for an authenticated key; refuse rather than share. */
        lg_gcra_refuse(burst, &res);
        cb(&res, arg);
        return;
    }

    struct rl_lease *l = NULL;
    if (!peek && rl->st != NULL && lg_store_up(rl->st)) {
        int64_t now = lg_mono_ms();
        if ((l = lease_get(rl, key_id, len, now)) != NULL) {
            if (now - l->window_ms >= LEASE_MS) {
                l->seen_last = now - l->window_ms < 2 * LEASE_MS ? l->seen : 0;
                l->seen = 0;
                l->window_ms = now;
            }
            l->seen++;
            l->used_ms = now;
            if (l->tokens > 0 && now < l->expires_ms) {
                lease_spend(l, burst, &res);
                cb(&res, arg);
                return;
            }
            l->tokens = 0; /* lapsed */
            /* Checks of a key that come while another of its checks waits
             * for Redis share one lease request; a key asked one at a time
             * is checked one at a time, exactly as without leases. */
            if (l->asking && wait_push(rl, l, cb, arg) == 0) return;
            if (!l->asking && l->inflight > 0 && burst >= 2 * LEASE_FRACTION &&
                wait_push(rl, l, cb, arg) == 0) {
                if (lease_ask(rl, l, rate, burst, lease_size(l, burst, 1)) == 0) return;
                wait_pop(rl, l, &cb, &arg); /* not sent: decided below */
            }
        }
    }
    struct rl_call *c = call_get(rl);
    if (c != NULL && rl->st != NULL) {
        c->cb = cb;
        c->arg = arg;
        c->rate = rate;
        c->burst = burst;
        c->peek = peek;
        c->key_len = len;
        memcpy(c->key, key_id, len);
        if (script_send(rl, c, key_id, len, peek ? "peek" : NULL, 4, peek ? NULL : l) == 0) {
            c->lease = l;
            if (l != NULL) l->inflight++;
            return;
        }
    }
    if (c != NULL) call_put(c); /* not connected: CB was not called */
    if (peek)
        lg_ratelimit_local_peek(key_id, len, rate, burst, &res);
    else
        lg_ratelimit_local_decide(key_id, len, rate, burst, &res);
    cb(&res, arg);
}

/* Sends the GCRA script for KEY_ID: MODE is "peek", a lease size, or NULL
 * (one check). A single check is formatted once per key into CACHE (when
 * given) and sent as it is from then on. 0, or -1 when the store cannot
 * take it. */
static int script_send(struct lg_ratelimit *rl, struct rl_call *c, const char *key_id, size_t len,
                       const char *mode, size_t mode_len, struct rl_lease *cache)
{
    if (c->rate != rl->rate_last) {
        rl->rate_last = c->rate;
        rl->rate_len = snprintf(rl->rate_s, sizeof(rl->rate_s), "%.17g", c->rate);
    }
    if (c->burst != rl->burst_last) {
        rl->burst_last = c->burst;
        rl->burst_len = snprintf(rl->burst_s, sizeof(rl->burst_s), "%d", c->burst);
    }
    char key[256];
    int klen = snprintf(key, sizeof(key), "%srl:%.*s", lg_store_prefix(rl->st), (int)len, key_id);
    if (klen <= 0 || (size_t)klen >= sizeof(key)) return -1;
    const char *argv[4] = {key, rl->rate_s, rl->burst_s, mode};
    size_t argvlen[4] = {(size_t)klen, (size_t)rl->rate_len, (size_t)rl->burst_len, mode_len};
    int argc = mode != NULL ? 4 : 3;
    if (cache != NULL && mode == NULL) {
        if (cache->cmd == NULL || cache->cmd_rate != c->rate || cache->cmd_burst != c->burst) {
            free(cache->cmd);
            cache->cmd = NULL;
            cache->cmd_len =
                lg_store_script_format(&gcra_script, 1, argc, argv, argvlen, &cache->cmd);
            cache->cmd_rate = c->rate;
            cache->cmd_burst = c->burst;
        }
        if (cache->cmd != NULL && cache->cmd_len > 0)
            return lg_store_script_formatted(rl->st, &gcra_script, cache->cmd,
                                             (size_t)cache->cmd_len, on_reply, c, 1, argc, argv,
                                             argvlen);
    }
    return lg_store_script(rl->st, &gcra_script, on_reply, c, 1, argc, argv, argvlen);
}
