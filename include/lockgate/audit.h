/* The audit trail of unlock-code reads, written by the data plane into the
 * same Redis stream as the admin API's actions. */
#ifndef LG_AUDIT_H
#define LG_AUDIT_H

#include <stdbool.h>

#include "lockgate/store.h"

struct lg_config;

struct lg_audit_entry {
    const char *action; /* "unlock_code.read" */
    const char *account_id;
    const char *key_id;
    const char *facility_id;
    const char *unit_id;
    const char *client_ip;
    const char *request_id;
    const char *outcome; /* "served", "withheld", "not_found", ... */
};

/* Appends E to {prefix}audit (MAXLEN ~ cfg->audit_maxlen), pipelined, without
 * waiting: for what is recorded after the fact. When Redis cannot take it,
 * the entry goes to the log instead so that no read goes unrecorded (also
 * when ST is NULL: the gateway is stopping). Strings are copied. */
void lg_audit_write(struct lg_store *st, const struct lg_config *cfg,
                    const struct lg_audit_entry *e);

/* Appends E like lg_audit_write, for an entry that must be stored before
 * what it records may happen: CB gets the XADD's reply (lg_audit_stored
 * tells whether Redis acknowledged it) or NULL past [redis] timeout_ms,
 * under lg_store_argv's contract. Returns -1, with nothing logged and CB not
 * called, when the entry cannot be sent (Redis down, ST NULL). Strings are
 * copied. */
int lg_audit_store(struct lg_store *st, const struct lg_config *cfg, const struct lg_audit_entry *e,
                   lg_store_cb *cb, void *arg);
/* True when REPLY (borrowed, may be NULL) acknowledges a stored entry. */
bool lg_audit_stored(const redisReply *reply);

#endif
