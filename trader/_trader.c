/*
 * The trader's per-packet path in C: MoldUDP64 → ITCH decode → book (feed_handler._book through its
 * C API) → trigger → pre-trade risk → OUCH encode → send, with a timestamp after each stage (the stage row
 * of t2t_common.h). trader/trader_core.py is the reference (same rules, same order frames, same reject
 * reasons); the differential tests feed both the same packets. The floor (floor.h) is served here too:
 * alone by reflect(), or on the trader's own loop in paired mode.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "book_api.h"
#include "fix_order.h"
#include "floor.h"
#include "named_counts.h"

#define MAX_BLOCKS 256
#define TOKEN_LEN 14
#define WARM_EVERY_NS 20000 /* the busy-poll loop warms the path this often (see warm) */
enum { R_KILL, R_DUP, R_QTY, R_NOTIONAL, R_BAND, R_THROTTLE, R_STORE, R_COUNT };
static const char *REASONS[R_COUNT] = {"kill_switch", "duplicate_token", "max_quantity", "max_notional",
                                       "price_band", "throttle", "store"};
static BookApi *API;

typedef struct { unsigned char token[TOKEN_LEN]; uint8_t used; } TokenSlot;

typedef struct Trader {
    PyObject_HEAD
    PyObject *books;
    /* optional: a trader of its own (own book, tokens, rows) that the idle loop sends made-up triggers through,
     * so the code of the path is in cache when a real trigger comes */
    struct Trader *shadow;
    uint64_t shadow_ref;
    int64_t warmed_at;
    uint64_t passes; /* of the run loop */
    PyObject *store; /* optional callable(token, shares, price) -> None | reason: the slower store */
    uint16_t locate;
    uint32_t limit, clip;
    char prefix[2];
    unsigned char session[10];
    int have_session;
    uint64_t expected;
    unsigned char frame[128];
    Py_ssize_t frame_len, token_off, shares_off, price_off;
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
    Py_buffer rows;
    Py_ssize_t nrows, cap;
    int64_t *pending_row; /* the row of the order in `out`, until its send time is known */
    /* Messages of other instruments, applied after the order is sent: they cannot change the trigger
     * instrument's book, so they are off the critical path (finish_packet). */
    const unsigned char *deferred[MAX_BLOCKS];
    uint16_t deferred_len[MAX_BLOCKS];
    unsigned ndeferred;
    unsigned char out[256];
    /* FIX 4.4 orders instead of OUCH (the frame is then unused) */
    FixOrder fix;
    int has_fix;
    Py_ssize_t out_len;
    StageClock clock;
    /* Paired mode: the floor served by the same loop, trigger by trigger (attach_floor). */
    Floor floor;
    int has_floor;
} Trader;

#define EXCHANGE_LOST "exchange connection lost: orders stopped (fail safe)"

static void kill(Trader *t, const char *why) {
    if (!t->killed[0])
        snprintf(t->killed, sizeof t->killed, "%s", why);
}

/* ---- risk: the same rules as trader/risk.py ---- */

static size_t token_hash(const unsigned char *tok) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < TOKEN_LEN; i++)
        h = (h ^ tok[i]) * 1099511628211ULL;
    return (size_t)h;
}

static int token_seen(Trader *t, const unsigned char *tok) {
    size_t mask = t->tok_cap - 1;
    for (size_t i = token_hash(tok) & mask; t->tokens[i].used; i = (i + 1) & mask)
        if (memcmp(t->tokens[i].token, tok, TOKEN_LEN) == 0)
            return 1;
    return 0;
}

static int token_add(Trader *t, const unsigned char *tok) {
    if (2 * (t->tok_count + 1) > t->tok_cap) {
        size_t old_cap = t->tok_cap;
        TokenSlot *old = t->tokens, *fresh = PyMem_Calloc(old_cap * 2, sizeof(TokenSlot));
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
        PyMem_Free(old);
    }
    size_t mask = t->tok_cap - 1, i = token_hash(tok) & mask;
    while (t->tokens[i].used)
        i = (i + 1) & mask;
    memcpy(t->tokens[i].token, tok, TOKEN_LEN);
    t->tokens[i].used = 1;
    t->tok_count++;
    return 0;
}

static int risk_reason(Trader *t, const unsigned char *tok, int64_t shares, int64_t price, int64_t now) {
    if (t->killed[0])
        return R_KILL;
    if (token_seen(t, tok))
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

/* The throttle's entry for the next order: the next free one, or the oldest when the ring is full. */
static inline int64_t *ring_next(const Trader *t) {
    return &t->ring[t->ring_count < t->per_second ? (t->ring_head + t->ring_count) % t->per_second : t->ring_head];
}

/* -1 passed, else the reason index; -2 on a Python error (out of memory, or the store raised). */
static int risk_check(Trader *t, const unsigned char *tok, int64_t shares, int64_t price, int64_t now) {
    int r = risk_reason(t, tok, shares, price, now);
    if (r < 0 && t->store) {
        PyObject *res = PyObject_CallFunction(t->store, "y#LL", (const char *)tok, (Py_ssize_t)TOKEN_LEN,
                                              (long long)shares, (long long)price);
        if (!res)
            return -2;
        if (res != Py_None)
            r = R_STORE;
        Py_DECREF(res);
    }
    if (r >= 0) {
        t->rejects[r]++;
        return r;
    }
    if (token_add(t, tok) < 0) {
        PyErr_NoMemory();
        return -2;
    }
    *ring_next(t) = now;
    if (t->ring_count < t->per_second)
        t->ring_count++;
    else
        t->ring_head = (t->ring_head + 1) % t->per_second;
    t->passed++;
    return -1;
}

/* ---- the per-packet path ---- */

/* An ask added at or below the limit: the strategy's trigger (m is on the trigger instrument). */
static inline int is_trigger(const Trader *t, const unsigned char *m, uint16_t len) {
    return (m[0] == 'A' || m[0] == 'F') && len >= 36 && m[19] == 'S' && be32(m + 32) <= t->limit;
}

static void make_token(const Trader *t, uint64_t id, unsigned char *tok) {
    tok[0] = (unsigned char)t->prefix[0];
    tok[1] = (unsigned char)t->prefix[1];
    for (int k = TOKEN_LEN - 1; k >= 2; k--, id /= 10)
        tok[k] = (unsigned char)('0' + id % 10);
}

/* The packet's message blocks (after the MoldUDP64 header): their count, or -1 when the blocks do not
 * fill the packet exactly. */
static int split_blocks(const unsigned char *d, Py_ssize_t len, const unsigned char **msg, uint16_t *mlen) {
    Py_ssize_t pos = HEADER_LEN;
    int n = 0;
    while (pos < len) {
        if (pos + 2 > len || n == MAX_BLOCKS)
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
 * token into tok and returns its index, or -1. */
static int prefetch_for(const Trader *t, PyObject *books, uint64_t seq, const unsigned char **msg,
                        const uint16_t *mlen, unsigned n, unsigned char *tok) {
    int trigger = -1;
    for (unsigned i = 0; i < n; i++) {
        const unsigned char *m = msg[i];
        if (mlen[i] < 3 || be16(m + 1) != t->locate)
            continue;
        API->prefetch(books, m, mlen[i]);
        if (trigger < 0 && is_trigger(t, m, mlen[i])) {
            trigger = (int)i;
            make_token(t, seq + i, tok);
            __builtin_prefetch(&t->tokens[token_hash(tok) & (t->tok_cap - 1)], 1);
            __builtin_prefetch(ring_next(t), 1);
        }
    }
    return trigger;
}

static void encode(Trader *t, const unsigned char *tok, uint32_t shares, uint32_t price, int64_t now) {
    if (t->has_fix) {
        t->out_len = (Py_ssize_t)fix_new_order(&t->fix, t->out, tok, TOKEN_LEN, shares, price, now);
        return;
    }
    memcpy(t->out, t->frame, (size_t)t->frame_len);
    memcpy(t->out + t->token_off, tok, TOKEN_LEN);
    put_be32(t->out + t->shares_off, shares);
    put_be32(t->out + t->price_off, price);
    t->out_len = t->frame_len;
}

static int64_t *row(Trader *t) { return (int64_t *)t->rows.buf + t->nrows * STAGES; }

/* Processes one packet; leaves an order frame in t->out (out_len > 0) and a stage row. -1 on a Python error. */
static int on_packet(Trader *t, const unsigned char *d, Py_ssize_t len, int64_t t_kernel, int64_t t_user) {
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
        kill(t, "feed gap: orders stopped (fail safe)");
    }
    if (count == 0) {
        t->heartbeats++;
        return 0;
    }
    if (t->expected && seq + count <= t->expected) {
        t->duplicates++;
        return 0;
    }
    const unsigned char *msg[MAX_BLOCKS];
    uint16_t mlen[MAX_BLOCKS];
    int n = split_blocks(d, len, msg, mlen);
    if (n < 0 || (unsigned)n != count) {
        t->malformed++;
        return 0;
    }
    unsigned char tok[TOKEN_LEN];
    prefetch_for(t, t->books, seq, msg, mlen, (unsigned)n, tok);
    int64_t t_decoded = clock_stamp(&t->clock);
    int trigger = -1;
    for (unsigned i = 0; i < (unsigned)n; i++) {
        const unsigned char *m = msg[i];
        if (mlen[i] < 3 || be16(m + 1) != t->locate) {
            t->deferred[t->ndeferred] = m;
            t->deferred_len[t->ndeferred++] = mlen[i];
            continue;
        }
        if (API->apply(t->books, m, mlen[i]) < 0) {
            PyErr_NoMemory();
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
    API->best(t->books, t->locate, 1, &ask, &ask_shares);
    if (ask == 0 || ask > t->limit)
        return 0;
    uint32_t shares = be32(msg[trigger] + 20);
    if (shares > t->clip)
        shares = t->clip;
    int64_t t_decision = clock_stamp(&t->clock);
    int r = risk_check(t, tok, shares, ask, t_decision);
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

/* The rest of the packet, after the order (if any) is on its way. */
static int finish_packet(Trader *t) {
    for (unsigned i = 0; i < t->ndeferred; i++)
        if (API->apply(t->books, t->deferred[i], t->deferred_len[i]) < 0) {
            PyErr_NoMemory();
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
static void warm(Trader *t) {
    Trader *s = t->shadow;
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
        if (on_packet(s, packet, sizeof packet, 0, clock_origin(&s->clock)) < 0 || finish_packet(s) < 0)
            PyErr_Clear(); /* out of memory in the shadow: the next real packet will say so */
        s->out_len = 0;
        if (API->apply(s->books, del, sizeof del) < 0)
            PyErr_Clear();
        s->ring_count = 0, s->nrows = 0;
        if (s->tok_count >= 64) {
            memset(s->tokens, 0, s->tok_cap * sizeof(TokenSlot));
            s->tok_count = 0;
        }
    }
    API->warm(t->books, t->locate);
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

static PyTypeObject TraderType;

static PyObject *Trader_run(Trader *t, PyObject *args, PyObject *kw) {
    static char *names[] = {"udp_fd", "tcp_fd", "wait_ms", "busy", NULL};
    int udp, tcp, wait_ms = 100, busy = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ii|ip", names, &udp, &tcp, &wait_ms, &busy))
        return NULL;
    static unsigned char buf[65536];
    Floor *f = t->has_floor ? &t->floor : NULL;
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
            kill(t, EXCHANGE_LOST);
            return PyUnicode_FromString("send_failed");
        }
        if (n < 0) {
            if (errno == EINTR)
                return PyUnicode_FromString("signal");
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (n == 0) {
            int w = wait_feed(fds, wait_ms, busy);
            if (w == 2) {
                if (drain_tcp(tcp, &t->reply_bytes) < 0 || (f && drain_tcp(f->tcp, &f->reply_bytes) < 0)) {
                    kill(t, EXCHANGE_LOST);
                    return PyUnicode_FromString("exchange_lost");
                }
                continue;
            }
            if (!busy) {
                if (w == 0)
                    return PyUnicode_FromString("timeout");
                continue;
            }
            int64_t now = now_ns();
            if (now > deadline)
                return PyUnicode_FromString("timeout");
            if (now - t->warmed_at > WARM_EVERY_NS) {
                warm(t);
                t->warmed_at = now;
            }
            continue;
        }
        if (on_packet(t, buf, n, t_kernel, clock_origin(&t->clock)) < 0)
            return NULL;
        if (t->out_len) {
            ssize_t s = send(tcp, t->out, (size_t)t->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (t->pending_row)
                t->pending_row[7] = clock_stamp(&t->clock);
            if (s != t->out_len) {
                kill(t, EXCHANGE_LOST);
                return PyUnicode_FromString("send_failed");
            }
            t->sent++;
        }
        if (finish_packet(t) < 0)
            return NULL;
        if (t->ended)
            return PyUnicode_FromString("end");
        if (busy && now_ns() > deadline)
            return PyUnicode_FromString("timeout");
    }
}

static PyObject *Trader_attach_floor(Trader *t, PyObject *args, PyObject *kw) {
    static char *names[] = {"udp_fd", "tcp_fd", "frame", "rows", "seq_off", NULL};
    int udp, tcp;
    PyObject *frame, *rows;
    Py_ssize_t seq_off = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiOO|n", names, &udp, &tcp, &frame, &rows, &seq_off))
        return NULL;
    if (t->has_floor)
        return PyErr_Format(PyExc_ValueError, "a floor is attached already");
    if (floor_init(&t->floor, udp, tcp, frame, rows, seq_off) < 0)
        return NULL;
    t->has_floor = 1;
    Py_RETURN_NONE;
}

static PyObject *Trader_on_packet(Trader *t, PyObject *args) {
    Py_buffer b;
    long long t_kernel = 0;
    if (!PyArg_ParseTuple(args, "y*|L", &b, &t_kernel))
        return NULL;
    int r = on_packet(t, b.buf, b.len, t_kernel, clock_origin(&t->clock));
    if (r == 0)
        r = finish_packet(t);
    PyBuffer_Release(&b);
    if (r < 0)
        return NULL;
    return PyBytes_FromStringAndSize((const char *)t->out, t->out_len);
}

static PyObject *Trader_check_order(Trader *t, PyObject *args) {
    Py_buffer tok;
    long long shares, price, now;
    if (!PyArg_ParseTuple(args, "y*LLL", &tok, &shares, &price, &now))
        return NULL;
    if (tok.len != TOKEN_LEN) {
        PyBuffer_Release(&tok);
        return PyErr_Format(PyExc_ValueError, "token must be %d bytes", TOKEN_LEN);
    }
    int r = risk_check(t, tok.buf, shares, price, now);
    PyBuffer_Release(&tok);
    if (r == -2)
        return NULL;
    if (r < 0)
        Py_RETURN_NONE;
    return PyUnicode_FromString(REASONS[r]);
}

static PyObject *Trader_warm(Trader *t, PyObject *Py_UNUSED(ignored)) {
    warm(t);
    Py_RETURN_NONE;
}

static PyObject *Trader_kill(Trader *t, PyObject *arg) {
    const char *why = PyUnicode_AsUTF8(arg);
    if (!why)
        return NULL;
    kill(t, why);
    Py_RETURN_NONE;
}

static PyObject *Trader_stats(Trader *t, PyObject *Py_UNUSED(ignored)) {
    PyObject *rejects = named_counts(REASONS, t->rejects, R_COUNT);
    if (!rejects)
        return NULL;
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsKsNsssnsisLsssnsKsKsKsK}", "packets", t->packets, "messages", t->messages,
                         "malformed", t->malformed, "gaps", t->gaps, "duplicates", t->duplicates, "heartbeats",
                         t->heartbeats, "triggers", t->triggers, "orders", t->orders, "sent", t->sent,
                         "reply_bytes", t->reply_bytes, "passed",
                         t->passed, "rejects", rejects, "killed", t->killed, "rows", t->nrows, "ended", t->ended,
                         "last_trade", (long long)t->last_trade, "stage_clock",
                         t->clock.ns_per_tick > 0 ? "tsc" : "clock_gettime", "floor_rows", t->floor.nrows,
                         "floor_datagrams", t->floor.datagrams, "floor_reply_bytes", t->floor.reply_bytes,
                         "warm_orders", t->shadow ? t->shadow->orders : 0, "fix_seq", t->fix.seq);
}

/* fix = (SenderCompID, TargetCompID, Symbol, first MsgSeqNum): printable, under FIX_NAME_MAX characters. */
static int fix_init(FixOrder *f, PyObject *fix) {
    const char *names[3];
    unsigned long long seq;
    if (!PyArg_ParseTuple(fix, "sssK", &names[0], &names[1], &names[2], &seq))
        return -1;
    char *dest[3] = {f->sender, f->target, f->symbol};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(names[k]);
        int printable = n > 0 && n < FIX_NAME_MAX;
        for (size_t i = 0; i < n && printable; i++)
            printable = names[k][i] > ' ' && names[k][i] < 127 && names[k][i] != '=';
        if (!printable) {
            PyErr_Format(PyExc_ValueError, "fix: '%s' must be 1 to %d printable characters", names[k],
                         FIX_NAME_MAX - 1);
            return -1;
        }
        memcpy(dest[k], names[k], n + 1);
    }
    f->seq = seq;
    f->stamp_sec = -1;
    return 0;
}

static int Trader_init(Trader *t, PyObject *args, PyObject *kw) {
    static char *names[] = {"books", "locate", "limit", "clip", "prefix", "frame", "token_off", "shares_off",
                            "price_off", "rows", "max_order_shares", "max_notional", "price_band_bps",
                            "max_orders_per_second", "last_trade", "store", "tsc", "shadow", "fix", NULL};
    PyObject *books, *store = Py_None, *shadow = Py_None, *fix = Py_None;
    int tsc = 0;
    unsigned int locate, limit, clip;
    const char *prefix;
    Py_buffer frame;
    Py_ssize_t token_off, shares_off, price_off;
    long long max_shares, band, per_second, last_trade;
    double notional;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OIIIsy*nnnw*LdLLL|OpOO", names, &books, &locate, &limit, &clip,
                                     &prefix, &frame, &token_off, &shares_off, &price_off, &t->rows, &max_shares,
                                     &notional, &band, &per_second, &last_trade, &store, &tsc, &shadow, &fix))
        return -1;
    if (fix != Py_None && fix_init(&t->fix, fix) < 0) {
        PyBuffer_Release(&frame);
        PyBuffer_Release(&t->rows);
        return -1;
    }
    t->has_fix = fix != Py_None;
    int ok = PyObject_TypeCheck(books, API->type) &&
             (shadow == Py_None || (PyObject_TypeCheck(shadow, &TraderType) && shadow != (PyObject *)t &&
                                    !((Trader *)shadow)->shadow && ((Trader *)shadow)->cap > 0 &&
                                    ((Trader *)shadow)->books != books)) &&
             locate < 65536 && strlen(prefix) == 2 &&
             frame.len <= (Py_ssize_t)sizeof t->frame && token_off + TOKEN_LEN <= frame.len &&
             shares_off + 4 <= frame.len && price_off + 4 <= frame.len && per_second > 0 &&
             t->rows.len % (STAGES * 8) == 0;
    if (!ok) {
        PyBuffer_Release(&frame);
        PyBuffer_Release(&t->rows);
        PyErr_SetString(PyExc_ValueError, "Trader: bad books, shadow, locate, prefix, frame offsets, limits or rows");
        return -1;
    }
    memcpy(t->frame, frame.buf, (size_t)frame.len);
    t->frame_len = frame.len;
    PyBuffer_Release(&frame);
    Py_INCREF(books);
    t->books = books;
    if (shadow != Py_None) {
        Py_INCREF(shadow);
        t->shadow = (Trader *)shadow;
    }
    if (store != Py_None) {
        Py_INCREF(store);
        t->store = store;
    }
    t->locate = (uint16_t)locate, t->limit = limit, t->clip = clip;
    memcpy(t->prefix, prefix, 2);
    t->token_off = token_off, t->shares_off = shares_off, t->price_off = price_off;
    t->max_shares = max_shares, t->max_notional = notional, t->band_bps = band, t->per_second = per_second;
    t->last_trade = last_trade;
    t->clock.ns_per_tick = tsc ? calibrate_tsc(20) : 0.0;
    if (t->shadow)
        t->shadow->clock.ns_per_tick = t->clock.ns_per_tick;
    t->cap = t->rows.len / (STAGES * 8);
    t->tok_cap = 1024;
    t->tokens = PyMem_Calloc(t->tok_cap, sizeof(TokenSlot));
    t->ring = PyMem_Calloc((size_t)per_second, sizeof(int64_t));
    if (!t->tokens || !t->ring) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void Trader_dealloc(Trader *t) {
    Py_XDECREF(t->books);
    Py_XDECREF((PyObject *)t->shadow);
    floor_release(&t->floor);
    Py_XDECREF(t->store);
    if (t->rows.obj)
        PyBuffer_Release(&t->rows);
    PyMem_Free(t->tokens);
    PyMem_Free(t->ring);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef Trader_methods[] = {
    {"run", (PyCFunction)(void (*)(void))Trader_run, METH_VARARGS | METH_KEYWORDS,
     "run(udp_fd, tcp_fd, wait_ms=100, busy=False) -> 'timeout' | 'end' | 'send_failed' | 'exchange_lost' | 'signal'"},
    {"attach_floor", (PyCFunction)(void (*)(void))Trader_attach_floor, METH_VARARGS | METH_KEYWORDS,
     "attach_floor(udp_fd, tcp_fd, frame, rows, seq_off=-1): run() serves the floor's feed too, datagram by "
     "datagram (paired mode)"},
    {"on_packet", (PyCFunction)Trader_on_packet, METH_VARARGS, "on_packet(packet, t_kernel=0) -> order frame or b''"},
    {"check_order", (PyCFunction)Trader_check_order, METH_VARARGS,
     "check_order(token, shares, price, now_ns) -> None | reason (the risk gate alone)"},
    {"warm", (PyCFunction)Trader_warm, METH_NOARGS,
     "One pass of the idle loop's cache warming (the busy-poll loop runs it between packets); changes nothing."},
    {"kill", (PyCFunction)Trader_kill, METH_O, "The kill switch: no order passes from now on."},
    {"stats", (PyCFunction)Trader_stats, METH_NOARGS, "Counters, rejects by reason, the kill reason."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TraderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "trader._trader.Trader",
    .tp_basicsize = sizeof(Trader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled trader path (see trader/trader_core.py for the reference).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Trader_init,
    .tp_dealloc = (destructor)Trader_dealloc,
    .tp_methods = Trader_methods,
};

/* The floor alone: every datagram from udp_fd through reflect_one. Returns (status, rows written, reply bytes
 * read); rows are written from `start` on. */
static PyObject *reflect(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"udp_fd", "tcp_fd", "frame", "rows", "start", "wait_ms", "busy", "seq_off", NULL};
    int udp, tcp, wait_ms = 100, busy = 0;
    PyObject *frame, *rows;
    Py_ssize_t start, seq_off = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiOOn|ipn", names, &udp, &tcp, &frame, &rows, &start, &wait_ms,
                                     &busy, &seq_off))
        return NULL;
    Floor f;
    if (floor_init(&f, udp, tcp, frame, rows, seq_off) < 0)
        return NULL;
    f.nrows = start;
    static unsigned char buf[65536];
    const int fds[4] = {udp, tcp, -1, -1};
    const char *status = "timeout";
    int64_t deadline = now_ns() + (int64_t)wait_ms * 1000000LL;
    for (;;) {
        int64_t t_kernel = 0;
        ssize_t n = receive(udp, buf, sizeof buf, &t_kernel);
        if (n < 0) {
            status = errno == EINTR ? "signal" : "recv_failed";
            break;
        }
        if (n == 0) {
            int w = wait_feed(fds, wait_ms, busy);
            if (w == 2) {
                if (drain_tcp(tcp, &f.reply_bytes) < 0) {
                    status = "exchange_lost";
                    break;
                }
                continue;
            }
            if (w == 0 && (!busy || now_ns() > deadline))
                break;
            continue;
        }
        int r = reflect_one(&f, buf, n, t_kernel, now_ns());
        if (r != 0) {
            status = r > 0 ? "end" : "send_failed";
            break;
        }
        if (busy && now_ns() > deadline)
            break;
    }
    floor_release(&f);
    return Py_BuildValue("(snK)", status, f.nrows, (unsigned long long)f.reply_bytes);
}

static PyMethodDef methods[] = {
    {"reflect", (PyCFunction)(void (*)(void))reflect, METH_VARARGS | METH_KEYWORDS,
     "The floor: UDP in → a frame out on TCP, no logic. -> (status, rows, reply bytes read)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_trader", "The compiled tick-to-trade path.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__trader(void) {
    PyObject *book_module = PyImport_ImportModule("feed_handler._book"); /* PyCapsule_Import needs it loaded */
    if (!book_module)
        return NULL;
    Py_DECREF(book_module);
    API = PyCapsule_Import(BOOK_API_CAPSULE, 0);
    if (!API || PyType_Ready(&TraderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&TraderType);
    if (PyModule_AddObject(m, "Trader", (PyObject *)&TraderType) < 0) {
        Py_DECREF(&TraderType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "STAGES", STAGES);
    return m;
}
