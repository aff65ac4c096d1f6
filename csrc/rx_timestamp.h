/* The kernel's software receive timestamp from recvmsg's control data (SO_TIMESTAMPING), shared by the
 * compiled multicast subscriber (udp_multicast/_mold.c) and the trader (trader/_trader.c). */
#ifndef LATLAB_RX_TIMESTAMP_H
#define LATLAB_RX_TIMESTAMP_H

#include <linux/net_tstamp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* CLOCK_REALTIME ns of the first timespec of SCM_TIMESTAMPING (software), or 0 when there is none. */
static inline int64_t kernel_rx_timestamp(struct msghdr *msg) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct timespec) * 3)) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
    return 0;
}

#endif
