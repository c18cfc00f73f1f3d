/* Loads the pepper, master key and admin token named in the config. */
#include <stdio.h>
#include <string.h>

#include "lockgate/config.h"
#include "lockgate/secrets.h"

int lg_secrets_load(const struct lg_config *cfg, struct lg_secrets *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (lg_secret_file_load(cfg->pepper_file, 32, false, s->pepper, sizeof(s->pepper),
                            &s->pepper_len, err, errlen) < 0)
        return -1;
    if (s->pepper_len < 16) {
        snprintf(err, errlen, "%s: pepper must be at least 16 bytes", cfg->pepper_file);
        return -1;
    }
    size_t mlen = 0;
    if (lg_secret_file_load(cfg->master_key_file, LG_SECRET_KEY_BYTES, false, s->master,
                            sizeof(s->master), &mlen, err, errlen) < 0)
        return -1;
    if (mlen != LG_SECRET_KEY_BYTES) {
        snprintf(err, errlen, "%s: master key must be exactly %d bytes", cfg->master_key_file,
                 LG_SECRET_KEY_BYTES);
        return -1;
    }
    if (lg_secret_file_load(cfg->admin_token_file, 24, true, (unsigned char *)s->admin_token,
                            sizeof(s->admin_token) - 1, &s->admin_token_len, err, errlen) < 0)
        return -1;
    s->admin_token[s->admin_token_len] = '\0';
    if (s->admin_token_len < 16) {
        snprintf(err, errlen, "%s: admin token must be at least 16 characters",
                 cfg->admin_token_file);
        return -1;
    }
    return 0;
}
