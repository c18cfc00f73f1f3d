/* SIGHUP (reload.h): read and check the file again, load what can fail
 * (certificate, key, admin token) before anything changes, then hand what
 * can change at run time to the main thread's users and to each worker. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lockgate/admin.h"
#include "lockgate/auth.h"
#include "lockgate/config.h"
#include "lockgate/log.h"
#include "lockgate/reload.h"
#include "lockgate/secrets.h"
#include "lockgate/tls.h"
#include "lockgate/worker.h"

static void on_kept(const char *section, const char *name, void *arg)
{
    lg_warn("reload: [%s] %s changed in %s, but it cannot change while lockgate runs: the "
            "running value stays until a restart",
            section, name, (const char *)arg);
}

static int refuse(const struct lg_reload *r, const char *why)
{
    lg_error("reload: %s refused, the running configuration stays: %s", r->path, why);
    return -1;
}

int lg_reload(const struct lg_reload *r)
{
    char err[1024];
    struct lg_config *next = malloc(sizeof(*next));
    struct lg_secrets *token = calloc(1, sizeof(*token));
    int rc = -1;
    if (next == NULL || token == NULL) {
        refuse(r, "out of memory");
        goto out;
    }
    lg_info("reload: reading %s (SIGHUP)", r->path);
    lg_config_defaults(next);
    if (lg_config_load(next, r->path, err, sizeof(err)) < 0) {
        refuse(r, err); /* "FILE:LINE: reason", as lockgate -t says it */
        goto out;
    }
    if (lg_config_check(next, err, sizeof(err)) < 0) {
        refuse(r, err);
        goto out;
    }
    /* What can fail is loaded first; the certificate swap is the last of it. */
    if (lg_secrets_reload_token(next, token, err, sizeof(err)) < 0) {
        refuse(r, err);
        goto out;
    }
    if (r->tls != NULL && lg_tls_reload(r->tls, next) < 0) {
        refuse(r, "the [tls] certificate or key cannot be loaded (see the line above)");
        goto out;
    }
    memcpy(r->secrets->admin_token, token->admin_token, sizeof(token->admin_token));
    r->secrets->admin_token_len = token->admin_token_len;

    int changed = lg_config_reload(r->cfg, next, on_kept, (void *)r->path);
    enum lg_log_level level;
    if (lg_log_level_parse(r->cfg->log_level, &level) == 0) lg_log_set_level(level);
    lg_auth_throttle_init(r->cfg->auth_failures_per_min);
    lg_admin_set_access_log(r->admin, strcmp(r->cfg->access_log, "on") == 0);
    for (int i = 0; i < r->nworkers; i++)
        if (lg_worker_reload(r->workers[i], r->cfg) < 0)
            lg_error("reload: worker %d keeps its configuration (out of memory)", i);
    lg_info("reload: %s applied: %s, admin token, %d option(s) changed", r->path,
            r->tls != NULL ? "TLS certificate and key" : "no TLS listener", changed);
    rc = 0;
out:
    if (token != NULL) lg_secrets_wipe(token);
    free(token);
    free(next);
    return rc;
}
