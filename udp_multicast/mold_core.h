/* MoldUDP64 packet checks in plain C (no Python.h): the layout check of an untrusted packet and the subscriber's
 * in-order test, shared by _mold.c's check_packet and drain; a C test or a fuzzing harness links this alone. The
 * reference is latlab.wire.moldudp64.decode_packet. */
#ifndef LATLAB_MOLD_CORE_H
#define LATLAB_MOLD_CORE_H

#include <stdint.h>

#define MOLD_HEADER_LEN 20
#define MOLD_SESSION_LEN 10
#define MOLD_HEARTBEAT 0
#define MOLD_END_OF_SESSION 0xFFFF

/* NULL when the packet d[0, end) is well formed, else the kind of problem ("short_header", "zero_length", ...);
 * *at is the offset of the problem (for count_mismatch: the blocks found). */
const char *mold_check(const unsigned char *d, int64_t end, int64_t *at);

/* 1 when the packet continues the session in order with messages (the subscriber's live path takes it), 0 when
 * the full protocol logic must decide (malformed, another session, a heartbeat, the end, a gap, a repeat). */
int mold_in_order(const unsigned char *d, int64_t len, const unsigned char *session, int64_t expected,
                  int64_t highest);

#endif
