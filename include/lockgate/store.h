/* The Redis connection of one event loop (hiredis async on libevent):
 * reconnect with backoff, a deadline on every command, scripts by EVALSHA with
 * an EVAL fallback, and an optional pub/sub mode on a connection of its own. */
#ifndef LG_STORE_H
#define LG_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

struct event_base;
struct lg_config;
struct lg_store;

/* Called once per command with its reply, or with REPLY NULL when the command
 * failed: not connected, disconnected, or past the deadline (timeout_ms).
 * REPLY is borrowed: it is freed when the callback returns. A REDIS_REPLY_ERROR
 * reply is passed through. */
typedef void lg_store_cb(struct lg_store *st, redisReply *reply, void *arg);

/* Called after every (re)connect (UP true) and every loss of the connection
 * (UP false). Caches must be flushed on both. */
typedef void lg_store_state_cb(struct lg_store *st, bool up, void *arg);

/* Called for every message on a subscribed channel. CHANNEL and MSG are borrowed. */
typedef void lg_store_message_cb(struct lg_store *st, const char *channel, const char *msg,
                                 size_t len, void *arg);

#define LG_STORE_MAX_CHANNELS 4

/* A Lua script known by its SHA1. Define them static and pass to lg_store_script. */
struct lg_script {
    const char *name;   /* for logs */
    const char *source; /* Lua text */
    char sha[41];       /* filled on first use, by whichever worker comes first */
    _Atomic int ready;  /* sha is filled (release/acquire) */
};

/* New connection for BASE, connecting at once and reconnecting forever with
 * backoff (50 ms doubling to 2 s). Returns NULL on allocation failure only. */
struct lg_store *lg_store_new(struct event_base *base, const struct lg_config *cfg);
/* Frees the connection; pending callbacks run with a NULL reply first. */
void lg_store_free(struct lg_store *st);

void lg_store_on_state(struct lg_store *st, lg_store_state_cb *cb, void *arg);
bool lg_store_up(const struct lg_store *st);
/* How often the primary moved under this connection ([redis] sentinels:
 * a Sentinel named another address, or announced +switch-master). */
uint64_t lg_store_failovers(const struct lg_store *st);
/* The configured key prefix, e.g. "lg:". */
const char *lg_store_prefix(const struct lg_store *st);

/* Sends one command. ARGV strings are borrowed until the call returns (hiredis
 * copies them). Always use this for anything that came from a user.
 * Returns 0 when queued; -1 when not connected (CB is then NOT called). */
int lg_store_argv(struct lg_store *st, lg_store_cb *cb, void *arg, int argc, const char **argv,
                  const size_t *argvlen);
/* EVALSHA SCRIPT with NKEYS keys then the rest as arguments (ARGV are
 * KEYS then ARGS, as for EVALSHA); on NOSCRIPT resends it as EVAL.
 * Same return and callback contract as lg_store_argv. */
int lg_store_script(struct lg_store *st, struct lg_script *script, lg_store_cb *cb, void *arg,
                    int nkeys, int argc, const char **argv, const size_t *argvlen);
/* The same call formatted once, for one sent again and again: *CMD gets the
 * whole EVALSHA command in Redis's wire form (malloc'd, the caller frees
 * it); returns its length, or -1. */
int lg_store_script_format(struct lg_script *script, int nkeys, int argc, const char **argv,
                           const size_t *argvlen, char **cmd);
/* Sends CMD (from lg_store_script_format, borrowed: copied here); the
 * arguments it was made from are still given, for a NOSCRIPT resend as EVAL.
 * Same contract as lg_store_script. */
int lg_store_script_formatted(struct lg_store *st, struct lg_script *script, const char *cmd,
                              size_t len, lg_store_cb *cb, void *arg, int nkeys, int argc,
                              const char **argv, const size_t *argvlen);

/* Turns this connection into a subscriber of CHANNELS (N of them, restored
 * after each reconnect). It reports "up" (lg_store_on_state) only once Redis
 * has confirmed every channel, and "down" when the connection is lost. A
 * subscribed store accepts no other commands. 0 or -1. */
int lg_store_subscribe(struct lg_store *st, const char *const *channels, int n,
                       lg_store_message_cb *cb, void *arg);

/* Drops the connection now (it reconnects with backoff; users hear "down").
 * For a subscriber whose messages stopped arriving. Not from inside a store
 * callback. */
void lg_store_reset(struct lg_store *st, const char *why);

#endif
