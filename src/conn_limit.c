/* Connection caps. A hash table (table.h) of client address -> open count
 * under one mutex: taken once per accepted and once per closed connection,
 * never per request. An address leaves the table with its last connection. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lockgate/conn_limit.h"
#include "lockgate/list.h"
#include "lockgate/table.h"
#include "lockgate/util.h"

#define BUCKETS 4096 /* a power of two */

struct entry {
    struct lg_table_node node;
    uint64_t addr;
    int open;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct lg_table_node *buckets[BUCKETS];
static struct lg_table table = {buckets, BUCKETS - 1, 0, false};
static int total, max_total = 10000, max_per_ip = 256;

void lg_conn_limit_configure(int total_cap, int per_ip_cap)
{
    pthread_mutex_lock(&lock);
    max_total = total_cap;
    max_per_ip = per_ip_cap;
    pthread_mutex_unlock(&lock);
}

/* The address a cap applies to: an IPv4 address (also IPv4-mapped IPv6)
 * or the /64 of an IPv6 one, tagged so the two spaces never meet. */
static uint64_t addr_key(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (1ULL << 32) | ntohl(in->sin_addr.s_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return (1ULL << 32) | ((uint64_t)b[12] << 24) | ((uint64_t)b[13] << 16) |
                   ((uint64_t)b[14] << 8) | b[15];
        uint64_t k = 0;
        for (int i = 0; i < 8; i++) k = (k << 8) | b[i];
        /* /64 prefixes whose top bits would collide with the IPv4 tag are
         * still distinct keys: the tag is only 1 << 32 with zero above. */
        return k | (1ULL << 63);
    }
    return 0; /* unix sockets and the like: one shared key */
}

static uint64_t addr_hash(uint64_t addr) { return lg_hash(&addr, sizeof(addr)); }

static struct entry *find(uint64_t addr)
{
    for (struct lg_table_node *n = lg_table_first(&table, addr_hash(addr)); n != NULL;
         n = lg_table_next(n))
        if (LG_CONTAINER_OF(n, struct entry, node)->addr == addr)
            return LG_CONTAINER_OF(n, struct entry, node);
    return NULL;
}

bool lg_conn_limit_acquire(const struct sockaddr *sa, uint64_t *slot)
{
    uint64_t addr = addr_key(sa);
    bool ok = false;
    pthread_mutex_lock(&lock);
    if (total >= max_total) goto out;
    struct entry *e = find(addr);
    if (e == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL) goto out;
        e->addr = addr;
        lg_table_insert(&table, &e->node, addr_hash(addr));
    }
    if (e->open >= max_per_ip) goto out;
    e->open++;
    total++;
    *slot = addr;
    ok = true;
out:
    pthread_mutex_unlock(&lock);
    return ok;
}

void lg_conn_limit_release(uint64_t slot)
{
    pthread_mutex_lock(&lock);
    struct entry *e = find(slot);
    if (e != NULL) {
        total--;
        if (--e->open <= 0) {
            lg_table_remove(&table, &e->node);
            free(e);
        }
    }
    pthread_mutex_unlock(&lock);
}
