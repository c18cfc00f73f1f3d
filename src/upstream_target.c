/* The upstream URLs: the configured list parsed into Host header values and
 * path prefixes, round robin over them, and skipping a URL that failed to
 * connect until LG_UPSTREAM_RETRY_MS have passed. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lockgate/log.h"
#include "lockgate/util.h"
#include "upstream_internal.h"

static int target_eligible(const struct lg_upstream_target *t, int64_t now)
{
    return t->failed_ms == 0 || now - t->failed_ms >= LG_UPSTREAM_RETRY_MS;
}

int lg_upstream_target_pick(struct lg_upstream *up, int exclude)
{
    int64_t now = lg_mono_ms();
    int n = up->ntargets;
    for (int i = 0; i < n; i++) {
        int idx = (int)((up->rr + (unsigned)i) % (unsigned)n);
        if (idx != exclude && target_eligible(&up->targets[idx], now)) {
            up->rr = (unsigned)idx + 1;
            return idx;
        }
    }
    if (exclude >= 0) return -1;
    int idx = (int)(up->rr % (unsigned)n);
    up->rr++;
    return idx;
}

void lg_upstream_target_mark(struct lg_upstream *up, int idx, int failed)
{
    struct lg_upstream_target *t = &up->targets[idx];
    if (failed) {
        if (t->failed_ms == 0)
            lg_warn("upstream %s: cannot connect%s", t->base,
                    up->ntargets > 1 ? ", skipping it while another URL is healthy" : "");
        int64_t now = lg_mono_ms();
        t->failed_ms = now > 0 ? now : 1;
    } else {
        if (t->failed_ms != 0) lg_info("upstream %s: reachable again", t->base);
        t->failed_ms = 0;
    }
}

/* Host header value and path prefix of T's base URL. */
static int target_split(struct lg_upstream_target *t)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *path = NULL, *extra = NULL;
    int rc = -1;
    if (u == NULL) return -1;
    if (curl_url_set(u, CURLUPART_URL, t->base, CURLU_PATH_AS_IS) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        lg_error("upstream url %s cannot be parsed", t->base);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &extra, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK) {
        lg_error("upstream url %s: credentials, a query or a fragment are not supported", t->base);
        goto out;
    }
    int https = strncasecmp(t->base, "https://", 8) == 0;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
        strcmp(port, https ? "443" : "80") == 0) {
        curl_free(port);
        port = NULL;
    }
    size_t hlen = strlen(host), plen = port ? strlen(port) : 0;
    t->host = malloc(hlen + 1 + plen + 1);
    if (t->host == NULL) goto out;
    memcpy(t->host, host, hlen);
    t->host_len = hlen;
    if (port) {
        t->host[t->host_len++] = ':';
        memcpy(t->host + t->host_len, port, plen);
        t->host_len += plen;
    }
    t->host[t->host_len] = '\0';
    size_t len = strlen(path);
    while (len > 0 && path[len - 1] == '/') len--;
    t->prefix = strndup(path, len);
    if (t->prefix == NULL) goto out;
    t->prefix_len = len;
    rc = 0;
out:
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(extra);
    curl_url_cleanup(u);
    return rc;
}

/* Splits the comma-separated URL list, trimming blanks and trailing slashes. */
int lg_upstream_targets_parse(struct lg_upstream *up, const char *list)
{
    int n = 1;
    for (const char *p = list; *p; p++)
        if (*p == ',') n++;
    up->targets = calloc((size_t)n, sizeof(*up->targets));
    if (up->targets == NULL) return -1;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL) end = p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        while (e > s && e[-1] == '/') e--;
        if (e > s) {
            size_t len = (size_t)(e - s);
            if (!((len > 7 && strncasecmp(s, "http://", 7) == 0) ||
                  (len > 8 && strncasecmp(s, "https://", 8) == 0))) {
                lg_error("upstream url must start with http:// or https://");
                return -1;
            }
            struct lg_upstream_target *t = &up->targets[up->ntargets++];
            lg_list_init(&t->idle);
            lg_list_init(&t->wait.list);
            lg_list_init(&t->fresh.list);
            t->base = strndup(s, len);
            if (t->base == NULL) return -1;
            if (target_split(t) < 0) return -1;
            /* "HEAD " prefix " HTTP/1.1\r\n" "Host: " host "\r\n" */
            size_t room = 5 + t->prefix_len + 11 + 6 + t->host_len + 2;
            if (room > up->room_max) up->room_max = room;
        }
        if (*end == '\0') break;
        p = end + 1;
    }
    if (up->ntargets == 0) {
        lg_error("upstream url is empty");
        return -1;
    }
    return 0;
}

void lg_upstream_targets_free(struct lg_upstream *up)
{
    for (int i = 0; i < up->ntargets; i++) {
        free(up->targets[i].base);
        free(up->targets[i].host);
        free(up->targets[i].prefix);
    }
    free(up->targets);
}
