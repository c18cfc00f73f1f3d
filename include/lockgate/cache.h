/* The per-worker caches: verified API keys (by key id) and every facility
 * (by Facility API ID), plus the scope and allowlist decisions made on them.
 * Kept exact by events (worker.c). Pure logic: no I/O, no Redis types; the
 * store's reads (store_read.h) turn Redis replies into these entries. */
#ifndef LG_CACHE_H
#define LG_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "lockgate/cred.h"
#include "lockgate/table.h"

struct lg_config;
struct lg_cache;

#define LG_MAX_CIDRS 32

struct lg_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
};

/* A key as this worker knows it. Reference counted: the cache holds one
 * reference, a request in flight holds another (lg_key_ref/lg_key_unref). */
struct lg_key {
    struct lg_table_node node; /* in the cache's key table */
    int refs;
    char key_id[LG_KEY_LEN + 1];
    char account_id[72];
    bool feed; /* role "feed" */
    bool disabled;
    bool all_facilities;
    int64_t expires_at_ms; /* 0 = never */
    double rate_per_sec;   /* config default applied */
    int burst;
    char verifier[LG_VERIFIER_LEN + 1];
    unsigned char verified[32]; /* SHA-256 of the secret that last verified */
    bool has_verified;
    int64_t last_used_written_ms; /* last_used_at is written at most once a minute */
    /* The identity lines sent upstream with each request, built once. */
    char hdr_account[96]; /* "X-Lockgate-Account: ..." */
    char hdr_key[56];     /* "X-Lockgate-Key: ..." */
    int ncidrs;
    struct lg_cidr cidrs[LG_MAX_CIDRS];
    int nfacilities, scope_cap;
    char (*facilities)[72]; /* sorted, for bsearch */
    /* The answer of GET /v1/facilities for this key, kept while the
     * facility table stays at LIST_VERSION (lg_cache_facilities_version). */
    char *list_body;
    size_t list_len;
    uint64_t list_version;
};

struct lg_facility {
    char id[72];
    char account_id[72];
    char *name;
    bool included;
    struct lg_table_node node; /* in the cache's facility table (a copy: in none) */
};

struct lg_cache *lg_cache_new(void);
void lg_cache_free(struct lg_cache *c);

/* Builds a key from its stored record (schema.h: key:{id}): lg_key_new
 * (the config's rate defaults; the caller owns the one reference returned,
 * NULL on OOM), lg_key_field for each field of the hash (NAME and VALUE,
 * LEN bytes, borrowed; -1 when the field cannot be read, such as an
 * allowlist: the key must then not be used), lg_key_scope_reserve for the
 * N facilities of its scope and lg_key_scope_add for each (an id that does
 * not fit is left out), then lg_key_done: -1 when the record has no valid
 * verifier. */
struct lg_key *lg_key_new(const char *key_id, const struct lg_config *cfg);
int lg_key_field(struct lg_key *k, const char *name, const char *value, size_t len);
int lg_key_scope_reserve(struct lg_key *k, size_t n);
void lg_key_scope_add(struct lg_key *k, const char *id, size_t len);
int lg_key_done(struct lg_key *k);
void lg_key_ref(struct lg_key *k);
void lg_key_unref(struct lg_key *k);

/* Borrowed pointer (take a reference to keep it), or NULL. */
struct lg_key *lg_cache_key_get(struct lg_cache *c, const char *key_id);
/* Stores K, taking the caller's reference; replaces an entry with the same id. */
void lg_cache_key_put(struct lg_cache *c, struct lg_key *k);
/* Both move the key epoch, even when there was nothing to drop. */
void lg_cache_key_drop(struct lg_cache *c, const char *key_id);
void lg_cache_keys_flush(struct lg_cache *c);

/* Moves with every key drop, key flush and lg_cache_set_trust call. A key
 * read from Redis is cached only if the epoch is the same when the reply
 * comes as when the read was sent: the event that dropped the key comes on
 * the pub/sub connection and may overtake the reply. */
uint64_t lg_cache_key_epoch(const struct lg_cache *c);

/* How far the cache may answer on its own (SPEC section 10). The worker sets
 * it on the edges of its two Redis connections; LG_CACHE_NONE at first. */
enum lg_cache_trust {
    /* Nothing cached answers: keys and facility decisions are read from
     * Redis per request, and a failed read is refused. */
    LG_CACHE_NONE,
    /* Redis is unreachable as a whole (no revocation can be written): what
     * was verified while subscribed answers, only while Redis stays so. */
    LG_CACHE_FALLBACK,
    /* The events subscription is confirmed and live: the cache answers. */
    LG_CACHE_EXACT
};

/* Every call moves the key epoch and the facilities epoch. Keys read from
 * Redis are cached only while LG_CACHE_EXACT. */
void lg_cache_set_trust(struct lg_cache *c, enum lg_cache_trust trust);
enum lg_cache_trust lg_cache_trust(const struct lg_cache *c);
/* True when cached keys and facilities answer now: LG_CACHE_EXACT, or
 * LG_CACHE_FALLBACK while the command connection is down (REDIS_UP false). */
bool lg_cache_answers(const struct lg_cache *c, bool redis_up);

/* Moves with every lg_cache_set_trust call. A facility read (the whole table
 * or one facility) is applied only if the epoch is the same when its reply
 * comes as when it was sent: a read sent before the subscription's last edge
 * may predate a change that no event announced. */
uint64_t lg_cache_facilities_epoch(const struct lg_cache *c);

/* The facility table holds a complete load. False at first; the worker sets
 * it after each full load and clears it when the subscription comes up. */
void lg_cache_set_facilities_loaded(struct lg_cache *c, bool loaded);
bool lg_cache_facilities_loaded(const struct lg_cache *c);

/* Borrowed, valid until the next facility change on this worker. */
const struct lg_facility *lg_cache_facility_get(struct lg_cache *c, const char *id);
/* Inserts or replaces. 0 or -1. */
int lg_cache_facility_put(struct lg_cache *c, const char *id, const char *account_id,
                          const char *name, bool included);
void lg_cache_facility_drop(struct lg_cache *c, const char *id);
/* A number that changes whenever a facility is put, dropped or flushed:
 * anything derived from the facility table is current while it stays. */
uint64_t lg_cache_facilities_version(const struct lg_cache *c);
void lg_cache_facilities_flush(struct lg_cache *c);
int lg_cache_facility_count(const struct lg_cache *c);
/* The facilities of ACCOUNT_ID, in no particular order: *OUT (borrowed,
 * valid until the next facility change on this worker) and their count. */
size_t lg_cache_account_facilities(struct lg_cache *c, const char *account_id,
                                   const struct lg_facility *const **out);

/* The one parser of a facility's stored fields (schema.h: fac:{fac}) for
 * every reader (the gateway's table and its per-request reads, the admin
 * API, the feed), with one set of defaults. A field is NULL when absent:
 * without account_id there is no such facility; a missing name is ""; a
 * missing included flag means included (as the facility was created);
 * otherwise only "1" is included. ID and the fields are borrowed, and OUT's
 * name points at NAME (or a static ""). 1: the facility is in *OUT; 0: there
 * is none (*OUT still holds the defaults, account_id ""); -1: an id does not
 * fit in OUT. */
int lg_facility_parse(struct lg_facility *out, const char *id, const char *account_id,
                      const char *name, const char *included);
/* A facility's included flag as every reader reads it: absent (NULL) it is
 * LG_FACILITY_INCLUDED_ABSENT, and only "1" is included. Scripts that read
 * the flag in Redis put the same constant in place of a missing one. */
#define LG_FACILITY_INCLUDED_ABSENT "1"
bool lg_facility_included(const char *included);

/* Authorization: may K see facility F? Same account, included, and in scope
 * (all facilities, or F is in the key's list). F may be NULL (unknown). */
bool lg_key_sees(const struct lg_key *k, const struct lg_facility *f);
/* True when K has no allowlist or IP (text) is inside one of its CIDRs. */
bool lg_key_ip_allowed(const struct lg_key *k, const char *ip);
/* Parses "a.b.c.d/n", "v6/n" or a bare address. 0 or -1. */
int lg_cidr_parse(const char *s, struct lg_cidr *out);

#endif
