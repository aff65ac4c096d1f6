/* The floor of tick-to-trade: a bare UDP-in → TCP-out reflector, no logic. It runs alone (reflect) or on the
 * trader's own loop (paired mode), with the same receive and the same stage rows. Plain C: the caller owns the
 * frame and the rows. */
#ifndef LATLAB_FLOOR_H
#define LATLAB_FLOOR_H

#include <string.h>
#include <sys/types.h>

#include "feed_io.h"
#include "stage_clock.h"
#include "t2t_common.h"

/* The floor's state: its own feed socket and session, the frame it sends, its stage rows. */
typedef struct {
    int udp, tcp;
    unsigned char *frame; /* written: the sequence digits at seq_off */
    size_t frame_len;
    int64_t *rows;        /* cap × STAGES */
    ssize_t seq_off;      /* -1: the frame is sent as it is */
    size_t nrows, cap;
    uint64_t reply_bytes, datagrams;
} Floor;

/* The floor's sockets, frame and rows (not owned); -1 when the sequence digits at seq_off do not fit the frame. */
static inline int floor_init(Floor *f, int udp, int tcp, unsigned char *frame, size_t frame_len, int64_t *rows, size_t cap,
                      ssize_t seq_off) {
    memset(f, 0, sizeof *f);
    if (seq_off + 12 > (ssize_t)frame_len)
        return -1;
    f->udp = udp, f->tcp = tcp, f->frame = frame, f->frame_len = frame_len, f->rows = rows, f->cap = cap;
    f->seq_off = seq_off;
    return 0;
}

/* One datagram through the floor: the frame out on tcp (with the datagram's sequence number written at
 * seq_off when seq_off >= 0, so each frame is a new order to the exchange) and a stage row (kernel rx, user
 * receive, sent). Returns 0 sent, 1 end of session (nothing sent), -1 send failed. */
static inline int reflect_one(Floor *f, const unsigned char *buf, ssize_t n, int64_t t_kernel, int64_t t_user) {
    if (n >= HEADER_LEN && be16(buf + 18) == 0xFFFF)
        return 1;
    if (f->seq_off >= 0 && n >= HEADER_LEN) { /* a fresh token per datagram: its sequence number, 12 digits */
        unsigned char *digits = f->frame + f->seq_off;
        uint64_t v = be64(buf + 10);
        for (int k = 11; k >= 0; k--, v /= 10)
            digits[k] = (unsigned char)('0' + v % 10);
    }
    ssize_t s = send(f->tcp, f->frame, f->frame_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    int64_t t_sent = now_ns();
    if (s != (ssize_t)f->frame_len)
        return -1;
    if (f->nrows < f->cap) {
        int64_t *r = f->rows + f->nrows * STAGES;
        r[0] = t_kernel, r[1] = t_user;
        for (int k = 2; k < 7; k++)
            r[k] = t_user;
        r[7] = t_sent;
        f->nrows++;
    }
    return 0;
}

enum { FLOOR_SERVED = -100, FLOOR_SEND_FAILED = -101 };

/* The floor's socket in paired mode: FLOOR_SERVED when a datagram went through the floor, 0 when none was
 * there, -1 on a receive error (errno), FLOOR_SEND_FAILED when its order could not be sent. */
static inline ssize_t serve_floor(Floor *f, unsigned char *buf, size_t cap) {
    int64_t t_kernel = 0;
    ssize_t m = receive(f->udp, buf, cap, &t_kernel);
    if (m <= 0)
        return m;
    f->datagrams++;
    return reflect_one(f, buf, m, t_kernel, now_ns()) < 0 ? FLOOR_SEND_FAILED : FLOOR_SERVED;
}

#endif
