/* A command's arguments, copied into reusable buffers that are wiped when
 * the command is done with them (args.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lockgate/args.h"

int lg_args_keep(struct lg_args *a, int head, int argc, const char **argv, const size_t *argvlen)
{
    lg_args_release(a);
    size_t total = 0;
    for (int i = 0; i < argc; i++) total += argvlen ? argvlen[i] : strlen(argv[i]);
    if (a->argv_cap < head + argc) {
        int cap = head + argc < 16 ? 16 : head + argc;
        const char **nv = realloc(a->argv, (size_t)cap * sizeof(*nv));
        if (nv == NULL) return -1;
        a->argv = nv;
        size_t *nl = realloc(a->argvlen, (size_t)cap * sizeof(*nl));
        if (nl == NULL) return -1;
        a->argvlen = nl;
        a->argv_cap = cap;
    }
    if (a->buf_cap < total + 1) {
        /* not realloc: the old buffer is wiped before it goes back */
        char *nb = malloc(total + 1);
        if (nb == NULL) return -1;
        if (a->buf != NULL) OPENSSL_cleanse(a->buf, a->buf_cap);
        free(a->buf);
        a->buf = nb;
        a->buf_cap = total + 1;
    }
    size_t off = 0;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(a->buf + off, argv[i], len);
        a->argv[head + i] = a->buf + off;
        a->argvlen[head + i] = len;
        off += len;
    }
    a->used = off;
    a->argc = argc;
    return 0;
}

void lg_args_release(struct lg_args *a)
{
    if (a->buf != NULL && a->used > 0) OPENSSL_cleanse(a->buf, a->used);
    a->used = 0;
    a->argc = 0;
}

void lg_args_free(struct lg_args *a)
{
    lg_args_release(a);
    free(a->buf);
    free(a->argv);
    free(a->argvlen);
    memset(a, 0, sizeof(*a));
}
