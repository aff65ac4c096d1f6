/* latlab's AF_XDP endpoint: see afxdp_core.h. */
#define _GNU_SOURCE
#include "afxdp_core.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <xdp/xsk.h>

#include "byteorder.h"

#define NUM_FRAMES 4096u
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define RING_SIZE 2048u
#define BATCH 64u
#define CHECK_EVERY 4096u
#define ETH_LEN 14u
#define IP_LEN 20u
#define UDP_LEN 8u
#define HDR_LEN (ETH_LEN + IP_LEN + UDP_LEN)

struct afxdp_endpoint {
    void *buffer;
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    struct xsk_ring_prod fq, tx;
    struct xsk_ring_cons cq, rx;
    uint64_t free_tx[NUM_FRAMES / 2]; /* client: frames kept for sending */
    unsigned n_free_tx;
    int zero_copy;
    struct afxdp_counters c;
};

static inline int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static uint16_t ip_checksum(const uint8_t *hdr, size_t len) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += be16(hdr + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

size_t afxdp_build_udp(uint8_t *f, size_t cap, const struct afxdp_flow *flow, const uint8_t *payload, size_t size) {
    if (HDR_LEN + size > cap || size > 65507)
        return 0;
    memcpy(f, flow->dst_mac, 6);
    memcpy(f + 6, flow->src_mac, 6);
    put_be16(f + 12, 0x0800);
    uint8_t *ip = f + ETH_LEN;
    memset(ip, 0, IP_LEN);
    ip[0] = 0x45;
    put_be16(ip + 2, (uint16_t)(IP_LEN + UDP_LEN + size));
    put_be16(ip + 6, 0x4000); /* don't fragment */
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, &flow->src_ip, 4);
    memcpy(ip + 16, &flow->dst_ip, 4);
    put_be16(ip + 10, ip_checksum(ip, IP_LEN));
    uint8_t *udp = ip + IP_LEN;
    put_be16(udp, flow->src_port);
    put_be16(udp + 2, flow->dst_port);
    put_be16(udp + 4, (uint16_t)(UDP_LEN + size));
    put_be16(udp + 6, 0); /* no checksum (IPv4) */
    if (payload)
        memcpy(udp + UDP_LEN, payload, size);
    return HDR_LEN + size;
}

/* The UDP header of an IPv4 frame, or NULL (with *malformed set when the frame is broken, not just foreign). */
static uint8_t *udp_of(uint8_t *f, size_t len, int *malformed) {
    *malformed = 0;
    if (len < ETH_LEN + IP_LEN)
        return (*malformed = len >= ETH_LEN && be16(f + 12) == 0x0800), NULL;
    if (be16(f + 12) != 0x0800)
        return NULL;
    uint8_t *ip = f + ETH_LEN;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    if ((ip[0] >> 4) != 4 || ihl < IP_LEN || len < ETH_LEN + ihl + UDP_LEN)
        return (*malformed = 1), NULL;
    if (ip[9] != 17)
        return NULL;
    return ip + ihl;
}

int afxdp_answer_in_place(uint8_t *f, size_t len, uint16_t port, int clear_sockperf_flag) {
    int malformed;
    uint8_t *udp = udp_of(f, len, &malformed);
    if (!udp)
        return malformed ? -1 : 0;
    if (be16(udp + 2) != port)
        return 0;
    uint8_t tmp[6];
    memcpy(tmp, f, 6);
    memcpy(f, f + 6, 6);
    memcpy(f + 6, tmp, 6);
    uint8_t *ip = f + ETH_LEN;
    uint8_t a[4];
    memcpy(a, ip + 12, 4);
    memcpy(ip + 12, ip + 16, 4);
    memcpy(ip + 16, a, 4); /* the IP checksum is a sum: swapping addresses keeps it valid */
    uint16_t sport = be16(udp);
    put_be16(udp, be16(udp + 2));
    put_be16(udp + 2, sport);
    put_be16(udp + 6, 0);
    size_t payload_at = (size_t)(udp - f) + UDP_LEN;
    if (clear_sockperf_flag && len > payload_at + 9)
        f[payload_at + 9] &= (uint8_t)~1u;
    return 1;
}

struct afxdp_endpoint *afxdp_open(const char *ifname, unsigned queue, enum xdp_mode mode, int try_zero_copy,
                                  char *err, size_t errlen) {
    struct afxdp_endpoint *ep = calloc(1, sizeof *ep);
    if (!ep) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    size_t bytes = (size_t)NUM_FRAMES * FRAME_SIZE;
    ep->buffer = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ep->buffer == MAP_FAILED) {
        snprintf(err, errlen, "mmap of the umem: %s", strerror(errno));
        free(ep);
        return NULL;
    }
    struct xsk_umem_config ucfg = {.fill_size = RING_SIZE, .comp_size = RING_SIZE, .frame_size = FRAME_SIZE,
                                   .frame_headroom = 0, .flags = 0};
    int rc = xsk_umem__create(&ep->umem, ep->buffer, bytes, &ep->fq, &ep->cq, &ucfg);
    if (rc) {
        snprintf(err, errlen, "xsk_umem__create: %s", strerror(-rc));
        munmap(ep->buffer, bytes);
        free(ep);
        return NULL;
    }
    struct xsk_socket_config cfg = {.rx_size = RING_SIZE, .tx_size = RING_SIZE, .libxdp_flags = 0,
                                    .xdp_flags = mode == XDP_MODE_DRV ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE,
                                    .bind_flags = XDP_ZEROCOPY};
    rc = try_zero_copy ? xsk_socket__create(&ep->xsk, ifname, queue, ep->umem, &ep->rx, &ep->tx, &cfg) : -1;
    if (rc == 0) {
        ep->zero_copy = 1;
    } else {
        cfg.bind_flags = XDP_COPY;
        rc = xsk_socket__create(&ep->xsk, ifname, queue, ep->umem, &ep->rx, &ep->tx, &cfg);
    }
    if (rc) {
        snprintf(err, errlen, "xsk_socket__create on %s queue %u (%s mode): %s", ifname, queue,
                 mode == XDP_MODE_DRV ? "native" : "generic", strerror(-rc));
        xsk_umem__delete(ep->umem);
        munmap(ep->buffer, bytes);
        free(ep);
        return NULL;
    }
    /* The first half of the frames receive (fill ring); the second half send. */
    uint32_t idx;
    unsigned nfill = NUM_FRAMES / 2;
    if (xsk_ring_prod__reserve(&ep->fq, nfill, &idx) != nfill) {
        snprintf(err, errlen, "could not fill the fill ring");
        afxdp_close(ep);
        return NULL;
    }
    for (unsigned i = 0; i < nfill; i++)
        *xsk_ring_prod__fill_addr(&ep->fq, idx++) = (uint64_t)i * FRAME_SIZE;
    xsk_ring_prod__submit(&ep->fq, nfill);
    for (unsigned i = 0; i < NUM_FRAMES / 2; i++)
        ep->free_tx[i] = (uint64_t)(nfill + i) * FRAME_SIZE;
    ep->n_free_tx = NUM_FRAMES / 2;
    return ep;
}

void afxdp_close(struct afxdp_endpoint *ep) {
    if (!ep)
        return;
    if (ep->xsk)
        xsk_socket__delete(ep->xsk); /* libxdp detaches its program when its last socket goes */
    if (ep->umem)
        xsk_umem__delete(ep->umem);
    munmap(ep->buffer, (size_t)NUM_FRAMES * FRAME_SIZE);
    free(ep);
}

int afxdp_zero_copy(const struct afxdp_endpoint *ep) { return ep->zero_copy; }
int afxdp_fd(const struct afxdp_endpoint *ep) { return xsk_socket__fd(ep->xsk); }

void afxdp_read_counters(struct afxdp_endpoint *ep, struct afxdp_counters *out) {
    *out = ep->c;
    struct xdp_statistics st;
    socklen_t len = sizeof st;
    memset(&st, 0, sizeof st);
    if (getsockopt(xsk_socket__fd(ep->xsk), SOL_XDP, XDP_STATISTICS, &st, &len) == 0) {
        out->rx_dropped = st.rx_dropped;
        out->rx_invalid_descs = st.rx_invalid_descs;
        out->tx_invalid_descs = st.tx_invalid_descs;
        out->rx_ring_full = st.rx_ring_full;
        out->rx_fill_ring_empty = st.rx_fill_ring_empty_descs;
        out->tx_ring_empty = st.tx_ring_empty_descs;
    }
}

static inline void kick(struct afxdp_endpoint *ep) {
    ep->c.kicks++;
    sendto(xsk_socket__fd(ep->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0);
}

/* Give frames back to the fill ring. */
static void refill(struct afxdp_endpoint *ep, const uint64_t *addrs, unsigned n) {
    uint32_t idx;
    while (xsk_ring_prod__reserve(&ep->fq, n, &idx) != n)
        ;
    for (unsigned i = 0; i < n; i++)
        *xsk_ring_prod__fill_addr(&ep->fq, idx++) = addrs[i];
    xsk_ring_prod__submit(&ep->fq, n);
}

/* Completed sends: the reflector recycles them into the fill ring, the client into its free list. */
static void reap_completions(struct afxdp_endpoint *ep, int to_fill) {
    uint32_t idx;
    unsigned n = xsk_ring_cons__peek(&ep->cq, BATCH, &idx);
    if (!n)
        return;
    uint64_t addrs[BATCH];
    for (unsigned i = 0; i < n; i++)
        addrs[i] = *xsk_ring_cons__comp_addr(&ep->cq, idx++);
    xsk_ring_cons__release(&ep->cq, n);
    if (to_fill) {
        refill(ep, addrs, n);
    } else {
        for (unsigned i = 0; i < n; i++)
            ep->free_tx[ep->n_free_tx++] = addrs[i];
    }
}

const char *afxdp_reflect(struct afxdp_endpoint *ep, uint16_t port, int clear_sockperf_flag,
                          int64_t idle_timeout_ns, afxdp_should_stop stop, void *stop_arg) {
    int64_t last = mono_ns();
    unsigned spins = 0;
    for (;;) {
        reap_completions(ep, 1);
        uint32_t rx_idx;
        unsigned n = xsk_ring_cons__peek(&ep->rx, BATCH, &rx_idx);
        if (n == 0) {
            if ((++spins % CHECK_EVERY) == 0) {
                if (stop && stop(stop_arg))
                    return "interrupted";
                if (mono_ns() - last > idle_timeout_ns)
                    return "idle";
            }
            continue;
        }
        uint64_t drop[BATCH];
        struct xdp_desc out[BATCH];
        unsigned ndrop = 0, ntx = 0;
        for (unsigned i = 0; i < n; i++) {
            const struct xdp_desc *d = xsk_ring_cons__rx_desc(&ep->rx, rx_idx + i);
            uint8_t *f = xsk_umem__get_data(ep->buffer, d->addr);
            int r = afxdp_answer_in_place(f, d->len, port, clear_sockperf_flag);
            if (r == 1) {
                out[ntx++] = (struct xdp_desc){.addr = d->addr, .len = d->len, .options = 0};
            } else {
                if (r < 0)
                    ep->c.malformed++;
                else
                    ep->c.ignored++;
                drop[ndrop++] = d->addr;
            }
        }
        ep->c.rx_frames += n;
        xsk_ring_cons__release(&ep->rx, n);
        if (ntx) {
            uint32_t tx_idx;
            while (xsk_ring_prod__reserve(&ep->tx, ntx, &tx_idx) != ntx)
                reap_completions(ep, 1);
            for (unsigned i = 0; i < ntx; i++)
                *xsk_ring_prod__tx_desc(&ep->tx, tx_idx + i) = out[i];
            xsk_ring_prod__submit(&ep->tx, ntx);
            ep->c.tx_frames += ntx;
            ep->c.answered += ntx;
            kick(ep);
        }
        if (ndrop)
            refill(ep, drop, ndrop);
        last = mono_ns();
    }
}

const char *afxdp_pingpong(struct afxdp_endpoint *ep, const struct afxdp_flow *flow, size_t size, int64_t warmup,
                           int64_t count, int64_t duration_ns, int64_t timeout_ns, int64_t *send_ns,
                           int64_t *rtt_ns, int64_t *measured_out, int64_t *warmed_out, afxdp_should_stop stop,
                           void *stop_arg) {
    int64_t measured = 0, warmed = 0, measure_start = 0;
    const char *status = "ok";
    if (size < 8 || HDR_LEN + size > FRAME_SIZE) {
        *measured_out = *warmed_out = 0;
        return "error";
    }
    for (int64_t i = 0; measured < count; i++) {
        int in_warmup = i < warmup;
        if (!in_warmup && measure_start == 0)
            measure_start = mono_ns();
        while (ep->n_free_tx == 0)
            reap_completions(ep, 0);
        uint64_t addr = ep->free_tx[--ep->n_free_tx];
        uint8_t *f = xsk_umem__get_data(ep->buffer, addr);
        size_t len = afxdp_build_udp(f, FRAME_SIZE, flow, NULL, size);
        uint8_t *payload = f + HDR_LEN;
        memset(payload, 0xA5, size);
        uint64_t seq = (uint64_t)i;
        memcpy(payload, &seq, sizeof seq);
        uint32_t tx_idx;
        while (xsk_ring_prod__reserve(&ep->tx, 1, &tx_idx) != 1)
            reap_completions(ep, 0);
        struct xdp_desc *t = xsk_ring_prod__tx_desc(&ep->tx, tx_idx);
        t->addr = addr;
        t->len = (uint32_t)len;
        t->options = 0;
        int64_t t0 = mono_ns();
        xsk_ring_prod__submit(&ep->tx, 1);
        kick(ep);
        ep->c.tx_frames++;
        int64_t t1 = 0;
        unsigned spins = 0;
        while (!t1) {
            uint32_t rx_idx;
            unsigned n = xsk_ring_cons__peek(&ep->rx, BATCH, &rx_idx);
            if (n == 0) {
                if ((++spins % CHECK_EVERY) == 0) {
                    reap_completions(ep, 0);
                    if (stop && stop(stop_arg)) {
                        status = "interrupted";
                        goto done;
                    }
                    if (timeout_ns && mono_ns() - t0 > timeout_ns) {
                        status = "timeout";
                        goto done;
                    }
                }
                continue;
            }
            int64_t seen = mono_ns();
            uint64_t back[BATCH];
            for (unsigned k = 0; k < n; k++) {
                const struct xdp_desc *d = xsk_ring_cons__rx_desc(&ep->rx, rx_idx + k);
                uint8_t *rf = xsk_umem__get_data(ep->buffer, d->addr);
                back[k] = d->addr;
                int malformed;
                uint8_t *udp = udp_of(rf, d->len, &malformed);
                if (!udp || be16(udp) != flow->dst_port || be16(udp + 2) != flow->src_port) {
                    if (malformed)
                        ep->c.malformed++;
                    else
                        ep->c.ignored++;
                    continue;
                }
                uint64_t got;
                size_t plen = d->len - (size_t)(udp - rf) - UDP_LEN;
                memcpy(&got, udp + UDP_LEN, sizeof got);
                if (plen != size || got != seq) {
                    ep->c.ignored++;
                    continue;
                }
                t1 = seen;
                ep->c.answered++;
            }
            ep->c.rx_frames += n;
            xsk_ring_cons__release(&ep->rx, n);
            refill(ep, back, n);
        }
        if (in_warmup) {
            warmed++;
            continue;
        }
        send_ns[measured] = t0;
        rtt_ns[measured] = t1 - t0;
        measured++;
        if (duration_ns > 0 && (measured % 64) == 0 && t1 - measure_start >= duration_ns)
            break;
    }
done:
    reap_completions(ep, 0);
    *measured_out = measured;
    *warmed_out = warmed;
    return status;
}
