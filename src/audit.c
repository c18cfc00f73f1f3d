/* Audit of unlock-code reads: one XADD per read. A served code waits for
 * its entry's acknowledgement (write-ahead); every other outcome is
 * recorded after the fact, never waited on, and the log keeps what Redis
 * could not. */
#include <stdio.h>
#include <string.h>

#include "lockgate/audit.h"
#include "lockgate/config.h"
#include "lockgate/log.h"
#include "lockgate/metrics.h"
#include "lockgate/store.h"
#include "lockgate/util.h"

static void log_entry(const struct lg_audit_entry *e, const char *at, const char *why)
{
    lg_warn("audit (%s): at=%s action=%s account=%s key=%s facility=%s unit=%s ip=%s "
            "request_id=%s outcome=%s",
            why, at, e->action, e->account_id, e->key_id, e->facility_id, e->unit_id, e->client_ip,
            e->request_id, e->outcome);
}

static void on_written(struct lg_store *st, redisReply *reply, void *arg)
{
    if (lg_audit_stored(reply)) return;
    lg_metrics_audit_failure(false);
    lg_warn("audit: an entry may not have been stored in Redis (%s)",
            reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply in time");
}

/* Sends E's XADD (AT, LG_TIME_LEN bytes, receives its time). 0 or -1 as
 * lg_store_argv. */
static int send_entry(struct lg_store *st, const struct lg_config *cfg,
                      const struct lg_audit_entry *e, char *at, lg_store_cb *cb, void *arg)
{
    char key[96], maxlen[24];
    snprintf(key, sizeof(key), "%saudit", lg_store_prefix(st));
    snprintf(maxlen, sizeof(maxlen), "%d", cfg->audit_maxlen);
    lg_time_format(lg_now_ms(), at);
    const char *argv[] = {"XADD",        key,
                          "MAXLEN",      "~",
                          maxlen,        "*",
                          "action",      e->action,
                          "account_id",  e->account_id,
                          "key_id",      e->key_id,
                          "facility_id", e->facility_id,
                          "unit_id",     e->unit_id,
                          "client_ip",   e->client_ip,
                          "request_id",  e->request_id,
                          "outcome",     e->outcome,
                          "at",          at};
    return lg_store_argv(st, cb, arg, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

void lg_audit_write(struct lg_store *st, const struct lg_config *cfg,
                    const struct lg_audit_entry *e)
{
    char at[LG_TIME_LEN];
    if (st == NULL) { /* the gateway is stopping: the log keeps the entry */
        lg_metrics_audit_failure(false);
        lg_time_format(lg_now_ms(), at);
        log_entry(e, at, "gateway stopping");
        return;
    }
    if (send_entry(st, cfg, e, at, on_written, NULL) < 0) {
        lg_metrics_audit_failure(false);
        log_entry(e, at, "redis unavailable");
    }
}

int lg_audit_store(struct lg_store *st, const struct lg_config *cfg, const struct lg_audit_entry *e,
                   lg_store_cb *cb, void *arg)
{
    char at[LG_TIME_LEN];
    if (st == NULL) return -1;
    return send_entry(st, cfg, e, at, cb, arg);
}

bool lg_audit_stored(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_STRING; /* the new entry's id */
}
