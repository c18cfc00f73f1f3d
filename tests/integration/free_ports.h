/* Free loopback TCP ports for test servers, shared by the integration suites.
 *
 * Ports are picked below the kernel's range of ephemeral ports: an outgoing
 * connection can then neither take a port between its pick and its server's
 * bind, nor connect to itself on a port whose server is down (a simultaneous
 * open that would then hold the port). */
#ifndef LG_TEST_FREE_PORTS_H
#define LG_TEST_FREE_PORTS_H

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Fills PORTS with N (at most 8) distinct free ports; the sockets stay bound
 * until all are picked. Returns 0, or -1 when no port could be found. */
static inline int free_ports(int *ports, int n)
{
    int fds[8], low = 32768, high = 60999, rc = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d %d", &low, &high) != 2) low = 32768;
        fclose(f);
    }
    int first = low > 12000 ? 10000 : 1024, span = low - first;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned seed = (unsigned)getpid() ^ (unsigned)ts.tv_nsec;
    if (n < 1 || n > 8) return -1;
    for (int i = 0; i < n; i++) {
        ports[i] = -1;
        fds[i] = -1;
        for (int tries = 0; tries < 1000 && ports[i] < 0; tries++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0) break;
            /* a span of 0 (an odd port range) falls back to any port */
            int port = span > 0 ? first + (int)(rand_r(&seed) % (unsigned)span) : 0;
            struct sockaddr_in a = {0};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons((uint16_t)port);
            socklen_t alen = sizeof(a);
            if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                getsockname(fd, (struct sockaddr *)&a, &alen) == 0) {
                ports[i] = ntohs(a.sin_port);
                fds[i] = fd;
            } else {
                close(fd);
            }
        }
        if (ports[i] < 0) rc = -1;
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    return rc;
}

#endif
