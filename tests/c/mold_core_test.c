/* The MoldUDP64 checks alone, without Python: built and run by tests/test_c_cores.py (with ASan and UBSan). */
#include <stdio.h>
#include <string.h>

#include "byteorder.h"
#include "check.h"
#include "mold_core.h"

/* A packet of `count` blocks of `each` bytes, sequence `seq`, into p; its length. */
static int64_t packet(unsigned char *p, uint64_t seq, unsigned count, unsigned each) {
    memcpy(p, "SESSION001", 10);
    put_be64(p + 10, seq);
    put_be16(p + 18, (uint16_t)count);
    int64_t at = 20;
    for (unsigned k = 0; k < count && count != MOLD_END_OF_SESSION; k++) {
        put_be16(p + at, (uint16_t)each);
        memset(p + at + 2, 'x', each);
        at += 2 + each;
    }
    return at;
}

int main(void) {
    unsigned char p[2048];
    int64_t at = 0, n = packet(p, 5, 3, 10);
    CHECK(mold_check(p, n, &at) == NULL);
    CHECK(mold_in_order(p, n, (const unsigned char *)"SESSION001", 5, 4));
    CHECK(!mold_in_order(p, n, (const unsigned char *)"SESSION001", 4, 3));  /* a gap */
    CHECK(!mold_in_order(p, n, (const unsigned char *)"SESSION002", 5, 4));  /* another session */
    CHECK(strcmp(mold_check(p, 19, &at), "short_header") == 0 && at == 19);
    CHECK(strcmp(mold_check(p, n - 1, &at), "length_past_end") == 0);
    put_be16(p + 18, 4);
    CHECK(strcmp(mold_check(p, n, &at), "count_mismatch") == 0 && at == 3);
    n = packet(p, 5, 2, 10);
    put_be16(p + 20, 0);
    CHECK(strcmp(mold_check(p, n, &at), "zero_length") == 0 && at == 20);
    n = packet(p, 9, MOLD_HEARTBEAT, 0);
    CHECK(mold_check(p, n, &at) == NULL && !mold_in_order(p, n, (const unsigned char *)"SESSION001", 9, 8));
    CHECK(strcmp(mold_check(p, n + 1, &at), "trailing_bytes") == 0);
    n = packet(p, UINT64_MAX - 1, 3, 4);
    CHECK(strcmp(mold_check(p, n, &at), "sequence_out_of_range") == 0);
    if (!failures)
        printf("mold core: all checks passed\n");
    return failures;
}
