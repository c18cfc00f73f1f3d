/* The instance's open client connections on the public listeners, counted
 * in all and per client address (IPv6 per /64), shared by every worker:
 * [server] max_connections and max_connections_per_ip. Thread-safe. */
#ifndef LG_CONN_LIMIT_H
#define LG_CONN_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct sockaddr;

/* Sets the two limits (call before the workers start; again to change them). */
void lg_conn_limit_configure(int max_total, int max_per_ip);
/* Counts a new connection from SA; false (nothing counted) when a limit is
 * reached. *SLOT is what lg_conn_limit_release needs to undo it. */
bool lg_conn_limit_acquire(const struct sockaddr *sa, uint64_t *slot);
void lg_conn_limit_release(uint64_t slot);

#endif
