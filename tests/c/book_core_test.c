/* The book core alone, without Python: built and run by tests/test_c_cores.py (with ASan and UBSan). Each CHECK
 * names what failed; the exit status is the number of failures. */
#include <stdio.h>
#include <string.h>

#include "book_core.h"
#include "byteorder.h"
#include "check.h"
#include "itch_build.h"

static size_t with_ref(unsigned char *m, char type, size_t len, uint16_t locate, uint64_t ref) {
    memset(m, 0, len);
    m[0] = (unsigned char)type;
    put_be16(m + 1, locate);
    put_be64(m + 11, ref);
    return len;
}

int main(void) {
    BookCore b;
    unsigned char m[64];
    uint32_t price;
    uint64_t shares;
    if (book_init(&b, 4) < 0)
        return 100;

    CHECK(book_apply(&b, m, (int64_t)itch_add(m, 7, 1, 'B', 100, 1000000), 0) == 0);
    CHECK(book_apply(&b, m, (int64_t)itch_add(m, 7, 2, 'B', 50, 1000000), 0) == 0);
    CHECK(book_apply(&b, m, (int64_t)itch_add(m, 7, 3, 'S', 30, 1010000), 0) == 0);
    book_best(&b, 7, 0, &price, &shares);
    CHECK(price == 1000000 && shares == 150);
    book_best(&b, 7, 1, &price, &shares);
    CHECK(price == 1010000 && shares == 30);

    size_t n = with_ref(m, 'E', 31, 7, 1); /* execute 40 of order 1 */
    put_be32(m + 19, 40);
    CHECK(book_apply(&b, m, (int64_t)n, 0) == 0);
    book_best(&b, 7, 0, &price, &shares);
    CHECK(shares == 110);

    n = with_ref(m, 'U', 35, 7, 3); /* replace order 3 by 4: 20 at 1.0050 */
    put_be64(m + 19, 4);
    put_be32(m + 27, 20);
    put_be32(m + 31, 1005000);
    CHECK(book_apply(&b, m, (int64_t)n, 0) == 0);
    book_best(&b, 7, 1, &price, &shares);
    CHECK(price == 1005000 && shares == 20);

    CHECK(book_apply(&b, m, (int64_t)with_ref(m, 'D', 19, 7, 99), 0) == 0); /* unknown ref: counted */
    CHECK(b.errors[E_UNKNOWN_REF] == 1 && b.nsamples == 1);
    CHECK(book_apply(&b, m, 18, 0) == 0); /* a 'D' one byte short */
    CHECK(b.errors[E_BAD_LENGTH] == 1);

    /* the map grows past its capacity and every order is still found */
    for (uint64_t ref = 100; ref < 1100; ref++)
        CHECK(book_apply(&b, m, (int64_t)itch_add(m, 8, ref, 'S', 10, 2000000 + (uint32_t)ref * 100), 0) == 0);
    for (uint64_t ref = 100; ref < 1099; ref++)
        book_apply(&b, m, (int64_t)with_ref(m, 'D', 19, 8, ref), 0);
    book_best(&b, 8, 1, &price, &shares);
    CHECK(price == 2000000 + 1099 * 100 && shares == 10 && b.errors[E_UNKNOWN_REF] == 1);

    /* frames: two whole ones and a cut third; partial leaves the cut one, final counts it truncated */
    unsigned char d[3 * 38];
    size_t at = 0;
    for (uint64_t ref = 5000; ref < 5003; ref++) {
        put_be16(d + at, 36);
        itch_add(d + at + 2, 9, ref, 'B', 1, 500000);
        at += 38;
    }
    int64_t framed = 0, used = book_feed_frames(&b, d, (int64_t)sizeof d - 5, 0, 0, &framed);
    CHECK(framed == 2 && used == 76);
    used = book_feed_frames(&b, d + 76, 38 - 5, 76, 1, &framed);
    CHECK(framed == 0 && b.errors[E_TRUNCATED] == 1);
    CHECK(b.messages == 3 + 1 + 1 + 2 + 1000 + 999 + 2); /* a truncated frame is no message */

    book_free(&b);
    if (!failures)
        printf("book core: all checks passed\n");
    return failures;
}
