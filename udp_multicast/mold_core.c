/* See mold_core.h. */
#include "mold_core.h"

#include <string.h>

#include "byteorder.h"

const char *mold_check(const unsigned char *d, int64_t end, int64_t *at) {
    int64_t pos = MOLD_HEADER_LEN, n = 0;
    if (end < MOLD_HEADER_LEN) {
        *at = end;
        return "short_header";
    }
    unsigned count = be16(d + 18);
    uint64_t seq = be64(d + MOLD_SESSION_LEN);
    unsigned ahead = (count == MOLD_HEARTBEAT || count == MOLD_END_OF_SESSION) ? 0 : count;
    if (seq > (uint64_t)INT64_MAX - ahead) {
        *at = MOLD_SESSION_LEN;
        return "sequence_out_of_range";
    }
    if (count == MOLD_HEARTBEAT || count == MOLD_END_OF_SESSION) {
        *at = MOLD_HEADER_LEN;
        return end == MOLD_HEADER_LEN ? NULL : "trailing_bytes";
    }
    while (pos < end) {
        *at = pos;
        if (pos + 2 > end)
            return "length_past_end";
        int64_t len = be16(d + pos);
        if (len == 0)
            return "zero_length";
        if (pos + 2 + len > end)
            return "length_past_end";
        pos += 2 + len;
        n++;
    }
    *at = n;
    return n == (int64_t)count ? NULL : "count_mismatch";
}

int mold_in_order(const unsigned char *d, int64_t len, const unsigned char *session, int64_t expected,
                  int64_t highest) {
    int64_t at;
    if (mold_check(d, len, &at) != NULL || memcmp(d, session, MOLD_SESSION_LEN) != 0)
        return 0;
    unsigned count = be16(d + 18);
    int64_t seq = (int64_t)be64(d + MOLD_SESSION_LEN);
    return count != MOLD_HEARTBEAT && count != MOLD_END_OF_SESSION && seq == expected && seq >= highest;
}
