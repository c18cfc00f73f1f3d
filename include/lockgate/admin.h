/* The admin API (SPEC section 7): accounts, facilities, keys, feed keys,
 * lock-change announcements, audit, health, readiness and metrics, on the
 * [admin] listener of the main event loop. Every write is one Lua script:
 * validation, the change and its event commit together or not at all. */
#ifndef LG_ADMIN_H
#define LG_ADMIN_H

#include <stdbool.h>

struct event_base;
struct lg_config;
struct lg_secrets;
struct lg_store;
struct lg_admin;
struct lg_tls;

/* Listens on cfg->admin_listen, with TLS when TLS is non-NULL. CFG, SECRETS,
 * STORE and TLS are borrowed and must outlive the admin. Returns NULL with a
 * log line on error. */
struct lg_admin *lg_admin_new(struct event_base *base, const struct lg_config *cfg,
                              const struct lg_secrets *secrets, struct lg_store *store,
                              struct lg_tls *tls);
void lg_admin_free(struct lg_admin *admin);
/* The gateway is stopping: /readyz answers 503 "draining" from now on. */
void lg_admin_set_draining(struct lg_admin *admin);
/* [server] access_log changed (SIGHUP): the admin listener's lines too. */
void lg_admin_set_access_log(struct lg_admin *admin, bool on);

#endif
