/* Big-endian (network order) fields in wire buffers: loads and stores through memcpy, so an unaligned field is
 * never read through a cast pointer (undefined behaviour that UBSan reports), then one byte swap. The one place
 * latlab's C code reads or writes a wire integer. */
#ifndef LATLAB_BYTEORDER_H
#define LATLAB_BYTEORDER_H

#include <stdint.h>
#include <string.h>

static inline uint16_t be16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap16(v);
}
static inline uint32_t be32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap32(v);
}
static inline uint64_t be64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}
static inline void put_be16(unsigned char *p, uint16_t v) {
    v = __builtin_bswap16(v);
    memcpy(p, &v, sizeof v);
}
static inline void put_be32(unsigned char *p, uint32_t v) {
    v = __builtin_bswap32(v);
    memcpy(p, &v, sizeof v);
}
static inline void put_be64(unsigned char *p, uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p, &v, sizeof v);
}

#endif
