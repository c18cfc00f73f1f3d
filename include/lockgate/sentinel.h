/* Redis Sentinel, on hiredis's async API (hiredis 0.14 has no Sentinel
 * support): which server is the primary now, and when it moves. */
#ifndef LG_SENTINEL_H
#define LG_SENTINEL_H

struct event_base;
struct lg_config;
struct lg_sentinel;

/* The answer to lg_sentinel_ask: the primary's address (HOST borrowed for
 * the call), or HOST NULL when no Sentinel answered with one. */
typedef void lg_sentinel_addr_cb(const char *host, int port, void *arg);

/* A Sentinel announced +switch-master for our master: the new primary. HOST
 * is borrowed for the call. Called from a timer, never inside hiredis. */
typedef void lg_sentinel_switch_cb(const char *host, int port, void *arg);

/* The Sentinels of CFG ([redis] sentinels, master_name, the Sentinel
 * password), for one event loop. Subscribes at once to +switch-master on one
 * of them (moving to the next one, with backoff, whenever that connection is
 * lost) and calls ON_SWITCH for each switch of our master. CFG is borrowed
 * for the call only. NULL on allocation failure. */
struct lg_sentinel *lg_sentinel_new(struct event_base *base, const struct lg_config *cfg,
                                    lg_sentinel_switch_cb *on_switch, void *arg);
/* Frees S; a question in flight is dropped without its callback. */
void lg_sentinel_free(struct lg_sentinel *s);

/* Asks the Sentinels in turn (the last one that answered first), each
 * bounded in time, SENTINEL get-master-addr-by-name; CB hears the first
 * address, or NULL when none answered. One question at a time: -1 when one
 * is already in flight (CB not called), else 0. CB may call lg_sentinel_ask. */
int lg_sentinel_ask(struct lg_sentinel *s, lg_sentinel_addr_cb *cb, void *arg);

#endif
