/* A command's arguments copied into buffers of one's own, reused from one
 * command to the next (a pooled Redis command keeps its script's arguments
 * for a NOSCRIPT resend). They can be a key's verifier and sealed secret, so
 * the copies are wiped when released, not left for the next user. */
#ifndef LG_ARGS_H
#define LG_ARGS_H

#include <stddef.h>

struct lg_args {
    const char **argv; /* HEAD free slots for the caller, then the copies */
    size_t *argvlen;
    int argc;  /* copies held */
    char *buf; /* the copied bytes, end to end */
    size_t used, buf_cap;
    int argv_cap;
};

/* Copies ARGC arguments (ARGVLEN NULL: NUL-terminated strings) into A, as
 * A->argv[HEAD + i] / A->argvlen[HEAD + i]; the first HEAD slots are the
 * caller's to fill. The buffers grow as needed and are kept. 0, or -1 when
 * out of memory (A is then unchanged but for grown buffers). */
int lg_args_keep(struct lg_args *a, int head, int argc, const char **argv, const size_t *argvlen);
/* Wipes the copied bytes (OPENSSL_cleanse) and forgets them; the buffers
 * stay for the next lg_args_keep. */
void lg_args_release(struct lg_args *a);
/* Releases A and frees its buffers; A is then empty (all zero). */
void lg_args_free(struct lg_args *a);

#endif
