/* The session generator's order flow in plain C (no Python.h): the per-message loop of
 * feed_handler/generator.py's reference engine, fed the same random draws, writing the same bytes as
 * BinaryFILE frames (u16 length + ITCH message). The books it keeps so that no price crosses are reached
 * through GenBook, so a C test can run this core alone. */
#ifndef LATLAB_GEN_CORE_H
#define LATLAB_GEN_CORE_H

#include <stddef.h>
#include <stdint.h>

/* The largest frame the flow writes (an 'P' trade: 2 + 44 bytes). */
#define GEN_MAX_FRAME 46
#define GEN_MIX 6

/* The books of what was sent: apply one message; best price of a side (0 when empty). */
typedef struct {
    void *ctx;
    int (*apply)(void *ctx, const unsigned char *msg, size_t len); /* -1 when out of memory */
    uint32_t (*best)(void *ctx, uint16_t locate, int side);
} GenBook;

typedef struct {
    uint64_t ref;
    int64_t price;
    int64_t shares;
    uint16_t locate;
    uint8_t side;
} GenOrder;

typedef struct {
    GenBook book;
    GenOrder *live; /* live orders, swap-removed: picked uniformly by index */
    size_t n, cap;
    uint64_t next_ref, match;
    int64_t *mids; /* per instrument, in Price(4) */
    unsigned char *stocks; /* 8 bytes per instrument */
    size_t instruments;
    double live_hi, live_lo; /* the live count is pushed back inside [lo, hi] */
    double cum[GEN_MIX];     /* cumulative action weights: add, delete, replace, execute, cancel, trade */
} GenState;

/* One batch of draws, each array n long (times in ns since midnight; depth = int(-log1p(-price_r) * 3)). */
typedef struct {
    const int64_t *times, *locs, *lots, *depth;
    const double *action_r, *pick_r, *side_r, *price_r, *walk_r, *extra_r;
    size_t n;
} GenFlowBatch;

/* 0, or -1 when out of memory. `stocks` is 8 * instruments bytes; `mids` is copied. */
int gen_init(GenState *s, GenBook book, const unsigned char *stocks, const int64_t *mids, size_t instruments,
             long live_orders, const double *cum);
void gen_free(GenState *s);

/* The opening build-up: n adds (side 0 bid, 1 ask) into `out` (n * GEN_MAX_FRAME bytes); bytes written or -1. */
long gen_build(GenState *s, const int64_t *times, const int64_t *locs, const int64_t *sides, const int64_t *depth,
               const int64_t *lots, size_t n, unsigned char *out);

/* The order flow of one batch into `out` (b->n * GEN_MAX_FRAME bytes); bytes written or -1. */
long gen_flow(GenState *s, const GenFlowBatch *b, unsigned char *out);

#endif
