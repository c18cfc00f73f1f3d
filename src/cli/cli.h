/* Internal interface of lockgate-admin, the operator client of the admin API:
 * argument parsing, the HTTP call, the noun/verb table and human output. */
#ifndef LG_CLI_H
#define LG_CLI_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define LG_CLI_NAME "lockgate-admin"

/* Exit statuses: success, API or network failure, usage error. */
#define LG_CLI_EXIT_OK    0
#define LG_CLI_EXIT_FAIL  1
#define LG_CLI_EXIT_USAGE 2

#define LG_CLI_DEFAULT_URL        "http://127.0.0.1:9090"
#define LG_CLI_DEFAULT_TOKEN_FILE "var/admin.token"

/* Global options and the state of one run. Strings marked borrowed point into
 * argv or the environment; owned ones are released by lg_cli_ctx_clear. */
struct lg_cli_ctx {
    const char *url; /* borrowed: --url, else (after parsing) $LOCKGATE_ADMIN_URL or the default */
    const char *token_file; /* borrowed: --token-file or NULL */
    const char *cacert;     /* borrowed: --cacert or NULL (then $LOCKGATE_ADMIN_CACERT) */
    int json;               /* --json given */
    char *base;             /* owned: url without trailing slashes */
    char *token;            /* owned, wiped before it is freed */
};

/* Frees what CTX owns and wipes the token. */
void lg_cli_ctx_clear(struct lg_cli_ctx *ctx);

/* ---- argument parsing (args.c) ---- */

enum lg_cli_flag_kind {
    LG_CLI_FLAG_BOOL,  /* --reveal */
    LG_CLI_FLAG_VALUE, /* --name N, once at most */
    LG_CLI_FLAG_LIST   /* --facility F, repeatable */
};

struct lg_cli_flag {
    const char *name; /* without the leading "--" */
    enum lg_cli_flag_kind kind;
    int required;
};

struct lg_cli_args;

struct lg_cli_verb {
    const char *name;  /* NULL for a noun that takes no verb (audit) */
    const char *alias; /* or NULL */
    const char *pos;   /* placeholder of the one required positional argument, or NULL */
    const struct lg_cli_flag *flags; /* terminated by an entry with a NULL name */
    int (*run)(struct lg_cli_ctx *ctx, const char *noun, const struct lg_cli_args *args);
};

struct lg_cli_noun {
    const char *name;
    const char *summary;             /* one line for the global help */
    const char *usage;               /* full text for 'lockgate-admin NOUN --help' */
    const struct lg_cli_verb *verbs; /* terminated by an entry with a NULL run */
};

/* The table of nouns (cmd.c), terminated by an entry with a NULL name. */
extern const struct lg_cli_noun lg_cli_nouns[];
/* The verbs of 'user' (cmd_user.c). */
extern const struct lg_cli_verb lg_cli_user_verbs[];

/* Parses the flags and positional argument of one verb from ARGV (borrowed;
 * the parsed values point into it). Global flags (--json, --url,
 * --token-file) are accepted here too and stored in CTX. Returns a new
 * lg_cli_args owned by the caller (lg_cli_args_free), or NULL after printing
 * a usage error for NOUN. */
struct lg_cli_args *lg_cli_args_parse(struct lg_cli_ctx *ctx, const char *noun,
                                      const struct lg_cli_verb *verb, int argc, char **argv);
void lg_cli_args_free(struct lg_cli_args *args);

/* The positional argument, or NULL. Borrowed. */
const char *lg_cli_args_pos(const struct lg_cli_args *args);
/* The value of the VALUE flag NAME, or NULL when absent. Borrowed. */
const char *lg_cli_args_get(const struct lg_cli_args *args, const char *name);
/* Whether flag NAME was given at all. */
int lg_cli_args_has(const struct lg_cli_args *args, const char *name);
/* Number of times NAME was given and the I-th value (borrowed). */
size_t lg_cli_args_count(const struct lg_cli_args *args, const char *name);
const char *lg_cli_args_nth(const struct lg_cli_args *args, const char *name, size_t i);

/* Prints "lockgate-admin: <message>" and the hint to 'lockgate-admin NOUN
 * --help' (or the global help when NOUN is NULL) on stderr. Returns
 * LG_CLI_EXIT_USAGE so callers can 'return lg_cli_usage_error(...)'. */
int lg_cli_usage_error(const char *noun, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Whether S is a well-formed id, [A-Za-z0-9_-]{1,64}, safe in a URL path. */
int lg_cli_id_valid(const char *s);

/* Parses S as a whole decimal integer (optional leading '-'), nothing else
 * allowed. Returns 0 and sets *OUT, or -1. */
int lg_cli_parse_int(const char *s, long long *out);

/* ---- the admin API call (http.c) ---- */

/* Sends METHOD PATH (path and query, already safe) with BODY (borrowed,
 * NULL for none) to the admin API. On a 2xx answer returns 0 and hands the
 * parsed JSON object to the caller in *ANSWER (NULL for 204 or an empty
 * body). Loads the token on first use. Otherwise prints the error (and with --json the error body
 * on stdout) and returns LG_CLI_EXIT_FAIL. */
int lg_cli_call(struct lg_cli_ctx *ctx, const char *method, const char *path, const json_t *body,
                json_t **answer);

/* Reads the token from --token-file, $LOCKGATE_ADMIN_TOKEN,
 * $LOCKGATE_ADMIN_TOKEN_FILE or the default file (first found) into ctx->token.
 * Returns 0, or LG_CLI_EXIT_FAIL after printing why. */
int lg_cli_token_load(struct lg_cli_ctx *ctx);

/* ---- output (table.c) ---- */

/* Prints V pretty-printed (two-space indent) and a newline on stdout. */
void lg_cli_print_json(const json_t *v);

/* Prints OBJ as aligned "field: value" lines: the fields named in ORDER
 * (NULL-terminated) first, then any others, never "secret". Borrowed. */
void lg_cli_print_fields(const json_t *obj, const char *const *order);

/* Human text of the field NAME with value V (borrowed): null becomes
 * "default"/"never"/"-" by field, arrays are joined with ", ", control
 * characters are replaced. Returns a string owned by the caller, or NULL
 * when out of memory. */
char *lg_cli_value_text(const char *name, const json_t *v);

/* Copy of S with control characters (C0, DEL, C1) replaced by '?'. Owned by
 * the caller; NULL when out of memory. */
char *lg_cli_sanitize(const char *s);

/* A table of strings printed with aligned columns and a header row. */
struct lg_cli_table;

/* New table with NCOLS columns titled HEADERS (borrowed, must outlive it). */
struct lg_cli_table *lg_cli_table_new(size_t ncols, const char *const *headers);
/* Appends a row; CELLS are NCOLS strings, sanitized and copied. 0 or -1. */
int lg_cli_table_add(struct lg_cli_table *t, const char *const *cells);
void lg_cli_table_print(const struct lg_cli_table *t, FILE *out);
void lg_cli_table_free(struct lg_cli_table *t);

#endif
