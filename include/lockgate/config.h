/* The configuration: one option table (config.c), parsed from an INI file. */
#ifndef LG_CONFIG_H
#define LG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define LG_PATH_MAX 1024
#define LG_ADDR_MAX 128

struct lg_config {
    char dir[LG_PATH_MAX]; /* folder of the config file; relative paths resolve here */

    /* [server] */
    char listen[LG_ADDR_MAX];     /* "host:port" or "" for none */
    char listen_tls[LG_ADDR_MAX]; /* "host:port" or "" for none */
    int workers;                  /* >= 1 ("auto" resolved to the core count) */
    int max_header_bytes;         /* whole request head */
    int client_timeout_s;         /* idle keep-alive, body reads, answer writes */
    int header_timeout_s;         /* the whole request head must arrive within it */
    int max_connections;          /* open public connections per instance */
    int max_connections_per_ip;   /* ... per client address (IPv6: per /64) */
    char access_log[8];           /* "on" or "off": one JSON line per request on stdout */
    char log_level[8];            /* debug, info, warn, error */

    /* [tls] */
    char tls_cert[LG_PATH_MAX];
    char tls_key[LG_PATH_MAX];

    /* [admin] */
    char admin_listen[LG_ADDR_MAX];
    char admin_token_file[LG_PATH_MAX];
    char admin_tls[8]; /* "on": the admin listener speaks TLS with the [tls] certificate */

    /* [redis] */
    char redis_host[256];
    int redis_port;
    char redis_prefix[64];
    int redis_timeout_ms;
    char redis_username[128];              /* ACL user ("" = default user) */
    char redis_password_file[LG_PATH_MAX]; /* "" = no AUTH */
    char redis_password[256];              /* read from the file at start, not an option */
    int events_maxlen;                     /* events stream trimmed to about this many entries */
    int audit_maxlen;                      /* audit stream trimmed to about this many entries */

    /* [upstream] */
    char upstream_url[2048]; /* comma-separated base URLs */
    int upstream_timeout_ms;
    int upstream_connect_timeout_ms;
    int upstream_max_connections;
    char upstream_ca_file[LG_PATH_MAX]; /* CA certificates for https:// URLs; "" = the system's */

    /* [secrets] */
    char pepper_file[LG_PATH_MAX];
    char master_key_file[LG_PATH_MAX];

    /* [limits] */
    int rate_per_sec;
    int burst;
    int auth_failures_per_min;

    /* [feed] */
    int feed_heartbeat_s;         /* comment line interval on SSE streams */
    int feed_max_backlog_kib;     /* a slower stream reader is dropped */
    int feed_max_streams_per_key; /* open streams of one feed key per instance */
};

/* Fills CFG with every option's default. */
void lg_config_defaults(struct lg_config *cfg);

/* Loads PATH over the defaults. Relative path options are made absolute
 * against the file's folder. On error returns -1 and writes
 * "FILE:LINE: reason" into ERR (ERRLEN bytes). */
int lg_config_load(struct lg_config *cfg, const char *path, char *err, size_t errlen);

/* What SIGHUP may change: [tls] cert and key, [admin] token_file, [limits],
 * [upstream] url, timeout_ms and connect_timeout_ms, [server] log_level and
 * access_log. Copies those of NEXT that differ into RUN; every other option
 * that differs is left as RUN has it and named to KEPT (may be NULL) with its
 * section. Fields that are not options (dir, redis_password) are not
 * touched. Returns how many options changed in RUN. */
typedef void lg_config_kept_fn(const char *section, const char *name, void *arg);
int lg_config_reload(struct lg_config *run, const struct lg_config *next, lg_config_kept_fn *kept,
                     void *arg);

/* Resolves "auto" style values and cross-checks options. Returns 0 or -1 with ERR. */
int lg_config_check(const struct lg_config *cfg, char *err, size_t errlen);

/* Whether ADDR ("host:port" or "[ipv6]:port") is on a loopback interface. */
bool lg_config_addr_loopback(const char *addr);

#endif
