/* The configuration: one option table (section, name, type, field, default,
 * bounds, validator) drives defaults, INI parsing through inih, and the
 * "FILE:LINE: reason" errors that name the offending key. */
#include "lockgate/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

/* Longest accepted line, comments included (upstream url lists are long). */
#define CFG_LINE_MAX 4096

enum opt_type {
    OPT_STR,  /* copied into a char array of .size bytes */
    OPT_INT,  /* int within [min, max] */
    OPT_BOOL, /* on/off (also yes/no, true/false, 1/0), stored as "on" or "off" */
    OPT_ENUM  /* one of .choices, stored as given */
};

#define OPT_PATH     0x1 /* relative values resolve against the config folder */
#define OPT_EMPTY_OK 0x2 /* an empty value is allowed (and skips the validator) */
#define OPT_AUTO     0x4 /* int that also accepts "auto" = online cores */
#define OPT_RELOAD   0x8 /* SIGHUP applies a new value (lg_config_reload) */

/* A validator may rewrite VALUE in place (to a canonical form no longer than
 * it was). On error it writes what was expected into WHY and returns -1. */
typedef int opt_check_fn(char *value, char *why, size_t whylen);

struct opt {
    const char *section;
    const char *name;
    enum opt_type type;
    size_t offset;
    size_t size; /* strings only: the field's size, NUL included */
    const char *def;
    long min, max;              /* ints only */
    const char *const *choices; /* enums only, NULL-terminated */
    unsigned flags;
    opt_check_fn *check;
};

static opt_check_fn check_addr, check_host, check_urls, check_prefix;

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

/* clang-format off */
#define FIELD(f) offsetof(struct lg_config, f), sizeof(((struct lg_config *)0)->f)
#define STR(sec, name, f, def, flags, check) \
    {sec, name, OPT_STR, FIELD(f), def, 0, 0, NULL, flags, check}
#define INT(sec, name, f, def, min, max, flags) \
    {sec, name, OPT_INT, offsetof(struct lg_config, f), 0, def, min, max, NULL, flags, NULL}
#define BOOL(sec, name, f, def) {sec, name, OPT_BOOL, FIELD(f), def, 0, 0, NULL, 0, NULL}
#define BOOLR(sec, name, f, def) {sec, name, OPT_BOOL, FIELD(f), def, 0, 0, NULL, OPT_RELOAD, NULL}
#define ENUMR(sec, name, f, def, choices) \
    {sec, name, OPT_ENUM, FIELD(f), def, 0, 0, choices, OPT_RELOAD, NULL}

static const struct opt options[] = {
    STR("server", "listen", listen, "127.0.0.1:8080", OPT_EMPTY_OK, check_addr),
    STR("server", "listen_tls", listen_tls, "", OPT_EMPTY_OK, check_addr),
    INT("server", "workers", workers, "1", 1, 256, OPT_AUTO),
    INT("server", "max_header_bytes", max_header_bytes, "8192", 1024, 1048576, 0),
    INT("server", "client_timeout_s", client_timeout_s, "30", 1, 3600, 0),
    INT("server", "header_timeout_s", header_timeout_s, "10", 1, 3600, 0),
    INT("server", "max_connections", max_connections, "10000", 1, 10000000, 0),
    INT("server", "max_connections_per_ip", max_connections_per_ip, "256", 1, 10000000, 0),
    BOOLR("server", "access_log", access_log, "off"),
    ENUMR("server", "log_level", log_level, "info", log_levels),

    STR("tls", "cert", tls_cert, "var/tls/cert.pem", OPT_PATH | OPT_RELOAD, NULL),
    STR("tls", "key", tls_key, "var/tls/key.pem", OPT_PATH | OPT_RELOAD, NULL),

    STR("admin", "listen", admin_listen, "127.0.0.1:9090", 0, check_addr),
    STR("admin", "token_file", admin_token_file, "var/admin.token", OPT_PATH | OPT_RELOAD,
        NULL),
    BOOL("admin", "tls", admin_tls, "off"),

    STR("redis", "host", redis_host, "127.0.0.1", 0, check_host),
    INT("redis", "port", redis_port, "6379", 1, 65535, 0),
    STR("redis", "prefix", redis_prefix, "lg:", 0, check_prefix),
    INT("redis", "timeout_ms", redis_timeout_ms, "50", 1, 60000, 0),
    STR("redis", "username", redis_username, "", OPT_EMPTY_OK, NULL),
    STR("redis", "password_file", redis_password_file, "", OPT_PATH | OPT_EMPTY_OK, NULL),
    INT("redis", "events_maxlen", events_maxlen, "100000", 100, 1000000000, 0),
    INT("redis", "audit_maxlen", audit_maxlen, "1000000", 100, 1000000000, 0),

    STR("upstream", "url", upstream_url, "http://127.0.0.1:8081", OPT_RELOAD, check_urls),
    INT("upstream", "timeout_ms", upstream_timeout_ms, "2000", 1, 600000, OPT_RELOAD),
    INT("upstream", "connect_timeout_ms", upstream_connect_timeout_ms, "500", 1, 600000,
        OPT_RELOAD),
    INT("upstream", "max_connections", upstream_max_connections, "256", 1, 100000, 0),
    STR("upstream", "ca_file", upstream_ca_file, "", OPT_PATH | OPT_EMPTY_OK, NULL),

    STR("secrets", "pepper_file", pepper_file, "var/pepper", OPT_PATH, NULL),
    STR("secrets", "master_key_file", master_key_file, "var/master.key", OPT_PATH, NULL),

    INT("limits", "rate_per_sec", rate_per_sec, "20", 1, 1000000, OPT_RELOAD),
    INT("limits", "burst", burst, "40", 1, 1000000, OPT_RELOAD),
    INT("limits", "auth_failures_per_min", auth_failures_per_min, "30", 1, 1000000, OPT_RELOAD),

    INT("feed", "heartbeat_s", feed_heartbeat_s, "15", 1, 3600, 0),
    INT("feed", "max_backlog_kib", feed_max_backlog_kib, "256", 1, 1048576, 0),
    INT("feed", "max_streams_per_key", feed_max_streams_per_key, "8", 1, 100000, 0),
};
/* clang-format on */

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* Sections are exactly those the table names. */
static bool section_known(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].section) == len && memcmp(options[i].section, name, len) == 0)
            return true;
    return false;
}

/* --- validators ------------------------------------------------------- */

static bool hostname_valid(const char *s, size_t len)
{
    if (len == 0 || len > 253) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isascii(c) && (isalnum(c) || c == '.' || c == '-' || c == '_'))) return false;
    }
    return true;
}

static bool ipv6_valid(const char *s, size_t len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;

    if (len == 0 || len >= sizeof(buf)) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static bool port_valid(const char *s)
{
    long v = 0;

    if (*s == '\0' || strlen(s) > 5) return false;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) return false;
        v = v * 10 + (*s - '0');
    }
    return v >= 1 && v <= 65535;
}

/* "host:port" or "[ipv6]:port". */
static int check_addr(char *value, char *why, size_t whylen)
{
    const char *port;
    bool ok;

    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        ok = close != NULL && close[1] == ':' && ipv6_valid(value + 1, (size_t)(close - value - 1));
        port = ok ? close + 2 : "";
    } else {
        const char *colon = strrchr(value, ':');
        ok = colon != NULL && hostname_valid(value, (size_t)(colon - value));
        port = ok ? colon + 1 : "";
    }
    if (ok && port_valid(port)) return 0;
    snprintf(why, whylen, "expected host:port or [ipv6]:port with a port from 1 to 65535");
    return -1;
}

static int check_host(char *value, char *why, size_t whylen)
{
    size_t len = strlen(value);

    if (hostname_valid(value, len) || ipv6_valid(value, len)) return 0;
    snprintf(why, whylen, "expected a host name or IP address");
    return -1;
}

/* Comma-separated base URLs; stored canonically as "u1,u2" without spaces. */
static int check_urls(char *value, char *why, size_t whylen)
{
    char *out = value;
    const char *p = value;

    for (;;) {
        const char *start, *end, *rest;

        while (*p == ' ' || *p == '\t') p++;
        start = p;
        while (*p && *p != ',') p++;
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
        if (strncmp(start, "http://", 7) == 0)
            rest = start + 7;
        else if (strncmp(start, "https://", 8) == 0)
            rest = start + 8;
        else
            goto bad;
        if (rest >= end || *rest == '/') goto bad;
        for (const char *c = start; c < end; c++)
            if (!isgraph((unsigned char)*c)) goto bad;
        if (out != value) *out++ = ',';
        memmove(out, start, (size_t)(end - start));
        out += end - start;
        if (*p == '\0') break;
        p++;
    }
    *out = '\0';
    return 0;

bad:
    snprintf(why, whylen, "each comma-separated URL must be http://HOST... or https://HOST...");
    return -1;
}

static int check_prefix(char *value, char *why, size_t whylen)
{
    size_t len = strlen(value);
    bool ok = len >= 1 && len <= 32;

    for (size_t i = 0; ok && i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        ok = isascii(c) && (isalnum(c) || c == ':' || c == '_' || c == '-');
    }
    if (ok) return 0;
    snprintf(why, whylen, "expected 1 to 32 characters of A-Z a-z 0-9 : _ -");
    return -1;
}

/* --- setting one option ----------------------------------------------- */

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1) return 1;
    return n > 256 ? 256 : (int)n;
}

static bool parse_long(const char *s, long *out)
{
    char *end;

    if (!(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return false;
    errno = 0;
    *out = strtol(s, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Parses VALUE into CFG's field for O. Returns 0, or -1 with the reason in
 * WHY (which names the option, not the file or line). */
static int opt_set(const struct opt *o, struct lg_config *cfg, const char *value, char *why,
                   size_t whylen)
{
    char *field = (char *)cfg + o->offset;
    size_t len = strlen(value);
    char expected[160];

    if (len == 0 && !(o->flags & OPT_EMPTY_OK)) {
        snprintf(why, whylen, "empty value for %s", o->name);
        return -1;
    }

    switch (o->type) {
    case OPT_STR: {
        char buf[sizeof(cfg->upstream_url)];

        if (len >= o->size || len >= sizeof(buf)) {
            snprintf(why, whylen, "value too long for %s (at most %zu characters)", o->name,
                     o->size - 1);
            return -1;
        }
        memcpy(buf, value, len + 1);
        if (len > 0 && o->check != NULL && o->check(buf, expected, sizeof(expected)) < 0) goto bad;
        memcpy(field, buf, strlen(buf) + 1);
        return 0;
    }
    case OPT_INT: {
        long v;

        if ((o->flags & OPT_AUTO) && strcmp(value, "auto") == 0) {
            *(int *)field = online_cores();
            return 0;
        }
        if (!parse_long(value, &v) || v < o->min || v > o->max) {
            snprintf(expected, sizeof(expected), "expected an integer from %ld to %ld%s", o->min,
                     o->max, (o->flags & OPT_AUTO) ? " or auto" : "");
            goto bad;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case OPT_BOOL:
        if (!strcmp(value, "on") || !strcmp(value, "yes") || !strcmp(value, "true") ||
            !strcmp(value, "1")) {
            snprintf(field, o->size, "on");
            return 0;
        }
        if (!strcmp(value, "off") || !strcmp(value, "no") || !strcmp(value, "false") ||
            !strcmp(value, "0")) {
            snprintf(field, o->size, "off");
            return 0;
        }
        snprintf(expected, sizeof(expected), "expected on or off");
        goto bad;
    case OPT_ENUM: {
        size_t used = (size_t)snprintf(expected, sizeof(expected), "expected one of");

        for (const char *const *c = o->choices; *c != NULL; c++) {
            if (strcmp(value, *c) == 0) {
                snprintf(field, o->size, "%s", *c);
                return 0;
            }
            if (used < sizeof(expected))
                used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s %s",
                                         c == o->choices ? "" : ",", *c);
        }
        goto bad;
    }
    }
    snprintf(expected, sizeof(expected), "unsupported option type");

bad:
    /* Config values are not secrets, but an echo of hostile input stays short. */
    snprintf(why, whylen, "bad value '%.80s%s' for %s: %s", value, len > 80 ? "..." : "", o->name,
             expected);
    return -1;
}

void lg_config_defaults(struct lg_config *cfg)
{
    char why[256];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NOPTIONS; i++)
        (void)opt_set(&options[i], cfg, options[i].def, why, sizeof(why));
}

/* --- loading a file --------------------------------------------------- */

struct parse_state {
    const char *path;
    FILE *fp;
    char *line; /* getline buffer */
    size_t linecap;
    int lineno;
    int seen[NOPTIONS]; /* line that set each option, 0 when unset */
    struct lg_config *cfg;
    char *err;
    size_t errlen;
    bool failed;
};

static void parse_fail(struct parse_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void parse_fail(struct parse_state *st, const char *fmt, ...)
{
    int n;
    va_list ap;

    if (st->failed) return;
    st->failed = true;
    n = snprintf(st->err, st->errlen, "%s:%d: ", st->path, st->lineno);
    if (n < 0 || (size_t)n >= st->errlen) return;
    va_start(ap, fmt);
    vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* inih's line reader. Reading lines here keeps the line number for the
 * handler's messages, refuses overlong lines and NUL bytes instead of letting
 * them be split or cut, and refuses unknown sections even when they hold no
 * keys. Returning NULL ends the parse. */
static char *cfg_reader(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    ssize_t n = getline(&st->line, &st->linecap, st->fp);
    size_t len, content;
    const char *s;

    if (n < 0 || st->failed) return NULL;
    st->lineno++;
    len = (size_t)n;
    if (memchr(st->line, '\0', len) != NULL) {
        parse_fail(st, "NUL byte in line");
        return NULL;
    }
    content = len;
    if (content > 0 && st->line[content - 1] == '\n') content--;
    if (content > 0 && st->line[content - 1] == '\r') content--;
    if (num < 3 || content > (size_t)num - 3) {
        parse_fail(st, "line too long (at most %d characters)", num - 3);
        return NULL;
    }
    memcpy(str, st->line, content);
    str[content] = '\n';
    str[content + 1] = '\0';

    s = str;
    if (st->lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close != NULL) {
            const char *after = close + 1;
            while (isspace((unsigned char)*after)) after++;
            if (*after != '\0') {
                parse_fail(st, "text after the section header");
                return NULL;
            }
            if (!section_known(s + 1, (size_t)(close - s - 1))) {
                int nlen = (int)(close - s - 1);
                parse_fail(st, "unknown section [%.*s]", nlen > 64 ? 64 : nlen, s + 1);
                return NULL;
            }
        }
    }
    return str;
}

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    const struct opt *o = NULL;
    size_t idx = 0;
    char why[384];

    if (section[0] == '\0') {
        parse_fail(st, "option '%s' outside any section", name);
        return 0;
    }
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (strcmp(options[i].section, section) == 0 && strcmp(options[i].name, name) == 0) {
            o = &options[i];
            idx = i;
            break;
        }
    }
    if (o == NULL) {
        parse_fail(st, "unknown option '%s' in [%s]", name, section);
        return 0;
    }
    if (st->seen[idx] != 0) {
        parse_fail(st, "duplicate option '%s' in [%s] (first set on line %d)", name, section,
                   st->seen[idx]);
        return 0;
    }
    st->seen[idx] = st->lineno;
    /* An explicit "" is the natural way to write "empty" in an INI file. */
    if (strcmp(value, "\"\"") == 0) value = "";
    if (opt_set(o, st->cfg, value, why, sizeof(why)) < 0) {
        parse_fail(st, "%s", why);
        return 0;
    }
    return 1;
}

/* Makes every relative path option absolute against CFG->dir. */
static int resolve_paths(struct parse_state *st)
{
    struct lg_config *cfg = st->cfg;

    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct opt *o = &options[i];
        char *field = (char *)cfg + o->offset;
        char abs[LG_PATH_MAX * 2];
        int n;

        if (!(o->flags & OPT_PATH) || field[0] == '/' || field[0] == '\0') continue;
        n = snprintf(abs, sizeof(abs), "%s/%s", cfg->dir, field);
        if (n < 0 || (size_t)n >= o->size) {
            if (st->seen[i] != 0)
                snprintf(st->err, st->errlen, "%s:%d: value too long for %s once made absolute",
                         st->path, st->seen[i], o->name);
            else
                snprintf(st->err, st->errlen, "%s: default of %s too long once made absolute",
                         st->path, o->name);
            return -1;
        }
        memcpy(field, abs, (size_t)n + 1);
    }
    return 0;
}

int lg_config_load(struct lg_config *cfg, const char *path, char *err, size_t errlen)
{
    struct parse_state st;
    struct lg_config *tmp;
    char *pathcopy = NULL, *dir = NULL;
    int rc = -1, r;

    if (err != NULL && errlen > 0) err[0] = '\0';
    memset(&st, 0, sizeof(st));
    st.path = path;
    st.err = err;
    st.errlen = errlen;

    tmp = malloc(sizeof(*tmp));
    if (tmp == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    lg_config_defaults(tmp);
    st.cfg = tmp;

    st.fp = fopen(path, "re");
    if (st.fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    pathcopy = strdup(path);
    dir = pathcopy != NULL ? realpath(dirname(pathcopy), NULL) : NULL;
    if (dir == NULL) {
        snprintf(err, errlen, "%s: cannot resolve its folder: %s", path, strerror(errno));
        goto out;
    }
    if (strlen(dir) >= sizeof(tmp->dir)) {
        snprintf(err, errlen, "%s: folder path too long", path);
        goto out;
    }
    memcpy(tmp->dir, dir, strlen(dir) + 1);

    /* Debian's inih exposes its compile-time switches as globals; config is
     * read once at start, before any thread exists, so setting them is safe.
     * Whole-line comments only ('#' and ';' inside values are plain text),
     * no indented continuation lines, stop at the first error. */
    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_stop_on_first_error = true;
    ini_allow_no_value = false;
    ini_max_line = CFG_LINE_MAX + 3;

    r = ini_parse_stream(cfg_reader, &st, cfg_handler, &st);
    if (st.failed) goto out;
    if (ferror(st.fp)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (r > 0) {
        snprintf(err, errlen, "%s:%d: syntax error: expected [section], name = value or a comment",
                 path, r);
        goto out;
    }
    if (r < 0) {
        snprintf(err, errlen, "%s: cannot parse (error %d)", path, r);
        goto out;
    }
    if (resolve_paths(&st) < 0) goto out;
    *cfg = *tmp;
    rc = 0;

out:
    if (st.fp != NULL) fclose(st.fp);
    free(st.line);
    free(pathcopy);
    free(dir);
    free(tmp);
    return rc;
}

/* --- reloading ---------------------------------------------------------- */

int lg_config_reload(struct lg_config *run, const struct lg_config *next, lg_config_kept_fn *kept,
                     void *arg)
{
    int changed = 0;

    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct opt *o = &options[i];
        char *to = (char *)run + o->offset;
        const char *from = (const char *)next + o->offset;
        bool same = o->type == OPT_INT ? memcmp(to, from, sizeof(int)) == 0 : strcmp(to, from) == 0;

        if (same) continue;
        if (!(o->flags & OPT_RELOAD)) {
            if (kept != NULL) kept(o->section, o->name, arg);
            continue;
        }
        memcpy(to, from, o->type == OPT_INT ? sizeof(int) : strlen(from) + 1);
        changed++;
    }
    return changed;
}

/* --- cross-checks ----------------------------------------------------- */

/* Splits "host:port" / "[v6]:port" into HOST (without brackets) and PORT. */
static void addr_split(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(addr, ':');
    size_t hl;

    *port = colon ? atoi(colon + 1) : 0;
    hl = colon ? (size_t)(colon - addr) : strlen(addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    if (hl >= hostlen) hl = hostlen - 1;
    memcpy(host, addr, hl);
    host[hl] = '\0';
}

static bool host_wildcard(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

/* Two listeners clash when they share a port on the same or a wildcard host. */
static bool addr_clash(const char *a, const char *b)
{
    char ha[LG_ADDR_MAX], hb[LG_ADDR_MAX];
    int pa, pb;

    if (a[0] == '\0' || b[0] == '\0') return false;
    addr_split(a, ha, sizeof(ha), &pa);
    addr_split(b, hb, sizeof(hb), &pb);
    return pa == pb && (strcmp(ha, hb) == 0 || host_wildcard(ha) || host_wildcard(hb));
}

int lg_config_check(const struct lg_config *cfg, char *err, size_t errlen)
{
    if (cfg->listen[0] == '\0' && cfg->listen_tls[0] == '\0') {
        snprintf(err, errlen, "[server] listen and listen_tls are both empty: nothing to serve");
        return -1;
    }
    if (cfg->workers < 1) {
        snprintf(err, errlen, "[server] workers must be at least 1");
        return -1;
    }
    if (cfg->burst < 1 || cfg->rate_per_sec < 1) {
        snprintf(err, errlen, "[limits] rate_per_sec and burst must be at least 1");
        return -1;
    }
    if (addr_clash(cfg->listen, cfg->listen_tls)) {
        snprintf(err, errlen, "[server] listen and listen_tls use the same address");
        return -1;
    }
    if (addr_clash(cfg->admin_listen, cfg->listen) ||
        addr_clash(cfg->admin_listen, cfg->listen_tls)) {
        snprintf(err, errlen, "[admin] listen clashes with a [server] listener");
        return -1;
    }
    if (cfg->upstream_connect_timeout_ms > cfg->upstream_timeout_ms) {
        snprintf(err, errlen, "[upstream] connect_timeout_ms (%d) exceeds timeout_ms (%d)",
                 cfg->upstream_connect_timeout_ms, cfg->upstream_timeout_ms);
        return -1;
    }
    if (cfg->admin_listen[0] == '\0') {
        snprintf(err, errlen, "[admin] listen is empty");
        return -1;
    }
    return 0;
}

bool lg_config_addr_loopback(const char *addr)
{
    char host[LG_ADDR_MAX];
    const char *end = addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
    const char *start = addr[0] == '[' ? addr + 1 : addr;
    if (end == NULL || (size_t)(end - start) >= sizeof(host)) return false;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, host, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
    return strcmp(host, "localhost") == 0;
}
