/* The trader's and the floor's socket calls: receive a datagram with its kernel timestamp, drain the session,
 * wait for either. */
#ifndef LATLAB_FEED_IO_H
#define LATLAB_FEED_IO_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rx_timestamp.h"

/* recvmsg without waiting; >0 bytes, 0 nothing there, -1 error (errno). */
static inline ssize_t receive(int fd, unsigned char *buf, size_t cap, int64_t *t_kernel) {
    static char control[256];
    struct iovec iov = {buf, cap};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    *t_kernel = kernel_rx_timestamp(&msg);
    return n;
}

/* Read what the exchange sent (acknowledgements, executions, heartbeats) without leaving C: the order path
 * does not need them, and a trip through Python between two triggers would evict it from the caches.
 * Returns -1 when the exchange closed the connection or it failed. */
static inline int drain_tcp(int tcp, uint64_t *bytes) {
    static unsigned char sink[65536];
    for (;;) {
        ssize_t n = recv(tcp, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0) {
            *bytes += (uint64_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/* Wait for a feed (busy: return at once) up to wait_ms: 1 a feed is ready, 0 timeout, 2 the (trader's) session is
 * readable, 3 the floor's session is.
 * fds: feed, session, and in paired mode the floor's feed and session (-1: absent). */
static inline int wait_feed(const int fds_in[4], int wait_ms, int busy) {
    struct pollfd fds[4];
    int n = 0;
    for (int k = 0; k < 4; k++)
        if (fds_in[k] >= 0)
            fds[n++] = (struct pollfd){.fd = fds_in[k], .events = POLLIN, .revents = 0};
    int r = poll(fds, (nfds_t)n, busy ? 0 : wait_ms);
    if (r <= 0)
        return 0;
    for (int k = 0; k < n; k++)
        if (fds[k].revents && (fds[k].fd == fds_in[1] || fds[k].fd == fds_in[3]))
            return fds[k].fd == fds_in[1] ? 2 : 3;
    return 1;
}

#endif
