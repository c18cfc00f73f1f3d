/* The audit trail of unlock-code reads, written by the data plane into the
 * same Redis stream as the admin API's actions. */
#ifndef LG_AUDIT_H
#define LG_AUDIT_H

struct lg_config;
struct lg_store;

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
 * waiting. When Redis cannot take it, the entry goes to the log instead so
 * that no read goes unrecorded (also when ST is NULL: the gateway is
 * stopping). Strings are copied. */
void lg_audit_write(struct lg_store *st, const struct lg_config *cfg,
                    const struct lg_audit_entry *e);

#endif
