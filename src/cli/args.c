/* Per-verb argument parsing for lockgate-admin: "--flag value" and
 * "--flag=value", repeatable list flags, one optional positional id, and
 * usage errors that name the offending flag. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct lg_cli_occ {
    const struct lg_cli_flag *flag;
    const char *value; /* NULL for a BOOL flag */
};

struct lg_cli_args {
    const char *pos;
    size_t n;
    struct lg_cli_occ *occ; /* at most argc entries */
};

/* Global options that may also follow the verb. */
static const struct lg_cli_flag global_flags[] = {
    {"json", LG_CLI_FLAG_BOOL, 0},
    {"url", LG_CLI_FLAG_VALUE, 0},
    {"token-file", LG_CLI_FLAG_VALUE, 0},
    {"cacert", LG_CLI_FLAG_VALUE, 0},
    {NULL, 0, 0},
};

int lg_cli_usage_error(const char *noun, const char *fmt, ...)
{
    va_list ap;

    fputs(LG_CLI_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (noun)
        fprintf(stderr, "\ntry '" LG_CLI_NAME " %s --help'\n", noun);
    else
        fputs("\ntry '" LG_CLI_NAME " --help'\n", stderr);
    return LG_CLI_EXIT_USAGE;
}

int lg_cli_id_valid(const char *s)
{
    size_t n = 0;

    if (!s) return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64) return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

int lg_cli_parse_int(const char *s, long long *out)
{
    char *end;
    long long v;

    /* strtoll would skip leading blanks and accept '+'; the CLI does not. */
    if (!s || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

static const struct lg_cli_flag *flag_find(const struct lg_cli_flag *flags, const char *name,
                                           size_t len)
{
    for (; flags && flags->name; flags++)
        if (strlen(flags->name) == len && strncmp(flags->name, name, len) == 0) return flags;
    return NULL;
}

static int global_set(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_flag *f,
                      const char *value)
{
    if (strcmp(f->name, "json") == 0) {
        ctx->json = 1;
    } else if (strcmp(f->name, "url") == 0) {
        if (ctx->url) return lg_cli_usage_error(noun, "--url given more than once");
        ctx->url = value;
    } else if (strcmp(f->name, "cacert") == 0) {
        if (ctx->cacert) return lg_cli_usage_error(noun, "--cacert given more than once");
        ctx->cacert = value;
    } else {
        if (ctx->token_file) return lg_cli_usage_error(noun, "--token-file given more than once");
        ctx->token_file = value;
    }
    return 0;
}

static int occ_count(const struct lg_cli_args *a, const struct lg_cli_flag *f)
{
    int c = 0;

    for (size_t i = 0; i < a->n; i++)
        if (a->occ[i].flag == f) c++;
    return c;
}

struct lg_cli_args *lg_cli_args_parse(struct lg_cli_ctx *ctx, const char *noun,
                                      const struct lg_cli_verb *verb, int argc, char **argv)
{
    struct lg_cli_args *a;
    int end_of_flags = 0;
    char what[160];

    if (verb->name)
        snprintf(what, sizeof(what), "%s %s", noun, verb->name);
    else
        snprintf(what, sizeof(what), "%s", noun);

    a = calloc(1, sizeof(*a));
    if (!a) goto oom;
    a->occ = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*a->occ));
    if (!a->occ) goto oom;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *name, *eq, *value = NULL;
        const struct lg_cli_flag *f;
        int global = 0;
        size_t len;

        if (!end_of_flags && strcmp(arg, "--") == 0) {
            end_of_flags = 1;
            continue;
        }
        if (end_of_flags || arg[0] != '-' || arg[1] == '\0') {
            if (!verb->pos || a->pos) {
                lg_cli_usage_error(noun, "%s: unexpected argument '%s'", what, arg);
                goto err;
            }
            a->pos = arg;
            continue;
        }
        if (arg[1] != '-') {
            lg_cli_usage_error(noun, "%s: unknown flag '%s'", what, arg);
            goto err;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        f = flag_find(verb->flags, name, len);
        if (!f) {
            f = flag_find(global_flags, name, len);
            global = f != NULL;
        }
        if (!f) {
            lg_cli_usage_error(noun, "%s: unknown flag '--%.*s'", what, (int)len, name);
            goto err;
        }
        if (f->kind == LG_CLI_FLAG_BOOL) {
            if (eq) {
                lg_cli_usage_error(noun, "%s: --%s takes no value", what, f->name);
                goto err;
            }
        } else if (eq) {
            value = eq + 1;
        } else {
            /* "--name --json" is almost surely a forgotten value; a value
             * that really starts with "--" can be given as --name=--x. */
            if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-')) {
                lg_cli_usage_error(noun, "%s: --%s needs a value", what, f->name);
                goto err;
            }
            value = argv[++i];
        }
        if (global) {
            if (global_set(ctx, noun, f, value) != 0) goto err;
            continue;
        }
        if (f->kind == LG_CLI_FLAG_VALUE && occ_count(a, f) > 0) {
            lg_cli_usage_error(noun, "%s: --%s given more than once", what, f->name);
            goto err;
        }
        a->occ[a->n].flag = f;
        a->occ[a->n].value = value;
        a->n++;
    }

    for (const struct lg_cli_flag *f = verb->flags; f && f->name; f++) {
        if (f->required && occ_count(a, f) == 0) {
            lg_cli_usage_error(noun, "%s: missing required flag --%s", what, f->name);
            goto err;
        }
    }
    if (verb->pos && !a->pos) {
        lg_cli_usage_error(noun, "%s: missing %s", what, verb->pos);
        goto err;
    }
    return a;

oom:
    fputs(LG_CLI_NAME ": out of memory\n", stderr);
err:
    lg_cli_args_free(a);
    return NULL;
}

void lg_cli_args_free(struct lg_cli_args *args)
{
    if (!args) return;
    free(args->occ);
    free(args);
}

const char *lg_cli_args_pos(const struct lg_cli_args *args) { return args->pos; }

size_t lg_cli_args_count(const struct lg_cli_args *args, const char *name)
{
    size_t c = 0;

    for (size_t i = 0; i < args->n; i++)
        if (strcmp(args->occ[i].flag->name, name) == 0) c++;
    return c;
}

const char *lg_cli_args_nth(const struct lg_cli_args *args, const char *name, size_t n)
{
    for (size_t i = 0; i < args->n; i++) {
        if (strcmp(args->occ[i].flag->name, name) != 0) continue;
        if (n == 0) return args->occ[i].value;
        n--;
    }
    return NULL;
}

const char *lg_cli_args_get(const struct lg_cli_args *args, const char *name)
{
    return lg_cli_args_nth(args, name, 0);
}

int lg_cli_args_has(const struct lg_cli_args *args, const char *name)
{
    return lg_cli_args_count(args, name) > 0;
}
