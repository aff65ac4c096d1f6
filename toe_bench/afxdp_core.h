/*
 * latlab's AF_XDP endpoint (libxdp/libbpf): a UDP reflector and a timed ping-pong client that move raw
 * Ethernet frames through an XSK socket, bypassing the kernel's IP stack. Plain C: no Python.h, so a C
 * test or a fuzzing harness can drive it alone; toe_bench/_afxdp.c is the CPython binding.
 *
 * The frame path: eth(14) + IPv4(20, no options) + UDP(8) + payload. The reflector swaps MACs, IPs and
 * ports of UDP frames to its port and zeroes the UDP checksum (veth hands over half-computed checksums
 * and a copy-mode AF_XDP send has no offload to finish them; zero means "no checksum" in IPv4). With
 * `clear_sockperf_flag` it clears bit 0 of payload byte 9, sockperf's client flag, so sockperf accepts
 * the answer as a server's.
 */
#ifndef LATLAB_AFXDP_CORE_H
#define LATLAB_AFXDP_CORE_H

#include <stddef.h>
#include <stdint.h>

enum xdp_mode { XDP_MODE_SKB = 0, XDP_MODE_DRV = 1 };

struct afxdp_counters {
    uint64_t rx_frames;     /* frames taken from the rx ring */
    uint64_t tx_frames;     /* frames put on the tx ring */
    uint64_t answered;      /* reflector: UDP frames answered; client: echoes matched */
    uint64_t ignored;       /* frames that were not ours (ARP, other ports, other protocols) */
    uint64_t malformed;     /* frames too short or with a bad IP header length */
    uint64_t kicks;         /* sendto() calls that pushed the tx ring */
    /* the kernel's own XDP_STATISTICS for the socket */
    uint64_t rx_dropped, rx_invalid_descs, tx_invalid_descs, rx_ring_full, rx_fill_ring_empty, tx_ring_empty;
};

struct afxdp_endpoint;

/* Opens an XSK socket on ifname/queue in the given mode (copy mode: veth has no zero-copy). Returns NULL and
 * writes the reason into err on failure. `zero_copy_used` says which bind mode the kernel accepted. */
struct afxdp_endpoint *afxdp_open(const char *ifname, unsigned queue, enum xdp_mode mode, int try_zero_copy,
                                  char *err, size_t errlen);
void afxdp_close(struct afxdp_endpoint *ep);
int afxdp_zero_copy(const struct afxdp_endpoint *ep);
int afxdp_fd(const struct afxdp_endpoint *ep);
void afxdp_read_counters(struct afxdp_endpoint *ep, struct afxdp_counters *out);

/* Asked every few thousand spins; a non-zero answer ends the loop with status "interrupted". */
typedef int (*afxdp_should_stop)(void *arg);

/* Answer UDP frames to `port` until nothing arrived for idle_timeout_ns or should_stop says so.
 * Returns a static status string: "idle", "interrupted", "error". */
const char *afxdp_reflect(struct afxdp_endpoint *ep, uint16_t port, int clear_sockperf_flag,
                          int64_t idle_timeout_ns, afxdp_should_stop stop, void *stop_arg);

struct afxdp_flow {
    uint8_t src_mac[6], dst_mac[6];
    uint32_t src_ip, dst_ip;   /* network byte order */
    uint16_t src_port, dst_port; /* host byte order */
};

/* Timed ping-pong: `size`-byte UDP payloads carrying the sequence number in their first 8 bytes, one in
 * flight. Timestamps: CLOCK_MONOTONIC before the tx ring is pushed, after the echo is seen on the rx ring.
 * Fills send_ns/rtt_ns (count items each); returns the status string and sets *measured and *warmed. */
const char *afxdp_pingpong(struct afxdp_endpoint *ep, const struct afxdp_flow *flow, size_t size, int64_t warmup,
                           int64_t count, int64_t duration_ns, int64_t timeout_ns, int64_t *send_ns,
                           int64_t *rtt_ns, int64_t *measured, int64_t *warmed, afxdp_should_stop stop,
                           void *stop_arg);

/* Frame helpers, exposed for tests: build a UDP frame (returns its length, 0 when it does not fit) and
 * turn a received frame into its answer in place (returns 1 when answered, 0 when not ours, -1 when
 * malformed). */
size_t afxdp_build_udp(uint8_t *frame, size_t cap, const struct afxdp_flow *flow, const uint8_t *payload,
                       size_t size);
int afxdp_answer_in_place(uint8_t *frame, size_t len, uint16_t port, int clear_sockperf_flag);

#endif
