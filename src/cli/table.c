/* Human output of lockgate-admin: aligned tables for lists, "field: value"
 * lines for single objects, and pretty JSON. Everything shown comes from the
 * network, so control characters never reach the terminal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct lg_cli_table {
    size_t ncols;
    const char *const *headers;
    char **cells; /* rows * ncols, owned */
    size_t rows, cap;
};

void lg_cli_print_json(const json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

char *lg_cli_sanitize(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1), *o = out;
    const unsigned char *p = (const unsigned char *)s;

    if (!out) return NULL;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f) {
            *o++ = '?';
            p++;
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            /* C1 controls (U+0080..U+009F), e.g. a single-byte CSI. */
            *o++ = '?';
            p += 2;
        } else {
            *o++ = (char)*p++;
        }
    }
    *o = '\0';
    return out;
}

/* Terminal columns of a UTF-8 string, counting one per code point. */
static size_t text_width(const char *s)
{
    size_t w = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) w++;
    return w;
}

static const char *null_word(const char *name)
{
    if (!name) return "-";
    if (strcmp(name, "rate_per_sec") == 0 || strcmp(name, "burst") == 0) return "default";
    if (strcmp(name, "last_used_at") == 0 || strcmp(name, "expires_at") == 0) return "never";
    return "-";
}

/* Appends the raw text of V to a growing string. 0 or -1. */
static int append(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    char *p = realloc(*buf, *len + n + 1);

    if (!p) return -1;
    memcpy(p + *len, s, n + 1);
    *buf = p;
    *len += n;
    return 0;
}

static char *scalar_text(const char *name, const json_t *v)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        if (json_string_length(v) == 0) return strdup("-");
        /* An embedded NUL ends the text; it is shown as far as it goes. */
        return lg_cli_sanitize(json_string_value(v));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(num);
    case JSON_REAL: snprintf(num, sizeof(num), "%g", json_real_value(v)); return strdup(num);
    case JSON_TRUE: return strdup("true");
    case JSON_FALSE: return strdup("false");
    case JSON_NULL: return strdup(null_word(name));
    default: {
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        char *out;

        if (!dump) return NULL;
        out = lg_cli_sanitize(dump);
        free(dump);
        return out;
    }
    }
}

char *lg_cli_value_text(const char *name, const json_t *v)
{
    char *buf = NULL;
    size_t len = 0, i;
    json_t *item;

    if (!v) return strdup(null_word(name));
    if (!json_is_array(v)) return scalar_text(name, v);
    if (json_array_size(v) == 0) return strdup("-");
    json_array_foreach (v, i, item) {
        char *t = scalar_text(NULL, item);

        if (!t || (i > 0 && append(&buf, &len, ", ") != 0) || append(&buf, &len, t) != 0) {
            free(t);
            free(buf);
            return NULL;
        }
        free(t);
    }
    return buf;
}

static int in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

static void print_field(const char *name, const json_t *v, size_t width)
{
    char *t = lg_cli_value_text(name, v);
    char *n = lg_cli_sanitize(name);

    printf("%s:%*s %s\n", n ? n : "?", (int)(width - (n ? text_width(n) : 1)), "", t ? t : "?");
    free(t);
    free(n);
}

void lg_cli_print_fields(const json_t *obj, const char *const *order)
{
    const char *key;
    json_t *v;
    size_t width = 0;

    for (const char *const *o = order; o && *o; o++)
        if (json_object_get(obj, *o) && text_width(*o) > width) width = text_width(*o);
    json_object_foreach ((json_t *)obj, key, v) {
        if (strcmp(key, "secret") != 0 && text_width(key) > width) width = text_width(key);
    }

    for (const char *const *o = order; o && *o; o++) {
        v = json_object_get(obj, *o);
        if (v) print_field(*o, v, width);
    }
    json_object_foreach ((json_t *)obj, key, v) {
        if (strcmp(key, "secret") == 0 || in_list(order, key)) continue;
        print_field(key, v, width);
    }
}

struct lg_cli_table *lg_cli_table_new(size_t ncols, const char *const *headers)
{
    struct lg_cli_table *t = calloc(1, sizeof(*t));

    if (!t) return NULL;
    t->ncols = ncols;
    t->headers = headers;
    return t;
}

int lg_cli_table_add(struct lg_cli_table *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));

        if (!p) return -1;
        t->cells = p;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        char *s = lg_cli_sanitize(cells[c] ? cells[c] : "-");

        if (!s) {
            while (c-- > 0) free(t->cells[t->rows * t->ncols + c]);
            return -1;
        }
        t->cells[t->rows * t->ncols + c] = s;
    }
    t->rows++;
    return 0;
}

void lg_cli_table_print(const struct lg_cli_table *t, FILE *out)
{
    size_t *w = calloc(t->ncols, sizeof(*w));

    if (!w) return;
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = text_width(t->headers[c]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t cw = text_width(t->cells[r * t->ncols + c]);
            if (cw > w[c]) w[c] = cw;
        }
    }
    for (size_t r = 0; r <= t->rows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->headers[c] : t->cells[(r - 1) * t->ncols + c];

            if (c + 1 == t->ncols)
                fprintf(out, "%s\n", s);
            else
                fprintf(out, "%s%*s", s, (int)(w[c] - text_width(s) + 2), "");
        }
    }
    free(w);
}

void lg_cli_table_free(struct lg_cli_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->rows * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    free(t);
}
