/* Loads the pepper, master key and admin token named in the config, the
 * token again on SIGHUP, and wipes them all at exit. */
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

/* The admin token of CFG into TOKEN/LEN (sizeof(s->admin_token) bytes). */
static int load_token(const struct lg_config *cfg, char *token, size_t *len, char *err,
                      size_t errlen)
{
    if (lg_secret_file_load(cfg->admin_token_file, 24, true, (unsigned char *)token,
                            sizeof(((struct lg_secrets *)0)->admin_token) - 1, len, err,
                            errlen) < 0)
        return -1;
    token[*len] = '\0';
    if (*len < 16) {
        snprintf(err, errlen, "%s: admin token must be at least 16 characters",
                 cfg->admin_token_file);
        return -1;
    }
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
    if (load_token(cfg, s->admin_token, &s->admin_token_len, err, errlen) < 0) return -1;
    if (cfg->redis_password_file[0] != '\0') {
        /* Read-only: a missing Redis password is an error, never invented. */
        unsigned char pw[sizeof(cfg->redis_password)];
        size_t pwlen = 0;
        if (lg_secret_file_load(cfg->redis_password_file, 0, true, pw, sizeof(pw) - 1, &pwlen, err,
                                errlen) < 0)
            return -1;
        memcpy(cfg->redis_password, pw, pwlen);
        cfg->redis_password[pwlen] = '\0';
        OPENSSL_cleanse(pw, sizeof(pw));
    }
    return 0;
}

int lg_secrets_reload_token(const struct lg_config *cfg, struct lg_secrets *s, char *err,
                            size_t errlen)
{
    char token[sizeof(s->admin_token)];
    size_t len = 0;
    int rc = load_token(cfg, token, &len, err, errlen);
    if (rc == 0) {
        memcpy(s->admin_token, token, len + 1);
        s->admin_token_len = len;
    }
    OPENSSL_cleanse(token, sizeof(token));
    return rc;
}

void lg_secrets_wipe(struct lg_secrets *s) { OPENSSL_cleanse(s, sizeof(*s)); }
