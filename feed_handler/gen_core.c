/* See gen_core.h. Every branch mirrors feed_handler/generator.py's _ReferenceFlow; the differential tests hold
 * the two to the same bytes. */
#include "gen_core.h"

#include <stdlib.h>
#include <string.h>

#include "byteorder.h"

#define TICK 100

enum { ADD, DELETE, REPLACE, EXECUTE, CANCEL, TRADE };

int gen_init(GenState *s, GenBook book, const unsigned char *stocks, const int64_t *mids, size_t instruments,
             long live_orders, const double *cum) {
    memset(s, 0, sizeof *s);
    s->book = book;
    s->cap = 1024;
    s->live = malloc(s->cap * sizeof *s->live);
    s->mids = malloc(instruments * sizeof *s->mids);
    s->stocks = malloc(instruments * 8);
    if (!s->live || !s->mids || !s->stocks) {
        gen_free(s);
        return -1;
    }
    memcpy(s->mids, mids, instruments * sizeof *s->mids);
    memcpy(s->stocks, stocks, instruments * 8);
    s->instruments = instruments;
    s->next_ref = 1;
    s->match = 1;
    s->live_hi = (double)live_orders * 1.1;
    s->live_lo = (double)live_orders * 0.9;
    memcpy(s->cum, cum, sizeof s->cum);
    return 0;
}

void gen_free(GenState *s) {
    free(s->live);
    free(s->mids);
    free(s->stocks);
    s->live = NULL;
    s->mids = NULL;
    s->stocks = NULL;
}

/* The 11-byte header after the 2-byte frame length: type, locate, tracking 0, 6-byte timestamp. */
static unsigned char *header(unsigned char *o, size_t len, char type, uint16_t locate, int64_t t) {
    put_be16(o, (uint16_t)len);
    o[2] = (unsigned char)type;
    put_be16(o + 3, locate);
    put_be16(o + 5, 0);
    put_be16(o + 7, (uint16_t)((uint64_t)t >> 32));
    put_be32(o + 9, (uint32_t)t);
    return o + 13;
}

static int64_t uncrossed(const GenState *s, uint16_t locate, int side, int64_t price) {
    if (side == 0) {
        uint32_t ask = s->book.best(s->book.ctx, locate, 1);
        return ask && price >= ask ? (int64_t)ask - TICK : price;
    }
    uint32_t bid = s->book.best(s->book.ctx, locate, 0);
    return bid && price <= bid ? (int64_t)bid + TICK : price;
}

static int64_t quote_price(const GenState *s, uint16_t locate, int side, int64_t depth) {
    int64_t mid = s->mids[locate - 1];
    if (side == 0)
        return mid - (depth + 1) * TICK > TICK ? mid - (depth + 1) * TICK : TICK;
    return mid + (depth + 1) * TICK;
}

static GenOrder *push(GenState *s) {
    if (s->n == s->cap) {
        GenOrder *grown = realloc(s->live, 2 * s->cap * sizeof *s->live);
        if (!grown)
            return NULL;
        s->live = grown;
        s->cap *= 2;
    }
    return &s->live[s->n++];
}

static void swap_remove(GenState *s, size_t i) { s->live[i] = s->live[--s->n]; }

/* Feed the frame at `o` to the books and return the end of it. */
static unsigned char *sent(GenState *s, unsigned char *o, int *failed) {
    size_t len = be16(o);
    if (s->book.apply(s->book.ctx, o + 2, len) < 0)
        *failed = 1;
    return o + 2 + len;
}

static unsigned char *add(GenState *s, unsigned char *o, int64_t t, uint16_t locate, int side, int64_t price,
                          int64_t shares, int mpid, int *failed) {
    price = uncrossed(s, locate, side, price);
    GenOrder *g = push(s);
    if (!g) {
        *failed = 1;
        return o;
    }
    *g = (GenOrder){s->next_ref++, price, shares, locate, (uint8_t)side};
    unsigned char *p = header(o, mpid ? 40 : 36, mpid ? 'F' : 'A', locate, t);
    put_be64(p, g->ref);
    p[8] = side ? 'S' : 'B';
    put_be32(p + 9, (uint32_t)shares);
    memcpy(p + 13, s->stocks + 8 * (size_t)(locate - 1), 8);
    put_be32(p + 21, (uint32_t)price);
    if (mpid)
        memcpy(p + 25, "LTLB", 4);
    return sent(s, o, failed);
}

long gen_build(GenState *s, const int64_t *times, const int64_t *locs, const int64_t *sides, const int64_t *depth,
               const int64_t *lots, size_t n, unsigned char *out) {
    unsigned char *o = out;
    int failed = 0;
    for (size_t k = 0; k < n && !failed; k++) {
        uint16_t loc = (uint16_t)locs[k];
        int side = (int)sides[k];
        o = add(s, o, times[k], loc, side, quote_price(s, loc, side, depth[k]), lots[k], 0, &failed);
    }
    return failed ? -1 : (long)(o - out);
}

static int action_of(const GenState *s, double r) {
    double x = r * s->cum[GEN_MIX - 1];
    int i = 0;
    while (i < GEN_MIX - 1 && s->cum[i] < x) /* numpy searchsorted, side left: the first cum[i] >= x */
        i++;
    return i;
}

static unsigned char *trade(GenState *s, unsigned char *o, int64_t t, uint16_t loc, double side_r, int64_t lot) {
    unsigned char *p = header(o, 44, 'P', loc, t);
    put_be64(p, 0);
    p[8] = side_r < 0.5 ? 'B' : 'S';
    put_be32(p + 9, (uint32_t)lot);
    memcpy(p + 13, s->stocks + 8 * (size_t)(loc - 1), 8);
    put_be32(p + 21, (uint32_t)s->mids[loc - 1]);
    put_be64(p + 25, s->match++);
    return o + 46;
}

/* Delete, cancel, execute or replace the live order at index i. */
static unsigned char *on_live(GenState *s, unsigned char *o, int action, size_t i, const GenFlowBatch *b, size_t k,
                              int *failed) {
    GenOrder g = s->live[i];
    int64_t t = b->times[k];
    double price_r = b->price_r[k];
    unsigned char *p;
    if (action == DELETE || (action == CANCEL && g.shares == 1)) {
        swap_remove(s, i);
        p = header(o, 19, 'D', g.locate, t);
        put_be64(p, g.ref);
    } else if (action == CANCEL) {
        int64_t gone = 1 + (int64_t)(price_r * (double)(g.shares - 1));
        s->live[i].shares -= gone;
        p = header(o, 23, 'X', g.locate, t);
        put_be64(p, g.ref);
        put_be32(p + 8, (uint32_t)gone);
    } else if (action == EXECUTE) {
        int64_t done = price_r < 0.6 ? g.shares : 1 + (int64_t)(price_r * (double)(g.shares - 1));
        if (g.shares == done)
            swap_remove(s, i);
        else
            s->live[i].shares -= done;
        int with_price = b->extra_r[k] < 0.2;
        p = header(o, with_price ? 36 : 31, with_price ? 'C' : 'E', g.locate, t);
        put_be64(p, g.ref);
        put_be32(p + 8, (uint32_t)done);
        put_be64(p + 12, s->match++);
        if (with_price) {
            p[20] = 'Y';
            put_be32(p + 21, (uint32_t)g.price);
        }
    } else { /* replace: same side and stock, new ref, shares and a nearby price */
        swap_remove(s, i);
        int64_t moved = g.price + ((int64_t)(price_r * 5) - 2) * TICK;
        int64_t price = uncrossed(s, g.locate, g.side, moved > TICK ? moved : TICK);
        GenOrder *n = push(s);
        if (!n) {
            *failed = 1;
            return o;
        }
        *n = (GenOrder){s->next_ref++, price, b->lots[k], g.locate, g.side};
        p = header(o, 35, 'U', g.locate, t);
        put_be64(p, g.ref);
        put_be64(p + 8, n->ref);
        put_be32(p + 16, (uint32_t)n->shares);
        put_be32(p + 20, (uint32_t)price);
    }
    return sent(s, o, failed);
}

long gen_flow(GenState *s, const GenFlowBatch *b, unsigned char *out) {
    unsigned char *o = out;
    int failed = 0;
    for (size_t k = 0; k < b->n && !failed; k++) {
        int action = action_of(s, b->action_r[k]);
        double extra = b->extra_r[k];
        /* Hold the live count near its target: trade adds for deletes (and back) when it drifts. */
        if (action == ADD && (double)s->n > s->live_hi && extra < 0.5)
            action = DELETE;
        else if (action == DELETE && (double)s->n < s->live_lo && extra < 0.5)
            action = ADD;
        if (action != ADD && action != TRADE && s->n == 0)
            action = ADD;
        uint16_t loc = (uint16_t)b->locs[k];
        if (action == ADD) {
            int side = b->side_r[k] < 0.5;
            double walk = b->walk_r[k];
            if (walk < 0.02) {
                int64_t m = s->mids[loc - 1] + (walk < 0.01 ? TICK : -TICK);
                s->mids[loc - 1] = m > 2 * TICK ? m : 2 * TICK;
            }
            o = add(s, o, b->times[k], loc, side, quote_price(s, loc, side, b->depth[k]), b->lots[k], extra < 0.05,
                    &failed);
        } else if (action == TRADE) {
            o = trade(s, o, b->times[k], loc, b->side_r[k], b->lots[k]);
        } else {
            o = on_live(s, o, action, (size_t)(b->pick_r[k] * (double)s->n), b, k, &failed);
        }
    }
    return failed ? -1 : (long)(o - out);
}
