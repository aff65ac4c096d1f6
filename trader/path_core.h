/* The trader's per-packet path in plain C (no Python.h): MoldUDP64 → ITCH decode → book (feed_handler/book_core.c)
 * → trigger → pre-trade risk → OUCH (or FIX) encode → send, with a timestamp after each stage (the stage row of
 * t2t_common.h), and the loop that serves it from the sockets (with the paired floor of floor.h).
 * trader/trader_core.py is the reference (same rules, same order frames, same reject reasons); _trader.c is the
 * thin CPython binding; a C test or a fuzzing harness links this file alone (tests/c/path_core_test.c). */
#ifndef LATLAB_PATH_CORE_H
#define LATLAB_PATH_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "book_core.h"
#include "fix_order.h"
#include "floor.h"
#include "stage_clock.h"

#define TRADER_MAX_BLOCKS 256
#define TRADER_TOKEN_LEN 14
#define TRADER_FRAME_MAX 128

enum { R_KILL, R_DUP, R_QTY, R_NOTIONAL, R_BAND, R_THROTTLE, R_STORE, R_COUNT };
extern const char *const TRADER_REASONS[R_COUNT];

/* The slower store of the full-risk path: 0 passes, 1 rejects, -1 failed (the path then fails too). */
typedef int (*TraderStore)(void *ctx, const unsigned char *token, int64_t shares, int64_t price);

typedef struct {
    uint16_t locate;             /* the trigger instrument */
    uint32_t limit, clip;        /* buy its ask at or below limit, at most clip shares */
    char prefix[2];              /* of the order tokens */
    const unsigned char *frame;  /* the OUCH order frame, with these offsets */
    size_t frame_len, token_off, shares_off, price_off;
    int64_t *rows;               /* rows_cap × STAGES stage rows, one per order */
    size_t rows_cap;
    int64_t *acks;               /* optional, rows_cap long: when the run loop saw each order's first answer */
    int64_t max_shares, band_bps, per_second, last_trade;
    double max_notional;         /* dollars */
    int tsc;                     /* stages after the first timed by the TSC */
    const FixOrder *fix;         /* FIX 4.4 orders instead of OUCH (NULL: OUCH) */
} TraderParams;

typedef struct { unsigned char token[TRADER_TOKEN_LEN]; uint8_t used; } TokenSlot;

typedef struct TraderPath {
    BookCore *books;
    /* optional: a trader of its own (own book, tokens, rows) that the idle loop sends made-up triggers through,
     * so the code of the path is in cache when a real trigger comes */
    struct TraderPath *shadow;
    uint64_t shadow_ref;
    int64_t warmed_at;
    uint64_t passes; /* of the run loop */
    TraderStore store;
    void *store_ctx;
    uint16_t locate;
    uint32_t limit, clip;
    char prefix[2];
    unsigned char session[10];
    int have_session;
    uint64_t expected;
    unsigned char frame[TRADER_FRAME_MAX];
    size_t frame_len, token_off, shares_off, price_off;
    /* risk */
    int64_t max_shares, band_bps, per_second;
    double max_notional;
    int64_t last_trade;
    char killed[96];
    TokenSlot *tokens;
    size_t tok_cap, tok_count;
    int64_t *ring;
    int64_t ring_head, ring_count;
    uint64_t rejects[R_COUNT], passed;
    /* counters and stage rows */
    uint64_t packets, messages, malformed, gaps, duplicates, triggers, orders, sent, heartbeats, reply_bytes;
    int ended;
    int64_t *rows;
    size_t nrows, cap;
    int64_t *pending_row; /* the row of the order in `out`, until its send time is known */
    int64_t *acks;        /* per row: CLOCK_REALTIME when the loop found the session readable after that order */
    size_t awaiting;      /* 1 + the row of the last order sent, until something comes back on the session */
    /* Messages of other instruments, applied after the order is sent: they cannot change the trigger
     * instrument's book, so they are off the critical path (trader_finish_packet). */
    const unsigned char *deferred[TRADER_MAX_BLOCKS];
    uint16_t deferred_len[TRADER_MAX_BLOCKS];
    unsigned ndeferred;
    unsigned char out[256];
    size_t out_len;
    FixOrder fix; /* FIX 4.4 orders instead of OUCH (the frame is then unused) */
    int has_fix;
    StageClock clock;
    Floor *floor; /* paired mode: the floor served by the same loop, trigger by trigger */
    int failed_store; /* the last -1 came from the store, not from memory */
} TraderPath;

/* What trader_run ended on. */
typedef enum { RUN_TIMEOUT, RUN_END, RUN_SEND_FAILED, RUN_EXCHANGE_LOST, RUN_SIGNAL, RUN_RECV_ERROR, RUN_FAILED,
               RUN_COUNT } TraderRunEnd;
extern const char *const TRADER_RUN_ENDS[RUN_COUNT];

#define TRADER_EXCHANGE_LOST "exchange connection lost: orders stopped (fail safe)"

/* A trader on `books` (not owned); 0, -1 for parameters that do not fit (why in *why), -2 out of memory. */
int trader_init(TraderPath *t, BookCore *books, const TraderParams *p, const char **why);
void trader_free(TraderPath *t);

/* One packet: leaves an order frame in t->out (out_len > 0) and a stage row; 0, or -1 when the store failed or
 * memory ran out (failed_store says which). */
int trader_on_packet(TraderPath *t, const unsigned char *d, size_t len, int64_t t_kernel, int64_t t_user);
/* The rest of the packet, after the order (if any) is on its way; -1 when out of memory (failed_store 0). */
int trader_finish_packet(TraderPath *t);
/* The risk gate alone: -1 passed, the reason's index, or -2 when the store failed or memory ran out. */
int trader_risk_check(TraderPath *t, const unsigned char *token, int64_t shares, int64_t price, int64_t now);
/* One pass of the idle loop's cache warming; changes nothing of t's own state. */
void trader_warm(TraderPath *t);
/* The kill switch: no order passes from now on (the first reason stays). */
void trader_kill(TraderPath *t, const char *why);
/* Serve udp (the feed) and tcp (the order session), and the paired floor if any, for up to wait_ms (busy: spin). */
TraderRunEnd trader_run(TraderPath *t, int udp, int tcp, int wait_ms, int busy);

#endif
