/* The router's split alone, without Python: built with the book core and run by tests/test_c_cores.py (with ASan
 * and UBSan). Hand-worked books; the exit status is the number of failed CHECKs. */
#include <string.h>

#include "book_core.h"
#include "check.h"
#include "itch_build.h"
#include "router_core.h"

enum { LOCATE = 7 };

static void rest(BookCore *b, uint64_t ref, char side, uint32_t shares, uint32_t price) {
    unsigned char m[36];
    book_apply(b, m, (int64_t)itch_add(m, LOCATE, ref, side, shares, price), 0);
}

int main(void) {
    BookCore a, b;
    if (book_init(&a, 16) < 0 || book_init(&b, 16) < 0)
        return 100;
    RouterVenue v[2] = {{&a, LOCATE, 30, 50000, 1}, {&b, LOCATE, 10, 20000, 1}};
    RouterChild out[ROUTER_MAX_VENUES];
    uint32_t placed;

    rest(&a, 1, 'S', 100, 1000000);
    rest(&b, 2, 'S', 50, 999900);
    /* price first: B's better ask, then A's */
    CHECK(router_split(v, 2, 'B', 120, 1000000, out, &placed) == 2 && placed == 120);
    CHECK(out[0].venue == 1 && out[0].shares == 50 && out[0].price == 999900);
    CHECK(out[1].venue == 0 && out[1].shares == 70 && out[1].price == 1000000);
    /* the limit: only what is at or below it; short books place less */
    CHECK(router_split(v, 2, 'B', 500, 999900, out, &placed) == 1 && placed == 50 && out[0].venue == 1);
    /* a down venue gets nothing */
    v[1].up = 0;
    CHECK(router_split(v, 2, 'B', 120, 1000000, out, &placed) == 1 && placed == 100 && out[0].venue == 0);
    v[1].up = 1;
    /* one price, one quantity: the lower fee (B); then, with equal fees, the faster venue (A) */
    rest(&b, 3, 'S', 50, 1000000);
    rest(&b, 4, 'S', 50, 1000000); /* B: 100 at 1000000, as A */
    CHECK(router_split(v, 2, 'B', 150, 1000000, out, &placed) == 1 && out[0].venue == 1 && out[0].shares == 150 &&
          out[0].price == 1000000);
    v[0].taker_fee = v[1].taker_fee = 10;
    v[0].latency_ns = 10000; /* now A is faster */
    CHECK(router_split(v, 2, 'B', 100, 1000000, out, &placed) == 2 && out[0].venue == 1 && out[0].shares == 50 &&
          out[1].venue == 0 && out[1].shares == 50); /* then at 1000000: A (faster) before B */
    /* a sell takes bids, best (highest) first */
    rest(&a, 5, 'B', 80, 999000);
    rest(&b, 6, 'B', 40, 999500);
    CHECK(router_split(v, 2, 'S', 100, 999000, out, &placed) == 2 && out[0].venue == 1 && out[0].shares == 40 &&
          out[1].venue == 0 && out[1].shares == 60 && out[1].price == 999000);
    /* bad input */
    CHECK(router_split(v, 2, 'X', 1, 1, out, &placed) == -1);
    CHECK(router_split(v, ROUTER_MAX_VENUES + 1, 'B', 1, 1, out, &placed) == -1);
    book_free(&a), book_free(&b);
    if (!failures)
        printf("router core: all checks passed\n");
    return failures;
}
