/* cluster.h: a Redis replica of the harness's Redis and Redis Sentinels
 * watching them (header-only, on top of itest.h), for the suites that test
 * several instances and failover. Everything is started from the fixture
 * and listed in the harness's pids file, so the teardown kills it.
 *
 *   cluster_start(nsentinels, password)  a replica of the harness's Redis, N
 *                              Sentinels (quorum 2, down after CLUSTER_DOWN_MS;
 *                              requirepass PASSWORD unless NULL), waited for
 *                              until each knows the replica and the others.
 *   cluster_extra()            the [redis] lines that make lockgate use them.
 *   cluster_primary()          the primary's port as the first Sentinel that
 *                              answers says, 0 if none does.
 *   cluster_redis(port)        a hiredis sync connection to a port (fails the test).
 */
#ifndef LG_CLUSTER_H
#define LG_CLUSTER_H

#include "itest.h"

#define CLUSTER_MASTER      "lgmaster"
#define CLUSTER_DOWN_MS     1000
#define CLUSTER_FAILOVER_MS 3000
#define CLUSTER_MAX         5

struct cluster {
    int replica_port;
    pid_t replica_pid;
    int sentinel_ports[CLUSTER_MAX];
    int nsentinels;
    char extra[1024];
    char password[64]; /* the Sentinels' requirepass, "" for none */
};

static struct cluster cluster_state;
#define CL (&cluster_state)

ITEST_FN redisContext *cluster_redis(int port)
{
    redisContext *c = itest_redis_try_port(port, IT->timeout_ms);
    if (c == NULL) ck_abort_msg("cannot connect to redis on port %d", port);
    return c;
}

/* A connection to a Sentinel (or a Redis, which needs no password here):
 * authenticated when the Sentinels have a password. NULL when it fails. */
ITEST_FN redisContext *cluster_sentinel(int port)
{
    redisContext *c = itest_redis_try_port(port, 500);
    if (c == NULL || CL->password[0] == '\0' || port == CL->replica_port) return c;
    redisReply *r = redisCommand(c, "AUTH %s", CL->password);
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* One integer-ish answer of a command on PORT (-1 when it fails): the
 * number of elements of an array, or the integer. */
ITEST_FN long long cluster_count(int port, const char *fmt, const char *arg)
{
    redisContext *c = cluster_sentinel(port);
    if (c == NULL) return -1;
    redisReply *r = redisCommand(c, fmt, arg);
    long long n = -1;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY) n = (long long)r->elements;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER) n = r->integer;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
}

ITEST_FN int cluster_primary(void)
{
    for (int i = 0; i < CL->nsentinels; i++) {
        redisContext *c = cluster_sentinel(CL->sentinel_ports[i]);
        if (c == NULL) continue;
        redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", CLUSTER_MASTER);
        int port = 0;
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
            port = atoi(r->element[1]->str);
        if (r) freeReplyObject(r);
        redisFree(c);
        if (port > 0) return port;
    }
    return 0;
}

static int cluster_ready(void *arg)
{
    (void)arg;
    for (int i = 0; i < CL->nsentinels; i++) {
        if (cluster_count(CL->sentinel_ports[i], "SENTINEL replicas %s", CLUSTER_MASTER) != 1 ||
            cluster_count(CL->sentinel_ports[i], "SENTINEL sentinels %s", CLUSTER_MASTER) !=
                CL->nsentinels - 1)
            return 0;
    }
    /* the replica has its copy */
    redisContext *c = itest_redis_try_port(CL->replica_port, 500);
    if (c == NULL) return 0;
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 4 &&
             r->element[3]->type == REDIS_REPLY_STRING &&
             strcmp(r->element[3]->str, "connected") == 0;
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

ITEST_FN void cluster_start(int nsentinels, const char *password)
{
    memset(CL, 0, sizeof(*CL));
    if (password != NULL) snprintf(CL->password, sizeof(CL->password), "%s", password);
    if (nsentinels > CLUSTER_MAX) ck_abort_msg("too many sentinels");
    int ports[1 + CLUSTER_MAX];
    itest_free_ports(ports, 1 + nsentinels);
    CL->replica_port = ports[0];
    const char *server = getenv("ITEST_REDIS_SERVER");
    char port[16], primary[16], log[PATH_MAX];
    snprintf(port, sizeof(port), "%d", CL->replica_port);
    snprintf(primary, sizeof(primary), "%d", IT->redis_port);
    snprintf(log, sizeof(log), "%s", itest_path("replica.log"));
    char *const argv[] = {(char *)(server && server[0] ? server : "redis-server"),
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--dir",
                          IT->dir,
                          "--dbfilename",
                          "replica.rdb",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--replicaof",
                          "127.0.0.1",
                          primary,
                          "--logfile",
                          log,
                          NULL};
    CL->replica_pid = itest_spawn(argv, NULL, NULL, NULL, ITEST_SPAWN_RECORD | ITEST_SPAWN_PDEATH);
    itest_pid_save("replica", CL->replica_pid);
    size_t n = 0;
    n += (size_t)snprintf(CL->extra + n, sizeof(CL->extra) - n, "[redis]\nsentinels = ");
    for (int i = 0; i < nsentinels; i++) {
        CL->sentinel_ports[i] = ports[1 + i];
        char conf[64], slog[64];
        snprintf(conf, sizeof(conf), "sentinel-%d.conf", i);
        snprintf(slog, sizeof(slog), "sentinel-%d.log", i);
        char text[1024];
        snprintf(text, sizeof(text),
                 "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s\n"
                 "sentinel resolve-hostnames no\n"
                 "sentinel monitor %s 127.0.0.1 %d 2\n"
                 "sentinel down-after-milliseconds %s %d\n"
                 "sentinel failover-timeout %s %d\n"
                 "sentinel parallel-syncs %s 1\n%s%s\n",
                 CL->sentinel_ports[i], IT->dir, itest_path(slog), CLUSTER_MASTER, IT->redis_port,
                 CLUSTER_MASTER, CLUSTER_DOWN_MS, CLUSTER_MASTER, CLUSTER_FAILOVER_MS,
                 CLUSTER_MASTER, CL->password[0] ? "requirepass " : "", CL->password);
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s", itest_path(conf));
        if (itest_file_write(path, text) < 0) itest_fail("cannot write %s", path);
        char *const sargv[] = {"redis-sentinel", path, NULL};
        itest_spawn(sargv, NULL, NULL, NULL, ITEST_SPAWN_RECORD | ITEST_SPAWN_PDEATH);
        n += (size_t)snprintf(CL->extra + n, sizeof(CL->extra) - n, "%s127.0.0.1:%d", i ? "," : "",
                              CL->sentinel_ports[i]);
    }
    CL->nsentinels = nsentinels;
    n += (size_t)snprintf(CL->extra + n, sizeof(CL->extra) - n, "\nmaster_name = %s\n",
                          CLUSTER_MASTER);
    if (CL->password[0] != '\0') {
        char pw[PATH_MAX], line[80];
        snprintf(pw, sizeof(pw), "%s", itest_path("sentinel.password"));
        snprintf(line, sizeof(line), "%s\n", CL->password);
        if (itest_file_write(pw, line) < 0) itest_fail("cannot write %s", pw);
        chmod(pw, 0600);
        snprintf(CL->extra + n, sizeof(CL->extra) - n, "sentinel_password_file = %s\n", pw);
    }
    /* Sentinels find each other by hello messages every 2 s */
    int64_t end = itest_mono_ms() + IT->timeout_ms * 2;
    while (!cluster_ready(NULL)) {
        if (itest_mono_ms() > end) itest_fail("the replica and the sentinels did not get ready");
        itest_sleep_ms(100);
    }
}

ITEST_FN const char *cluster_extra(void) { return CL->extra; }

#endif
