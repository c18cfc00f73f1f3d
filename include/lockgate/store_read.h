/* The store's reads of keys and facilities, and the turning of their Redis
 * replies into cache entries (cache.h), so that the worker (its table) and
 * the pipeline (a request that may not trust the table) read and parse them
 * alike. The only place where a key's or a facility's reply is parsed. */
#ifndef LG_STORE_READ_H
#define LG_STORE_READ_H

#include <hiredis/hiredis.h>

#include "lockgate/cache.h"
#include "lockgate/store.h"

struct lg_config;

/* Reads every facility whose id is in the Redis set SET (the deployment's
 * {prefix}facilities, or an account's {prefix}acct:{id}:facilities) in one
 * script; CB gets its answer under lg_store_script's contract. 0 or -1. */
int lg_store_read_facilities(struct lg_store *st, const char *set, lg_store_cb *cb, void *arg);
/* Reads facility ID (HMGET); CB under lg_store_argv's contract. 0 or -1. */
int lg_store_read_facility(struct lg_store *st, const char *id, lg_store_cb *cb, void *arg);

/* Calls FN for each facility in REPLY, an answer of lg_store_read_facilities
 * (F and what it points to are borrowed for the call). -1, calling nothing,
 * when REPLY (may be NULL) is not such an answer. */
typedef void lg_facility_fn(const struct lg_facility *f, void *arg);
int lg_store_facilities_each(const redisReply *reply, lg_facility_fn *fn, void *arg);
/* Replaces C's whole facility table by REPLY, an answer of
 * lg_store_read_facilities. -1, with the table untouched, when REPLY
 * (borrowed, may be NULL) is not one. */
int lg_store_facilities_into(struct lg_cache *c, const redisReply *reply);
/* Facility ID from the three replies at E, account_id, name and included
 * (each a string, or nil when the hash lacks it), as every read of a
 * facility gives them, into *OUT (its name borrowed from E): as
 * lg_facility_parse. */
int lg_store_facility_from(const char *id, redisReply *const *e, struct lg_facility *out);
/* Reads facility ID from REPLY, an answer of lg_store_read_facility, into
 * *OUT (its name borrowed from REPLY). 1: it exists; 0: it does not; -1: the
 * read failed (REPLY NULL, an error, or not such an answer). */
int lg_store_facility_from_reply(const char *id, const redisReply *reply, struct lg_facility *out);

/* Builds key KEY_ID from its HGETALL flat array HASH and the SMEMBERS array
 * MEMBERS of its scope (both borrowed; MEMBERS may be NULL). NULL when the
 * key does not exist or is malformed. The caller owns the one reference. */
struct lg_key *lg_store_key_from_reply(const char *key_id, const redisReply *hash,
                                       const redisReply *members, const struct lg_config *cfg);

#endif
