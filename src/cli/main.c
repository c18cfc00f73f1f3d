/* lockgate-admin: the operator command line, a thin client of the admin API.
 * Parses global options up to the noun, hands the rest to the noun's verb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cli.h"

#define URL_MAX 2048

static void global_help(FILE *out)
{
    fputs("usage: " LG_CLI_NAME " [--url U] [--token-file F] [--cacert F] [--json] NOUN [VERB] "
          "[ARGS]\n"
          "\n"
          "Operator client of the lockgate admin API.\n"
          "\n"
          "Nouns:\n",
          out);
    for (const struct lg_cli_noun *n = lg_cli_nouns; n->name; n++)
        fprintf(out, "  %-13s %s\n", n->name, n->summary);
    fputs("\n"
          "Global options:\n"
          "  --url U          admin API base URL (default: $LOCKGATE_ADMIN_URL, else\n"
          "                   " LG_CLI_DEFAULT_URL ")\n"
          "  --token-file F   file holding the admin token (default: $LOCKGATE_ADMIN_TOKEN_FILE,\n"
          "                   else " LG_CLI_DEFAULT_TOKEN_FILE
          "); without --token-file a token in\n"
          "                   $LOCKGATE_ADMIN_TOKEN is used first\n"
          "  --cacert F       CA certificate(s) to verify an https:// admin API with\n"
          "                   (default: $LOCKGATE_ADMIN_CACERT, else the system's CAs)\n"
          "  --json           print the API's JSON answer instead of tables\n"
          "  -h, --help       this text; '" LG_CLI_NAME " NOUN --help' lists a noun's verbs\n"
          "\n"
          "Flags take '--flag value' or '--flag=value'.\n"
          "Exit status: 0 success, 1 API or network error, 2 usage error.\n",
          out);
}

static int is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

/* Matches "--NAME" or "--NAME=value" in ARGV[*I]; takes the value from the
 * next argument when needed. Returns 1 on a match (value in *VALUE), 0 when
 * ARG is another flag, -1 after a usage error. */
static int global_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i] + 2;
    size_t len = strlen(name);

    if (strncmp(a, name, len) != 0 || (a[len] != '\0' && a[len] != '=')) return 0;
    if (*value) {
        lg_cli_usage_error(NULL, "--%s given more than once", name);
        return -1;
    }
    if (a[len] == '=') {
        *value = a + len + 1;
        return 1;
    }
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        lg_cli_usage_error(NULL, "--%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

/* Checks and normalizes the base URL into ctx->base. */
static int url_prepare(struct lg_cli_ctx *ctx)
{
    const char *u = ctx->url;
    size_t len;

    if (!u) {
        u = getenv("LOCKGATE_ADMIN_URL");
        if (!u || !u[0]) u = LG_CLI_DEFAULT_URL;
        ctx->url = u;
    }
    len = strlen(u);
    if (len > URL_MAX) return lg_cli_usage_error(NULL, "--url: longer than %d characters", URL_MAX);
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
        return lg_cli_usage_error(NULL, "--url: '%.80s' must start with http:// or https://", u);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return lg_cli_usage_error(NULL, "--url: holds a blank, control, '?' or '#' "
                                            "character");
    }
    while (len > 0 && u[len - 1] == '/') len--;
    ctx->base = strndup(u, len);
    if (!ctx->base) {
        fputs(LG_CLI_NAME ": out of memory\n", stderr);
        return LG_CLI_EXIT_FAIL;
    }
    return 0;
}

static const struct lg_cli_verb *verb_find(const struct lg_cli_noun *noun, const char *name)
{
    for (const struct lg_cli_verb *v = noun->verbs; v->run; v++)
        if (v->name && (strcmp(v->name, name) == 0 || (v->alias && strcmp(v->alias, name) == 0)))
            return v;
    return NULL;
}

static int run(int argc, char **argv, struct lg_cli_ctx *ctx)
{
    const struct lg_cli_noun *noun = NULL;
    const struct lg_cli_verb *verb;
    struct lg_cli_args *args;
    const char *url = NULL, *token_file = NULL, *cacert = NULL;
    int i = 1, rc;

    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *a = argv[i];

        if (is_help(a)) {
            global_help(stdout);
            return LG_CLI_EXIT_OK;
        }
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--json") == 0) {
            ctx->json = 1;
            continue;
        }
        if (strncmp(a, "--", 2) == 0) {
            rc = global_value(argc, argv, &i, "url", &url);
            if (rc == 0) rc = global_value(argc, argv, &i, "token-file", &token_file);
            if (rc == 0) rc = global_value(argc, argv, &i, "cacert", &cacert);
            if (rc < 0) return LG_CLI_EXIT_USAGE;
            if (rc > 0) continue;
        }
        return lg_cli_usage_error(NULL, "unknown option '%.*s'", (int)strcspn(a, "="), a);
    }
    ctx->url = url;
    ctx->token_file = token_file;
    ctx->cacert = cacert;

    if (i >= argc)
        return lg_cli_usage_error(NULL, "missing NOUN (one of account, facility, key, "
                                        "feed-key, audit, lock-changed)");
    for (const struct lg_cli_noun *n = lg_cli_nouns; n->name; n++)
        if (strcmp(n->name, argv[i]) == 0) noun = n;
    if (!noun) return lg_cli_usage_error(NULL, "unknown noun '%.80s'", argv[i]);
    i++;

    /* --help anywhere after the noun wins over every other problem. */
    for (int j = i; j < argc && strcmp(argv[j], "--") != 0; j++) {
        if (is_help(argv[j])) {
            fputs(noun->usage, stdout);
            return LG_CLI_EXIT_OK;
        }
    }

    if (noun->verbs[0].name) {
        if (i >= argc)
            return lg_cli_usage_error(noun->name, "%s: missing VERB (%s)", noun->name,
                                      noun->summary);
        verb = verb_find(noun, argv[i]);
        if (!verb)
            return lg_cli_usage_error(noun->name, "%s: unknown verb '%.80s'", noun->name, argv[i]);
        i++;
    } else {
        verb = &noun->verbs[0];
    }

    args = lg_cli_args_parse(ctx, noun->name, verb, argc - i, argv + i);
    if (!args) return LG_CLI_EXIT_USAGE;
    rc = url_prepare(ctx);
    if (rc == 0) rc = verb->run(ctx, noun->name, args);
    lg_cli_args_free(args);
    return rc;
}

int main(int argc, char **argv)
{
    struct lg_cli_ctx ctx = {0};
    int rc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs(LG_CLI_NAME ": cannot initialize libcurl\n", stderr);
        return LG_CLI_EXIT_FAIL;
    }
    rc = run(argc, argv, &ctx);
    lg_cli_ctx_clear(&ctx);
    curl_global_cleanup();
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fputs(LG_CLI_NAME ": cannot write the output\n", stderr);
        if (rc == LG_CLI_EXIT_OK) rc = LG_CLI_EXIT_FAIL;
    }
    return rc;
}
