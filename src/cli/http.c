/* The one way lockgate-admin talks to the admin API: a blocking libcurl easy
 * transfer with the bearer token, bounded answers, and uniform error output.
 * Also reads the token, which is never printed and never put on a command line. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"

#define TOKEN_MAX 4096
/* Lists of a few thousand keys fit easily; anything beyond is not our server. */
#define ANSWER_MAX (32u * 1024 * 1024)

struct answer_buf {
    char *p;
    size_t len, cap;
    int too_big;
    int oom;
};

void lg_cli_ctx_clear(struct lg_cli_ctx *ctx)
{
    if (ctx->token) {
        explicit_bzero(ctx->token, strlen(ctx->token));
        free(ctx->token);
        ctx->token = NULL;
    }
    free(ctx->base);
    ctx->base = NULL;
}

/* Strips surrounding whitespace from BUF (LEN bytes) into a new string and
 * checks that what remains can go into a header: printable ASCII, no blanks. */
static int token_take(struct lg_cli_ctx *ctx, const char *buf, size_t len, const char *from)
{
    size_t a = 0, b = len;

    while (a < b && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r' || buf[a] == '\n' ||
                     buf[a] == '\v' || buf[a] == '\f'))
        a++;
    while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r' ||
                     buf[b - 1] == '\n' || buf[b - 1] == '\v' || buf[b - 1] == '\f'))
        b--;
    if (a == b) {
        fprintf(stderr, LG_CLI_NAME ": %s holds no token\n", from);
        return LG_CLI_EXIT_FAIL;
    }
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c >= 0x7f) {
            fprintf(stderr,
                    LG_CLI_NAME ": %s holds an invalid token "
                                "(only printable ASCII without blanks is allowed)\n",
                    from);
            return LG_CLI_EXIT_FAIL;
        }
    }
    ctx->token = malloc(b - a + 1);
    if (!ctx->token) {
        fputs(LG_CLI_NAME ": out of memory\n", stderr);
        return LG_CLI_EXIT_FAIL;
    }
    memcpy(ctx->token, buf + a, b - a);
    ctx->token[b - a] = '\0';
    return 0;
}

int lg_cli_token_load(struct lg_cli_ctx *ctx)
{
    const char *file = ctx->token_file;
    char buf[TOKEN_MAX + 1];
    char from[PATH_MAX + 32];
    size_t len = 0;
    int fd, rc;

    /* An explicit --token-file wins; then a token in the environment; then
     * the token file named by the environment; then the default file. */
    if (!file) {
        const char *env = getenv("LOCKGATE_ADMIN_TOKEN");

        if (env && env[0]) return token_take(ctx, env, strlen(env), "$LOCKGATE_ADMIN_TOKEN");
        file = getenv("LOCKGATE_ADMIN_TOKEN_FILE");
        if (!file || !file[0]) file = LG_CLI_DEFAULT_TOKEN_FILE;
    }

    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, LG_CLI_NAME ": cannot read token file '%s': %s\n", file, strerror(errno));
        return LG_CLI_EXIT_FAIL;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fprintf(stderr, LG_CLI_NAME ": cannot read token file '%s': %s\n", file,
                    strerror(errno));
            close(fd);
            explicit_bzero(buf, sizeof(buf));
            return LG_CLI_EXIT_FAIL;
        }
        if (n == 0) break;
        len += (size_t)n;
        if (len == sizeof(buf)) {
            fprintf(stderr, LG_CLI_NAME ": token file '%s' is too large (over %d bytes)\n", file,
                    TOKEN_MAX);
            close(fd);
            explicit_bzero(buf, sizeof(buf));
            return LG_CLI_EXIT_FAIL;
        }
    }
    close(fd);
    snprintf(from, sizeof(from), "token file '%s'", file);
    rc = token_take(ctx, buf, len, from);
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct answer_buf *b = ud;
    size_t n = size * nmemb; /* curl documents size as always 1 */

    if (n > ANSWER_MAX - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1) cap *= 2;
        p = malloc(cap);
        if (!p) {
            b->oom = 1;
            return 0;
        }
        /* Copy rather than realloc so that no stale copy of an answer that
         * may hold a secret is left behind unwiped. */
        if (b->p) {
            memcpy(p, b->p, b->len);
            explicit_bzero(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static void answer_wipe(struct answer_buf *b)
{
    if (b->p) {
        explicit_bzero(b->p, b->cap);
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Prints an error answer: "lockgate-admin: <code>: <message>" on stderr and,
 * with --json, the error body on stdout. */
static void report_api_error(struct lg_cli_ctx *ctx, long status, const struct answer_buf *b)
{
    json_t *root = NULL, *err;
    const char *code = NULL, *msg = NULL;
    char fallback_code[32], fallback_msg[64];
    char *scode, *smsg;

    if (b->len > 0) root = json_loadb(b->p, b->len, 0, NULL);
    err = json_is_object(root) ? json_object_get(root, "error") : NULL;
    if (json_is_object(err)) {
        code = json_string_value(json_object_get(err, "code"));
        msg = json_string_value(json_object_get(err, "message"));
    }
    snprintf(fallback_code, sizeof(fallback_code), "http_%ld", status);
    snprintf(fallback_msg, sizeof(fallback_msg), "unexpected answer (HTTP %ld)", status);
    scode = lg_cli_sanitize(code ? code : fallback_code);
    smsg = lg_cli_sanitize(msg ? msg : fallback_msg);
    if (ctx->json && root) lg_cli_print_json(root);
    fprintf(stderr, LG_CLI_NAME ": %s: %s\n", scode ? scode : fallback_code,
            smsg ? smsg : fallback_msg);
    free(scode);
    free(smsg);
    json_decref(root);
}

int lg_cli_call(struct lg_cli_ctx *ctx, const char *method, const char *path, const json_t *body,
                json_t **answer)
{
    CURL *c = NULL;
    struct curl_slist *hdrs = NULL, *h;
    struct answer_buf b = {0};
    char errbuf[CURL_ERROR_SIZE];
    char *url = NULL, *text = NULL, *auth = NULL;
    size_t auth_len = 0;
    long status = 0;
    CURLcode cc;
    int rc = LG_CLI_EXIT_FAIL;

    *answer = NULL;
    errbuf[0] = '\0';
    /* Loaded only now so that every usage error is found first. */
    if (!ctx->token && lg_cli_token_load(ctx) != 0) return LG_CLI_EXIT_FAIL;
    if (asprintf(&url, "%s%s", ctx->base, path) < 0) {
        url = NULL;
        goto oom;
    }
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) goto oom;
    }
    auth_len = strlen("Authorization: Bearer ") + strlen(ctx->token) + 1;
    auth = malloc(auth_len);
    if (!auth) goto oom;
    snprintf(auth, auth_len, "Authorization: Bearer %s", ctx->token);

    c = curl_easy_init();
    if (!c) goto oom;
    if (!(h = curl_slist_append(hdrs, auth))) goto oom;
    hdrs = h;
    if (!(h = curl_slist_append(hdrs, "Accept: application/json"))) goto oom;
    hdrs = h;
    /* A body-less POST would otherwise claim to be a url-encoded form. */
    if (!(h = curl_slist_append(hdrs, text ? "Content-Type: application/json" : "Content-Type:")))
        goto oom;
    hdrs = h;
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    if (!(h = curl_slist_append(hdrs, "Expect:"))) goto oom;
    hdrs = h;

    curl_easy_setopt(c, CURLOPT_URL, url);
    const char *cacert = ctx->cacert;
    if (cacert == NULL) cacert = getenv("LOCKGATE_ADMIN_CACERT");
    if (cacert != NULL && cacert[0] != '\0') curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    /* Never follow a redirect: the token would travel with it. */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, LG_CLI_NAME);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);

    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(method, "POST") != 0) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (text || strcmp(method, "POST") == 0) {
            /* An empty POST still needs POSTFIELDS to be a POST at all. */
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, text ? (long)strlen(text) : 0L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, text ? text : "");
        }
    }

    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (b.too_big)
            fprintf(stderr, LG_CLI_NAME ": answer from %s is larger than %u bytes\n", url,
                    ANSWER_MAX);
        else if (b.oom)
            fputs(LG_CLI_NAME ": out of memory\n", stderr);
        else
            fprintf(stderr, LG_CLI_NAME ": cannot reach %s: %s\n", url,
                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        report_api_error(ctx, status, &b);
        goto done;
    }
    if (status != 204 && b.len > 0) {
        json_error_t jerr;
        json_t *root = json_loadb(b.p, b.len, 0, &jerr);

        if (!json_is_object(root)) {
            json_decref(root);
            fprintf(stderr, LG_CLI_NAME ": invalid answer from %s (HTTP %ld): not a JSON object\n",
                    url, status);
            goto done;
        }
        *answer = root;
    }
    rc = 0;
    goto done;

oom:
    fputs(LG_CLI_NAME ": out of memory\n", stderr);
done:
    if (c) curl_easy_cleanup(c);
    for (h = hdrs; h; h = h->next) explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(hdrs);
    if (auth) {
        explicit_bzero(auth, auth_len);
        free(auth);
    }
    answer_wipe(&b);
    free(text);
    free(url);
    return rc;
}
