/* FIX 4.4 NewOrderSingle (buy, limit, IOC) for the compiled trader. feed_handler/fix44.new_order_single is the
 * reference: for the same time the bytes are the same (the differential test compares them). */
#ifndef LATLAB_FIX_ORDER_H
#define LATLAB_FIX_ORDER_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#define FIX_NAME_MAX 16

typedef struct {
    char sender[FIX_NAME_MAX], target[FIX_NAME_MAX], symbol[FIX_NAME_MAX];
    uint64_t seq;           /* the next MsgSeqNum */
    int64_t stamp_sec;      /* the second whose text is in stamp */
    char stamp[24];         /* UTCTimestamp, YYYYMMDD-HH:MM:SS.sss */
} FixOrder;

static inline size_t fix_put(char *p, const char *s) {
    size_t n = strlen(s);
    memcpy(p, s, n);
    return n;
}

static inline size_t fix_put_uint(char *p, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* The UTCTimestamp of now_ns; the date and time part is formatted once a second. */
static inline const char *fix_stamp(FixOrder *f, int64_t now_ns) {
    int64_t sec = now_ns / 1000000000LL;
    if (sec != f->stamp_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(f->stamp, sizeof f->stamp, "%Y%m%d-%H:%M:%S", &tm);
        f->stamp_sec = sec;
    }
    int ms = (int)(now_ns / 1000000 % 1000);
    f->stamp[17] = '.', f->stamp[18] = (char)('0' + ms / 100), f->stamp[19] = (char)('0' + ms / 10 % 10),
    f->stamp[20] = (char)('0' + ms % 10), f->stamp[21] = 0;
    return f->stamp;
}

/* One order into out (at least 256 bytes); returns its length. price has 4 implied decimals, as in ITCH. */
static inline size_t fix_new_order(FixOrder *f, unsigned char *out, const unsigned char *token, size_t token_len,
                            uint32_t shares, uint32_t price, int64_t now_ns) {
    char body[224], *p = body;
    const char *stamp = fix_stamp(f, now_ns);
    p += fix_put(p, "35=D\00149=");
    p += fix_put(p, f->sender);
    p += fix_put(p, "\00156=");
    p += fix_put(p, f->target);
    p += fix_put(p, "\00134=");
    p += fix_put_uint(p, f->seq++);
    p += fix_put(p, "\00152=");
    p += fix_put(p, stamp);
    p += fix_put(p, "\00111=");
    memcpy(p, token, token_len);
    p += token_len;
    p += fix_put(p, "\00155=");
    p += fix_put(p, f->symbol);
    p += fix_put(p, "\00154=1\00160=");
    p += fix_put(p, stamp);
    p += fix_put(p, "\00138=");
    p += fix_put_uint(p, shares);
    p += fix_put(p, "\00140=2\00144=");
    p += fix_put_uint(p, price / 10000);
    *p++ = '.';
    for (uint32_t frac = price % 10000, d = 1000; d; d /= 10)
        *p++ = (char)('0' + frac / d % 10);
    p += fix_put(p, "\00159=3\001");
    size_t body_len = (size_t)(p - body);
    char *o = (char *)out;
    o += fix_put(o, "8=FIX.4.4\0019=");
    o += fix_put_uint(o, body_len);
    *o++ = '\001';
    memcpy(o, body, body_len);
    o += body_len;
    unsigned sum = 0;
    for (const unsigned char *c = out; c < (unsigned char *)o; c++)
        sum += *c;
    sum %= 256;
    o += fix_put(o, "10=");
    *o++ = (char)('0' + sum / 100), *o++ = (char)('0' + sum / 10 % 10), *o++ = (char)('0' + sum % 10);
    *o++ = '\001';
    return (size_t)(o - (char *)out);
}

#endif
