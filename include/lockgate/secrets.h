/* The secrets lockgate holds in memory: pepper, master key and admin token,
 * loaded (and created on first start) from the files named in [secrets] and
 * [admin]. The pepper and master key are read-only after start and shared
 * by every thread; the admin token is read only by the admin API, on the
 * main thread, which also reloads it on SIGHUP. */
#ifndef LG_SECRETS_H
#define LG_SECRETS_H

#include <stddef.h>

#include "lockgate/cred.h"

struct lg_config;

struct lg_secrets {
    unsigned char pepper[64];
    size_t pepper_len;
    unsigned char master[LG_SECRET_KEY_BYTES];
    char admin_token[256]; /* NUL-terminated, whitespace stripped */
    size_t admin_token_len;
};

/* Loads (creating when missing, mode 0600) every secret file. 0, or -1 with ERR. */
/* Also reads [redis] password_file into CFG->redis_password. */
int lg_secrets_load(struct lg_config *cfg, struct lg_secrets *s, char *err, size_t errlen);
/* Reads [admin] token_file of CFG again into S (SIGHUP). 0, or -1 with ERR
 * and S unchanged. Main thread only. */
int lg_secrets_reload_token(const struct lg_config *cfg, struct lg_secrets *s, char *err,
                            size_t errlen);
/* Overwrites every secret in S with zeros (at exit). */
void lg_secrets_wipe(struct lg_secrets *s);

#endif
