/* The trader's path core alone, without Python: built with the book core and run by tests/test_c_cores.py (with
 * ASan and UBSan). The packets are those of tests/test_risk_and_trader.py's feed(), made here byte by byte; the
 * exit status is the number of failed CHECKs. */
#include <string.h>

#include "book_core.h"
#include "byteorder.h"
#include "check.h"
#include "itch_build.h"
#include "path_core.h"

enum { LOCATE = 9, LIMIT = 1000000 };

/* An OUCH-shaped order frame: the offsets are what matters here. */
static const unsigned char FRAME[49] = {0, 47, 'U', 'O'};
static const size_t TOKEN_OFF = 4, SHARES_OFF = 19, PRICE_OFF = 31;

typedef struct { unsigned char d[512]; size_t len; unsigned count; } Packet;

static void packet(Packet *p, uint64_t seq) {
    memcpy(p->d, "S         ", 10);
    put_be64(p->d + 10, seq);
    p->len = HEADER_LEN, p->count = 0;
    put_be16(p->d + 18, 0);
}

static void add(Packet *p, uint64_t ref, char side, uint32_t price, uint32_t shares, uint16_t locate) {
    put_be16(p->d + p->len, 36);
    p->len += 2 + itch_add(p->d + p->len + 2, locate, ref, side, shares, price);
    put_be16(p->d + 18, (uint16_t)++p->count);
}

static int store_calls;
static int store_rejects_after_first(void *ctx, const unsigned char *token, int64_t shares, int64_t price) {
    (void)ctx, (void)token, (void)shares, (void)price;
    return store_calls++ > 0;
}

static int store_down(void *ctx, const unsigned char *token, int64_t shares, int64_t price) {
    (void)ctx, (void)token, (void)shares, (void)price;
    return -1;
}

static int new_trader(TraderPath *t, BookCore *b, int64_t *rows, size_t cap) {
    TraderParams params = {.locate = LOCATE, .limit = LIMIT, .clip = 100, .prefix = {'A', 'A'}, .frame = FRAME,
                           .frame_len = sizeof FRAME, .token_off = TOKEN_OFF, .shares_off = SHARES_OFF,
                           .price_off = PRICE_OFF, .rows = rows, .rows_cap = cap, .max_shares = 500,
                           .band_bps = 100, .per_second = 3, .last_trade = LIMIT, .max_notional = 60000.0};
    const char *why;
    if (book_init(b, 64) < 0)
        return -1;
    return trader_init(t, b, &params, &why);
}

int main(void) {
    BookCore books, shadow_books;
    TraderPath t, shadow;
    int64_t rows[16 * STAGES] = {0}, shadow_rows[STAGES];
    if (new_trader(&t, &books, rows, 16) < 0 || new_trader(&shadow, &shadow_books, shadow_rows, 1) < 0)
        return 100;
    Packet p;

    /* parameters that do not fit are refused, saying why */
    {
        TraderPath bad;
        TraderParams params = {.prefix = {'A', 'A'}, .frame = FRAME, .frame_len = sizeof FRAME, .token_off = 40,
                               .per_second = 1};
        const char *why;
        CHECK(trader_init(&bad, &books, &params, &why) == -1 && strstr(why, "offsets"));
    }

    packet(&p, 1); /* a resting book: no trigger */
    add(&p, 1, 'B', 999000, 500, LOCATE);
    add(&p, 2, 'S', 1001000, 500, LOCATE);
    add(&p, 3, 'B', 500000, 10, 4);
    CHECK(trader_on_packet(&t, p.d, p.len, 123, 1000) == 0 && t.out_len == 0 && trader_finish_packet(&t) == 0);

    packet(&p, 4); /* another instrument's add, then a trigger: the ask below the limit */
    add(&p, 4, 'B', 400000, 10, 4);
    add(&p, 5, 'S', 999900, 300, LOCATE);
    trader_warm(&t); /* the warming pass before it changes nothing the order depends on */
    CHECK(trader_on_packet(&t, p.d, p.len, 123, 1000) == 0);
    CHECK(t.out_len == sizeof FRAME && t.pending_row == rows);
    CHECK(memcmp(t.out + TOKEN_OFF, "AA000000000005", TRADER_TOKEN_LEN) == 0);
    CHECK(be32(t.out + SHARES_OFF) == 100 && be32(t.out + PRICE_OFF) == 999900);
    CHECK(t.ndeferred == 1 && trader_finish_packet(&t) == 0 && t.ndeferred == 0);
    CHECK(rows[0] == 123 && rows[1] == 1000 && rows[6] >= rows[2]);
    CHECK(t.orders == 1 && t.passed == 1 && t.triggers == 1 && t.messages == 5 && t.nrows == 1);

    /* the same token again is refused by the gate; a price outside the band too */
    CHECK(trader_risk_check(&t, (const unsigned char *)"AA000000000005", 10, 999900, 5) == R_DUP);
    CHECK(trader_risk_check(&t, (const unsigned char *)"AA000000000099", 10, 1200000, 5) == R_BAND);
    CHECK(trader_risk_check(&t, (const unsigned char *)"AA000000000098", 600, 999900, 5) == R_QTY);

    /* malformed, duplicate (old sequence) and a wrong session are counted and change nothing */
    CHECK(trader_on_packet(&t, (const unsigned char *)"\x01\x02", 2, 0, 0) == 0 && t.malformed == 1);
    packet(&p, 2);
    add(&p, 99, 'S', 1, 1, LOCATE);
    CHECK(trader_on_packet(&t, p.d, p.len, 0, 0) == 0 && t.duplicates == 1 && t.out_len == 0);
    packet(&p, 6);
    memcpy(p.d, "OTHER     ", 10);
    add(&p, 98, 'S', 999000, 10, LOCATE);
    CHECK(trader_on_packet(&t, p.d, p.len, 0, 0) == 0 && t.malformed == 2 && t.out_len == 0);
    packet(&p, 6); /* a count that does not match the blocks */
    add(&p, 97, 'S', 999000, 10, LOCATE);
    put_be16(p.d + 18, 2);
    CHECK(trader_on_packet(&t, p.d, p.len, 0, 0) == 0 && t.malformed == 3 && t.out_len == 0);

    /* a gap trips the kill switch: the next trigger is refused with its reason */
    packet(&p, 20);
    add(&p, 11, 'S', 980000, 100, LOCATE);
    CHECK(trader_on_packet(&t, p.d, p.len, 0, 0) == 0 && trader_finish_packet(&t) == 0);
    CHECK(t.gaps == 1 && strstr(t.killed, "feed gap") && t.out_len == 0 && t.rejects[R_KILL] == 1);

    /* end of session */
    packet(&p, 21);
    put_be16(p.d + 18, 0xFFFF);
    CHECK(trader_on_packet(&t, p.d, p.len, 0, 0) == 0 && t.ended == 1);

    /* the store: it passes the first order and rejects the next, counted by reason */
    TraderPath s;
    BookCore sb;
    int64_t srows[4 * STAGES];
    CHECK(new_trader(&s, &sb, srows, 4) == 0);
    s.store = store_rejects_after_first;
    packet(&p, 1);
    add(&p, 1, 'S', 999900, 100, LOCATE);
    CHECK(trader_on_packet(&s, p.d, p.len, 0, 0) == 0 && s.out_len > 0);
    packet(&p, 2);
    add(&p, 2, 'S', 999800, 100, LOCATE);
    CHECK(trader_on_packet(&s, p.d, p.len, 0, 0) == 0 && s.out_len == 0 && s.rejects[R_STORE] == 1);
    CHECK(store_calls == 2);
    /* a store that fails fails the packet, and says it was the store */
    s.store = store_down;
    packet(&p, 3);
    add(&p, 3, 'S', 999700, 100, LOCATE);
    CHECK(trader_on_packet(&s, p.d, p.len, 0, 0) == -1 && s.failed_store == 1 && s.out_len == 0);

    /* the shadow: warming sends a made-up trigger through it and leaves it as it was */
    t.shadow = &shadow;
    uint64_t orders = t.orders, passed = t.passed;
    trader_warm(&t);
    trader_warm(&t);
    CHECK(shadow.orders == 2 && shadow.nrows == 0 && shadow.ring_count == 0);
    CHECK(t.orders == orders && t.passed == passed);
    uint32_t price;
    uint64_t shares;
    book_best(&shadow_books, LOCATE, 1, &price, &shares);
    CHECK(price == 0 && shares == 0); /* its made-up order deleted again */

    trader_free(&t), trader_free(&shadow), trader_free(&s);
    book_free(&books), book_free(&shadow_books), book_free(&sb);
    if (!failures)
        printf("path core: all checks passed\n");
    return failures;
}
