/* The trader's per-packet path in plain C: see path_core.h. */
#include "path_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_io.h"
#include "t2t_common.h"

#define WARM_EVERY_NS 20000 /* the busy-poll loop warms the path this often (see trader_warm) */

const char *const TRADER_REASONS[R_COUNT] = {"kill_switch", "duplicate_token", "max_quantity", "max_notional",
                                             "price_band", "throttle", "store"};
const char *const TRADER_RUN_ENDS[RUN_COUNT] = {"timeout", "end", "send_failed", "exchange_lost", "signal",
                                                "recv_failed", "failed"};

void trader_kill(TraderPath *t, const char *why) {
    if (!t->killed[0])
        snprintf(t->killed, sizeof t->killed, "%s", why);
}

/* ---- risk: the same rules as trader/risk.py ---- */

/* Two overlapping 8-byte loads mixed by murmur3's finalizer: a few multiplies, where a byte loop takes 14 dependent
 * ones. A trigger hashes its token once (prefetch_for) and the risk check reuses it. */
static size_t token_hash(const unsigned char *tok) {
    uint64_t a, b;
    memcpy(&a, tok, 8);
    memcpy(&b, tok + TRADER_TOKEN_LEN - 8, 8);
    uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ b;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    return (size_t)(h ^ (h >> 33));
}

static int token_seen(TraderPath *t, const unsigned char *tok, size_t hash) {
    size_t mask = t->tok_cap - 1;
    for (size_t i = hash & mask; t->tokens[i].used; i = (i + 1) & mask)
        if (memcmp(t->tokens[i].token, tok, TRADER_TOKEN_LEN) == 0)
            return 1;
    return 0;
}

static int token_add(TraderPath *t, const unsigned char *tok, size_t hash) {
    if (2 * (t->tok_count + 1) > t->tok_cap) {
        size_t old_cap = t->tok_cap;
        TokenSlot *old = t->tokens, *fresh = calloc(old_cap * 2, sizeof(TokenSlot));
        if (!fresh)
            return -1;
        t->tokens = fresh;
        t->tok_cap = old_cap * 2;
        for (size_t k = 0; k < old_cap; k++) {
            if (!old[k].used)
                continue;
            size_t i = token_hash(old[k].token) & (t->tok_cap - 1);
            while (fresh[i].used)
                i = (i + 1) & (t->tok_cap - 1);
            fresh[i] = old[k];
        }
        free(old);
    }
    size_t mask = t->tok_cap - 1, i = hash & mask;
    while (t->tokens[i].used)
        i = (i + 1) & mask;
    memcpy(t->tokens[i].token, tok, TRADER_TOKEN_LEN);
    t->tokens[i].used = 1;
    t->tok_count++;
    return 0;
}

static int risk_reason(TraderPath *t, const unsigned char *tok, size_t hash, int64_t shares, int64_t price,
                       int64_t now) {
    if (t->killed[0])
        return R_KILL;
    if (token_seen(t, tok, hash))
        return R_DUP;
    if (shares > t->max_shares)
        return R_QTY;
    if ((double)shares * (double)price > t->max_notional * 10000.0)
        return R_NOTIONAL;
    int64_t diff = price > t->last_trade ? price - t->last_trade : t->last_trade - price;
    if (diff * 10000 > t->band_bps * t->last_trade)
        return R_BAND;
    if (t->ring_count == t->per_second && now - t->ring[t->ring_head] < 1000000000LL)
        return R_THROTTLE;
    return -1;
}

/* The throttle's entry for the next order: the next free one, or the oldest when the ring is full (a compare, not a
 * division: head < per_second and count <= per_second). */
static inline int64_t *ring_next(const TraderPath *t) {
    if (t->ring_count == t->per_second)
        return &t->ring[t->ring_head];
    int64_t at = t->ring_head + t->ring_count;
    return &t->ring[at < t->per_second ? at : at - t->per_second];
}

/* trader_risk_check with the token's hash already taken. */
static int risk_check_hashed(TraderPath *t, const unsigned char *tok, size_t hash, int64_t shares, int64_t price,
                             int64_t now) {
    int r = risk_reason(t, tok, hash, shares, price, now);
    if (r < 0 && t->store) {
        int verdict = t->store(t->store_ctx, tok, shares, price);
        if (verdict < 0) {
            t->failed_store = 1;
            return -2;
        }
        if (verdict > 0)
            r = R_STORE;
    }
    if (r >= 0) {
        t->rejects[r]++;
        return r;
    }
    if (token_add(t, tok, hash) < 0) {
        t->failed_store = 0;
        return -2;
    }
    *ring_next(t) = now;
    if (t->ring_count < t->per_second)
        t->ring_count++;
    else if (++t->ring_head == t->per_second)
        t->ring_head = 0;
    t->passed++;
    return -1;
}

int trader_risk_check(TraderPath *t, const unsigned char *tok, int64_t shares, int64_t price, int64_t now) {
    return risk_check_hashed(t, tok, token_hash(tok), shares, price, now);
}

/* ---- the per-packet path ---- */

/* An ask added at or below the limit: the strategy's trigger (m is on the trigger instrument). */
static inline int is_trigger(const TraderPath *t, const unsigned char *m, uint16_t len) {
    return (m[0] == 'A' || m[0] == 'F') && len >= 36 && m[19] == 'S' && be32(m + 32) <= t->limit;
}

static const char DIGIT_PAIRS[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* The prefix, then id's last 12 decimal digits (two per step: half the dependent divisions). */
static void make_token(const TraderPath *t, uint64_t id, unsigned char *tok) {
    tok[0] = (unsigned char)t->prefix[0];
    tok[1] = (unsigned char)t->prefix[1];
    for (int k = TRADER_TOKEN_LEN - 2; k >= 2; k -= 2, id /= 100)
        memcpy(tok + k, DIGIT_PAIRS + 2 * (id % 100), 2);
}

/* The packet's message blocks (after the MoldUDP64 header): their count, or -1 when the blocks do not
 * fill the packet exactly. */
static int split_blocks(const unsigned char *d, size_t len, const unsigned char **msg, uint16_t *mlen) {
    size_t pos = HEADER_LEN;
    int n = 0;
    while (pos < len) {
        if (pos + 2 > len || n == TRADER_MAX_BLOCKS)
            return -1;
        uint16_t l = be16(d + pos);
        if (l == 0 || pos + 2 + l > len)
            return -1;
        msg[n] = d + pos + 2;
        mlen[n++] = l;
        pos += 2 + l;
    }
    return n;
}

/* Start every cache miss the trigger will take at once, so they overlap instead of queueing: the orders'
 * hash slots and, for a trigger, its token's slot and the throttle's next entry. Writes the first trigger's
 * token into tok and its hash into *hash, and returns its index, or -1. */
static int prefetch_for(const TraderPath *t, const BookCore *books, uint64_t seq, const unsigned char **msg,
                        const uint16_t *mlen, unsigned n, unsigned char *tok, size_t *hash) {
    int trigger = -1;
    for (unsigned i = 0; i < n; i++) {
        const unsigned char *m = msg[i];
        if (mlen[i] < 3 || be16(m + 1) != t->locate)
            continue;
        book_prefetch_message(books, m, mlen[i]);
        if (trigger < 0 && is_trigger(t, m, mlen[i])) {
            trigger = (int)i;
            make_token(t, seq + i, tok);
            *hash = token_hash(tok);
            __builtin_prefetch(&t->tokens[*hash & (t->tok_cap - 1)], 1);
            __builtin_prefetch(ring_next(t), 1);
        }
    }
    return trigger;
}

static void encode(TraderPath *t, const unsigned char *tok, uint32_t shares, uint32_t price, int64_t now) {
    if (t->has_fix) {
        t->out_len = fix_new_order(&t->fix, t->out, tok, TRADER_TOKEN_LEN, shares, price, now);
        return;
    }
    memcpy(t->out, t->frame, t->frame_len);
    memcpy(t->out + t->token_off, tok, TRADER_TOKEN_LEN);
    put_be32(t->out + t->shares_off, shares);
    put_be32(t->out + t->price_off, price);
    t->out_len = t->frame_len;
}

static int64_t *row(TraderPath *t) { return t->rows + t->nrows * STAGES; }

int trader_on_packet(TraderPath *t, const unsigned char *d, size_t len, int64_t t_kernel, int64_t t_user) {
    t->out_len = 0;
    t->pending_row = NULL;
    t->ndeferred = 0;
    t->packets++;
    if (len < HEADER_LEN) {
        t->malformed++;
        return 0;
    }
    if (!t->have_session) {
        memcpy(t->session, d, 10);
        t->have_session = 1;
    } else if (memcmp(t->session, d, 10) != 0) {
        t->malformed++;
        return 0;
    }
    uint64_t seq = be64(d + 10);
    unsigned count = be16(d + 18);
    if (count == 0xFFFF) {
        t->ended = 1;
        return 0;
    }
    if (t->expected && seq > t->expected) {
        t->gaps++;
        trader_kill(t, "feed gap: orders stopped (fail safe)");
    }
    if (count == 0) {
        t->heartbeats++;
        return 0;
    }
    if (t->expected && seq + count <= t->expected) {
        t->duplicates++;
        return 0;
    }
    const unsigned char *msg[TRADER_MAX_BLOCKS];
    uint16_t mlen[TRADER_MAX_BLOCKS];
    int n = split_blocks(d, len, msg, mlen);
    if (n < 0 || (unsigned)n != count) {
        t->malformed++;
        return 0;
    }
    unsigned char tok[TRADER_TOKEN_LEN];
    size_t hash = 0;
    prefetch_for(t, t->books, seq, msg, mlen, (unsigned)n, tok, &hash);
    int64_t t_decoded = clock_stamp(&t->clock);
    int trigger = -1;
    for (unsigned i = 0; i < (unsigned)n; i++) {
        const unsigned char *m = msg[i];
        if (mlen[i] < 3 || be16(m + 1) != t->locate) {
            t->deferred[t->ndeferred] = m;
            t->deferred_len[t->ndeferred++] = mlen[i];
            continue;
        }
        if (book_apply(t->books, m, mlen[i], 0) < 0) {
            t->failed_store = 0;
            return -1;
        }
        if (trigger < 0 && is_trigger(t, m, mlen[i]))
            trigger = (int)i;
        else if ((m[0] == 'P' && mlen[i] == 44) || (m[0] == 'C' && mlen[i] == 36))
            t->last_trade = be32(m + 32) ? be32(m + 32) : t->last_trade;
    }
    t->messages += n;
    t->expected = seq + count;
    int64_t t_book = clock_stamp(&t->clock);
    if (trigger < 0)
        return 0;
    t->triggers++;
    uint32_t ask;
    uint64_t ask_shares;
    book_best(t->books, t->locate, 1, &ask, &ask_shares);
    if (ask == 0 || ask > t->limit)
        return 0;
    uint32_t shares = be32(msg[trigger] + 20);
    if (shares > t->clip)
        shares = t->clip;
    int64_t t_decision = clock_stamp(&t->clock);
    int r = risk_check_hashed(t, tok, hash, shares, ask, t_decision);
    if (r == -2)
        return -1;
    int64_t t_risk = clock_stamp(&t->clock);
    if (r >= 0)
        return 0;
    encode(t, tok, shares, ask, t_risk);
    int64_t t_encoded = clock_stamp(&t->clock);
    t->orders++;
    if (t->nrows < t->cap) {
        int64_t *s = row(t);
        s[0] = t_kernel, s[1] = t_user, s[2] = t_decoded, s[3] = t_book, s[4] = t_decision, s[5] = t_risk;
        s[6] = t_encoded, s[7] = t_encoded;
        t->pending_row = s;
        t->nrows++;
    }
    return 0;
}

int trader_finish_packet(TraderPath *t) {
    for (unsigned i = 0; i < t->ndeferred; i++)
        if (book_apply(t->books, t->deferred[i], t->deferred_len[i], 0) < 0) {
            t->failed_store = 0;
            return -1;
        }
    t->ndeferred = 0;
    return 0;
}

/* Keep the next trigger's path in cache while waiting for it (busy-poll only). Code and data that the path has
 * not touched for a few hundred µs are out of the caches on a shared host, and a cold path costs twice a warm one.
 * So a made-up trigger packet goes through the shadow trader (the same on_packet: decode, its own book, the
 * decision, its own risk state, encode; nothing is sent), the shadow is put back as it was (the order deleted
 * from its book, its throttle and rows emptied, its tokens cleared now and then), and the real trader's own
 * state, its book (a line in every page of its order map, its instrument), a line in every page of its token
 * table and throttle, and its next stage row are prefetched. The real trader's state is not changed. */
void trader_warm(TraderPath *t) {
    TraderPath *s = t->shadow;
    if (s) {
        unsigned char packet[HEADER_LEN + 2 + 36] = "WARMUP0001", del[19] = {'D'};
        uint64_t seq = s->expected ? s->expected : 1;
        for (int k = 0; k < 8; k++)
            packet[17 - k] = (unsigned char)(seq >> (8 * k));
        packet[19] = 1;                 /* one message */
        packet[HEADER_LEN + 1] = 36;    /* its length */
        unsigned char *add = packet + HEADER_LEN + 2;
        add[0] = 'A';
        add[1] = del[1] = (unsigned char)(t->locate >> 8), add[2] = del[2] = (unsigned char)t->locate;
        uint64_t ref = ++s->shadow_ref;
        for (int k = 0; k < 8; k++)
            add[18 - k] = del[18 - k] = (unsigned char)(ref >> (8 * k));
        add[19] = 'S';
        put_be32(add + 20, 100);
        put_be32(add + 32, t->limit);
        s->last_trade = t->last_trade;
        /* out of memory in the shadow: the next real packet will say so */
        if (trader_on_packet(s, packet, sizeof packet, 0, clock_origin(&s->clock)) == 0)
            (void)trader_finish_packet(s);
        s->out_len = 0;
        (void)book_apply(s->books, del, sizeof del, 0);
        s->ring_count = 0, s->nrows = 0;
        if (s->tok_count >= 64) {
            memset(s->tokens, 0, s->tok_cap * sizeof(TokenSlot));
            s->tok_count = 0;
        }
    }
    book_warm(t->books, t->locate);
    /* a line in every page of the token table and the throttle: a trigger touches one of each at random, and in a
     * VM a TLB miss is a two-level page walk (these misses were most of the path's cost when cold) */
    for (size_t at = 0; at < t->tok_cap * sizeof(TokenSlot); at += 4096)
        __builtin_prefetch((const char *)t->tokens + at, 1);
    for (size_t at = 0; at < (size_t)t->per_second * sizeof(int64_t); at += 4096)
        __builtin_prefetch((const char *)t->ring + at, 1);
    for (size_t at = 0; at < sizeof *t; at += 64)
        __builtin_prefetch((const char *)t + at, 1);
    __builtin_prefetch(ring_next(t), 1);
    if (t->nrows < t->cap)
        __builtin_prefetch(row(t), 1);
}

int trader_init(TraderPath *t, BookCore *books, const TraderParams *p, const char **why) {
    memset(t, 0, sizeof *t);
    *why = NULL;
    if (!books)
        *why = "no books";
    else if (p->prefix[0] == 0 || p->prefix[1] == 0)
        *why = "the token prefix must be 2 characters";
    else if (p->frame_len > TRADER_FRAME_MAX || p->token_off + TRADER_TOKEN_LEN > p->frame_len ||
             p->shares_off + 4 > p->frame_len || p->price_off + 4 > p->frame_len)
        *why = "the order frame's offsets do not fit it";
    else if (p->per_second <= 0)
        *why = "max_orders_per_second must be positive";
    else if (!p->rows && p->rows_cap)
        *why = "no rows";
    if (*why)
        return -1;
    t->books = books;
    memcpy(t->frame, p->frame, p->frame_len);
    t->frame_len = p->frame_len;
    t->locate = p->locate, t->limit = p->limit, t->clip = p->clip;
    memcpy(t->prefix, p->prefix, 2);
    t->token_off = p->token_off, t->shares_off = p->shares_off, t->price_off = p->price_off;
    t->max_shares = p->max_shares, t->max_notional = p->max_notional, t->band_bps = p->band_bps;
    t->per_second = p->per_second, t->last_trade = p->last_trade;
    t->rows = p->rows, t->cap = p->rows_cap, t->acks = p->acks;
    if (p->fix) {
        t->fix = *p->fix;
        t->has_fix = 1;
    }
    t->clock.ns_per_tick = p->tsc ? calibrate_tsc(20) : 0.0;
    t->tok_cap = 1024;
    t->tokens = calloc(t->tok_cap, sizeof(TokenSlot));
    t->ring = calloc((size_t)p->per_second, sizeof(int64_t));
    if (!t->tokens || !t->ring) {
        trader_free(t);
        return -2;
    }
    return 0;
}

void trader_free(TraderPath *t) {
    free(t->tokens);
    free(t->ring);
    t->tokens = NULL, t->ring = NULL;
}

TraderRunEnd trader_run(TraderPath *t, int udp, int tcp, int wait_ms, int busy) {
    static unsigned char buf[65536];
    Floor *f = t->floor;
    const int fds[4] = {udp, tcp, f ? f->udp : -1, f ? f->tcp : -1};
    int64_t deadline = now_ns() + (int64_t)wait_ms * 1000000LL;
    for (;;) {
        int64_t t_kernel = 0;
        /* Paired: the floor's socket is read before the trader's on every other pass. A recvmsg that finds data
         * right after another one (that found none) runs on a warm kernel path, which was worth about 0.5 µs
         * here; alternating gives each side that advantage equally often. */
        int floor_first = f && (++t->passes & 1);
        ssize_t n = 0;
        if (floor_first)
            n = serve_floor(f, buf, sizeof buf);
        if (n == 0)
            n = receive(udp, buf, sizeof buf, &t_kernel);
        if (n == 0 && f && !floor_first)
            n = serve_floor(f, buf, sizeof buf);
        if (n == FLOOR_SERVED)
            continue;
        if (n == FLOOR_SEND_FAILED) {
            trader_kill(t, TRADER_EXCHANGE_LOST);
            return RUN_SEND_FAILED;
        }
        if (n < 0) {
            if (errno == EINTR)
                return RUN_SIGNAL;
            return RUN_RECV_ERROR;
        }
        if (n == 0) {
            int w = wait_feed(fds, wait_ms, busy);
            if (w >= 2) {
                if (w == 2 && t->awaiting) { /* the order round trip at the gateway ends here */
                    if (t->acks)
                        t->acks[t->awaiting - 1] = now_ns();
                    t->awaiting = 0;
                }
                if (drain_tcp(tcp, &t->reply_bytes) < 0 || (f && drain_tcp(f->tcp, &f->reply_bytes) < 0)) {
                    trader_kill(t, TRADER_EXCHANGE_LOST);
                    return RUN_EXCHANGE_LOST;
                }
                continue;
            }
            if (!busy) {
                if (w == 0)
                    return RUN_TIMEOUT;
                continue;
            }
            int64_t now = now_ns();
            if (now > deadline)
                return RUN_TIMEOUT;
            if (now - t->warmed_at > WARM_EVERY_NS) {
                trader_warm(t);
                t->warmed_at = now;
            }
            continue;
        }
        if (trader_on_packet(t, buf, (size_t)n, t_kernel, clock_origin(&t->clock)) < 0)
            return RUN_FAILED;
        if (t->out_len) {
            ssize_t s = send(tcp, t->out, t->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (t->pending_row) {
                t->pending_row[7] = clock_stamp(&t->clock);
                t->awaiting = (size_t)(t->pending_row - t->rows) / STAGES + 1;
            }
            if (s != (ssize_t)t->out_len) {
                trader_kill(t, TRADER_EXCHANGE_LOST);
                return RUN_SEND_FAILED;
            }
            t->sent++;
        }
        if (trader_finish_packet(t) < 0)
            return RUN_FAILED;
        if (t->ended)
            return RUN_END;
        if (busy && now_ns() > deadline)
            return RUN_TIMEOUT;
    }
}
