/* The secrets lockgate holds in memory: pepper, master key and admin token,
 * loaded (and created on first start) from the files named in [secrets] and
 * [admin]. Read-only after start; shared by every thread. */
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

#endif
