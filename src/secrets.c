/* Loads the pepper, master key and admin token named in the config. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "lockgate/config.h"
#include "lockgate/secrets.h"

/* A first start may find no folder for its secret files yet: make it, private. */
static int ensure_folder(const char *path, char *err, size_t errlen)
{
    char copy[LG_PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create folder: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* A password from FILE ("" = none) into OUT (256 bytes). Read-only: a
 * missing password file is an error, never invented. */
static int password_load(const char *file, char *out, char *err, size_t errlen)
{
    if (file[0] == '\0') return 0;
    unsigned char pw[256];
    size_t pwlen = 0;
    if (lg_secret_file_load(file, 0, true, pw, sizeof(pw) - 1, &pwlen, err, errlen) < 0) return -1;
    memcpy(out, pw, pwlen);
    out[pwlen] = '\0';
    OPENSSL_cleanse(pw, sizeof(pw));
    return 0;
}

int lg_secrets_load(struct lg_config *cfg, struct lg_secrets *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (ensure_folder(cfg->pepper_file, err, errlen) < 0 ||
        ensure_folder(cfg->master_key_file, err, errlen) < 0 ||
        ensure_folder(cfg->admin_token_file, err, errlen) < 0)
        return -1;
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
    if (password_load(cfg->redis_password_file, cfg->redis_password, err, errlen) < 0 ||
        password_load(cfg->redis_sentinel_password_file, cfg->redis_sentinel_password, err,
                      errlen) < 0)
        return -1;
    if (s->admin_token_len < 16) {
        snprintf(err, errlen, "%s: admin token must be at least 16 characters",
                 cfg->admin_token_file);
        return -1;
    }
    return 0;
}
