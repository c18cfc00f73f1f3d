/* Fuzz target: raw bytes through the server's request parsing and framing
 * (http_parse.c), fed the way the server feeds it: into one buffer, in
 * pieces, one request at a time, the bytes after a request moved to the
 * front for the next. The first input byte picks the piece size. Checked:
 * what a request hands on is well formed, and cutting the same bytes into
 * other pieces never changes a decision. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockgate/http_parse.h"

#define MAX_HEAD 1024
#define MAX_BODY 2048
#define MAX_REQS 16

struct outcome {
    int n;
    int status[MAX_REQS]; /* 0: a request; else the error status */
    unsigned long path_hash[MAX_REQS];
    size_t body_len[MAX_REQS];
};

static unsigned long hash(const char *s)
{
    unsigned long h = 5381;
    while (s != NULL && *s) h = h * 33 + (unsigned char)*s++;
    return h;
}

static void check_request(const struct lg_http_parse *ps)
{
    if (ps->path == NULL || (ps->path[0] != '/' && ps->path[0] != '*')) abort();
    if (ps->minor != 0 && ps->minor != 1) abort();
    if (ps->body_len > MAX_BODY) abort();
    for (unsigned i = 0; i < ps->nfields; i++) {
        const struct lg_http_field *f = &ps->fields[i];
        if (strlen(f->name) != f->name_len || strlen(f->value) != f->value_len) abort();
        for (uint32_t j = 0; j < f->value_len; j++) {
            unsigned char ch = (unsigned char)f->value[j];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) abort(); /* no control byte */
        }
        if (strpbrk(f->name, " \t:\r\n") != NULL) abort();
    }
    if (ps->minor == 1 && ps->known[LG_HDR_HOST] == NULL) abort();
}

static void run(const uint8_t *data, size_t size, size_t piece, struct outcome *out)
{
    struct lg_http_parse ps;
    lg_http_parse_init(&ps, MAX_HEAD, MAX_BODY);
    char *buf = malloc(MAX_HEAD + 4096);
    size_t cap = MAX_HEAD + 4096, len = 0, parsed = 0, next = 0;
    out->n = 0;
    while (buf != NULL && out->n < MAX_REQS) {
        if (parsed == len) { /* read: at most PIECE bytes at a time */
            if (next == size || len == cap) break;
            size_t n = size - next;
            if (n > piece) n = piece;
            if (n > cap - len) n = cap - len;
            memcpy(buf + len, data + next, n);
            next += n;
            len += n;
        }
        enum lg_http_parse_state before = ps.state;
        size_t used = lg_http_parse_feed(&ps, buf + parsed, len - parsed);
        if (before == LG_PARSE_BODY) {
            memmove(buf + parsed, buf + parsed + used, len - parsed - used);
            len -= used;
        } else {
            parsed += used;
        }
        if (ps.state == LG_PARSE_ERROR) {
            if (ps.error_status < 400 || ps.error_status > 505 || ps.error_msg == NULL) abort();
            out->status[out->n++] = ps.error_status;
            break;
        }
        if (ps.state == LG_PARSE_DONE) {
            check_request(&ps);
            out->status[out->n] = 0;
            out->path_hash[out->n] = hash(ps.path) ^ (hash(ps.query) << 1);
            out->body_len[out->n++] = ps.body_len;
            if (!ps.keep_alive) break;
            lg_http_parse_reset(&ps);
            memmove(buf, buf + parsed, len - parsed);
            len -= parsed;
            parsed = 0;
        }
    }
    free(buf);
    lg_http_parse_free(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t piece = (size_t)data[0] % 64 + 1;
    struct outcome whole, cut;
    run(data + 1, size - 1, 1u << 20, &whole);
    run(data + 1, size - 1, piece, &cut);
    /* A decision made on the whole input is made on its pieces too (a read
     * of the whole can only stop earlier, at the buffer's end). Which of two
     * faults of one request is named first may differ: http_parser reports
     * a name when it ends or when the piece does. */
    int n = whole.n < cut.n ? whole.n : cut.n;
    for (int i = 0; i < n; i++)
        if ((whole.status[i] == 0) != (cut.status[i] == 0) ||
            (whole.status[i] == 0 &&
             (whole.path_hash[i] != cut.path_hash[i] || whole.body_len[i] != cut.body_len[i])))
            abort();
    return 0;
}
