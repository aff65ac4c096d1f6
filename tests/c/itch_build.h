/* ITCH messages built byte by byte for the C tests. */
#ifndef LATLAB_TEST_ITCH_BUILD_H
#define LATLAB_TEST_ITCH_BUILD_H

#include <stddef.h>
#include <string.h>

#include "byteorder.h"

/* An 'A' add (36 bytes) into m; its length. */
static size_t itch_add(unsigned char *m, uint16_t locate, uint64_t ref, char side, uint32_t shares, uint32_t price) {
    memset(m, 0, 36);
    m[0] = 'A';
    put_be16(m + 1, locate);
    put_be64(m + 11, ref);
    m[19] = (unsigned char)side;
    put_be32(m + 20, shares);
    memcpy(m + 24, "ZVZZT   ", 8);
    put_be32(m + 32, price);
    return 36;
}

#endif
