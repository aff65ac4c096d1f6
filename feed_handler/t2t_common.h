/* What the trader and the floor share: the stage row, the MoldUDP64 header, big-endian fields. */
#ifndef LATLAB_T2T_COMMON_H
#define LATLAB_T2T_COMMON_H

#include <stdint.h>

#define HEADER_LEN 20 /* MoldUDP64: session (10), sequence (8), count (2) */
/* Stage row (CLOCK_REALTIME ns): 0 kernel rx, 1 user receive, 2 decoded, 3 book updated, 4 decision, 5 risk passed,
 * 6 encoded, 7 sent. The floor fills 0, 1 and 7 (2..6 = 1). */
#define STAGES 8

static inline uint16_t be16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static inline void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

#endif
