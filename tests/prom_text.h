/* prom_text.h: reading Prometheus text (exposition format 0.0.4) in the
 * tests (header-only): a checker of the rules a scrape must follow, and a
 * sample's value. The rules: every family has one HELP and one TYPE before
 * its samples, which stand together; counters end in _total and nothing else
 * does; no name carries a unit other than a base one; a histogram is in
 * seconds, its _bucket{le} bounds increase and its counts are cumulative up
 * to +Inf, which equals _count, and it has _sum. */
#ifndef LG_TEST_PROM_TEXT_H
#define LG_TEST_PROM_TEXT_H

#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct prom_family {
    char name[128];
    char type[16];
    bool help, typed;
    int samples;
    bool inf, sum, count; /* histogram parts seen */
    double last_le, last_bucket, inf_value, count_value;
};

#define PROM_MAX_FAMILIES 64

static inline struct prom_family *prom_find(struct prom_family *fam, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(fam[i].name, name) == 0) return &fam[i];
    return NULL;
}

static inline bool prom_ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static inline bool prom_number(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0) return (*v = INFINITY), true;
    if (strcmp(s, "-Inf") == 0) return (*v = -INFINITY), true;
    if (strcmp(s, "NaN") == 0) return (*v = NAN), true;
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0';
}

#define PROM_BAD(...)                    \
    do {                                 \
        snprintf(err, cap, __VA_ARGS__); \
        free(copy);                      \
        return -1;                       \
    } while (0)

/* Labels at P ("{a=\"x\",le=\"0.5\"}"): checks their syntax, copies an le
 * value into LE ("" if none), and returns the text after the brace or NULL. */
static inline const char *prom_labels(const char *p, char *le, size_t lecap)
{
    le[0] = '\0';
    if (*p != '{') return p;
    p++;
    while (*p != '}') {
        const char *name = p;
        if (!(isalpha((unsigned char)*p) || *p == '_')) return NULL;
        while (isalnum((unsigned char)*p) || *p == '_') p++;
        size_t nlen = (size_t)(p - name);
        if (p[0] != '=' || p[1] != '"') return NULL;
        p += 2;
        const char *val = p;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n') return NULL;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') return NULL;
                p++;
            }
            p++;
        }
        if (nlen == 2 && strncmp(name, "le", 2) == 0)
            snprintf(le, lecap, "%.*s", (int)(p - val), val);
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

/* 0 when TEXT is well-formed Prometheus text (version 0.0.4) by the rules
 * above, else -1 with the reason in ERR. */
static inline int prom_check(const char *text, char *err, size_t cap)
{
    static struct prom_family fam[PROM_MAX_FAMILIES];
    int n = 0;
    struct prom_family *cur = NULL;
    memset(fam, 0, sizeof(fam));
    char *copy = strdup(text), *save = NULL;
    ck_assert_ptr_nonnull(copy);
    if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
        PROM_BAD("the text does not end in a newline");
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool help = line[2] == 'H';
            const char *rest = line + 7;
            size_t len = strcspn(rest, " ");
            if (len == 0 || len >= sizeof(name) || rest[len] != ' ' || rest[len + 1] == '\0')
                PROM_BAD("malformed line: %s", line);
            snprintf(name, sizeof(name), "%.*s", (int)len, rest);
            struct prom_family *f = prom_find(fam, n, name);
            if (f == NULL) {
                if (n == PROM_MAX_FAMILIES) PROM_BAD("too many families");
                f = &fam[n++];
                snprintf(f->name, sizeof(f->name), "%s", name);
            }
            if (f->samples > 0) PROM_BAD("%s: %s after its samples", name, help ? "HELP" : "TYPE");
            if (help ? f->help : f->typed)
                PROM_BAD("%s: a second %s", name, help ? "HELP" : "TYPE");
            if (help) {
                f->help = true;
            } else {
                const char *t = rest + len + 1;
                if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
                    strcmp(t, "summary") && strcmp(t, "untyped"))
                    PROM_BAD("%s: unknown type %s", name, t);
                f->typed = true;
                snprintf(f->type, sizeof(f->type), "%s", t);
            }
            cur = f;
            continue;
        }
        if (line[0] == '#') continue; /* a comment */
        /* a sample: name, labels, one space, the value (no timestamps here) */
        const char *p = line;
        if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':')) PROM_BAD("bad name: %s", line);
        while (isalnum((unsigned char)*p) || *p == '_' || *p == ':') p++;
        snprintf(name, sizeof(name), "%.*s", (int)(p - line), line);
        char le[64];
        p = prom_labels(p, le, sizeof(le));
        double v;
        if (p == NULL || *p != ' ' || !prom_number(p + 1, &v))
            PROM_BAD("malformed sample: %s", line);
        struct prom_family *f = prom_find(fam, n, name);
        const char *part = "";
        if (f == NULL || strcmp(f->type, "histogram") == 0) {
            static const char *const parts[] = {"_bucket", "_sum", "_count"};
            f = NULL;
            for (int i = 0; i < 3 && f == NULL; i++) {
                if (!prom_ends(name, parts[i])) continue;
                char base[128];
                snprintf(base, sizeof(base), "%.*s", (int)(strlen(name) - strlen(parts[i])), name);
                f = prom_find(fam, n, base);
                if (f != NULL && strcmp(f->type, "histogram") != 0) f = NULL;
                part = parts[i];
            }
        }
        if (f == NULL || !f->typed) PROM_BAD("%s: a sample without TYPE", name);
        if (!f->help) PROM_BAD("%s: a sample without HELP", name);
        if (f != cur) PROM_BAD("%s: its samples are not together", f->name);
        f->samples++;
        if (strcmp(f->type, "counter") == 0 && v < 0) PROM_BAD("%s: negative counter", name);
        if (strcmp(f->type, "histogram") != 0) continue;
        if (strcmp(part, "_bucket") == 0) {
            double bound;
            if (f->sum || f->count) PROM_BAD("%s: a bucket after _sum or _count", name);
            if (f->inf) PROM_BAD("%s: a bucket after +Inf", name);
            if (!prom_number(le, &bound) || isnan(bound))
                PROM_BAD("%s: bucket without le: %s", name, line);
            if (f->samples > 1 && bound <= f->last_le)
                PROM_BAD("%s: le not increasing: %s", name, line);
            if (f->samples > 1 && v < f->last_bucket)
                PROM_BAD("%s: buckets not cumulative: %s", name, line);
            f->last_le = bound;
            f->last_bucket = v;
            if (isinf(bound)) f->inf = true, f->inf_value = v;
        } else if (strcmp(part, "_sum") == 0) {
            f->sum = true;
        } else {
            f->count = true;
            f->count_value = v;
        }
    }
    free(copy);
    copy = NULL;
    for (int i = 0; i < n; i++) {
        struct prom_family *f = &fam[i];
        if (!f->help || !f->typed) PROM_BAD("%s: no %s", f->name, f->help ? "TYPE" : "HELP");
        if (strcmp(f->type, "counter") == 0 && !prom_ends(f->name, "_total"))
            PROM_BAD("%s: a counter whose name does not end in _total", f->name);
        if (strcmp(f->type, "counter") != 0 && prom_ends(f->name, "_total"))
            PROM_BAD("%s: a %s named like a counter", f->name, f->type);
        if (prom_ends(f->name, "_ms") || strstr(f->name, "millisecond") || strstr(f->name, "micro"))
            PROM_BAD("%s: not in a base unit", f->name);
        if (strcmp(f->type, "histogram") == 0) {
            if (!prom_ends(f->name, "_seconds"))
                PROM_BAD("%s: a histogram not in seconds", f->name);
            if (!f->inf || !f->sum || !f->count)
                PROM_BAD("%s: lacks %s", f->name, !f->inf ? "+Inf" : !f->sum ? "_sum" : "_count");
            if (f->inf_value != f->count_value)
                PROM_BAD("%s: +Inf bucket %g but _count %g", f->name, f->inf_value, f->count_value);
        }
    }
    return 0;
}

/* The value of SAMPLE ("name" or "name{labels}") in TEXT, -1 when absent. */
static inline double prom_value(const char *text, const char *sample)
{
    size_t len = strlen(sample);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, sample, len) == 0 && p[len] == ' ') return strtod(p + len + 1, NULL);
    return -1;
}

#endif
