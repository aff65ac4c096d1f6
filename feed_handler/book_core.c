/* See book_core.h. */
#include "book_core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "byteorder.h"

const char *const BOOK_ERROR_NAMES[E_COUNT] = {"unknown_type", "bad_length", "truncated", "bad_side", "zero_shares",
                                               "duplicate_ref", "unknown_ref", "over_execute", "over_cancel"};

/* Message lengths by type byte (0: not an ITCH 5.0 type). */
static const uint16_t LENGTHS[256] = {
    ['S'] = 12, ['R'] = 39, ['H'] = 25, ['Y'] = 20, ['L'] = 26, ['V'] = 35, ['W'] = 12, ['K'] = 28,
    ['J'] = 35, ['h'] = 21, ['A'] = 36, ['F'] = 40, ['E'] = 31, ['C'] = 36, ['X'] = 23, ['D'] = 19,
    ['U'] = 35, ['P'] = 44, ['Q'] = 40, ['B'] = 19, ['I'] = 50, ['N'] = 20, ['O'] = 48,
};


static inline size_t hslot(uint64_t ref, int bits) { return (size_t)((ref * 0x9E3779B97F4A7C15ULL) >> (64 - bits)); }

static BookOrder *order_find(BookCore *b, uint64_t ref) {
    size_t mask = b->cap - 1, i = hslot(ref, b->bits);
    for (;;) {
        BookOrder *o = &b->slots[i];
        if (!o->used)
            return NULL;
        if (o->ref == ref)
            return o;
        i = (i + 1) & mask;
    }
}

/* Zeroed memory for the order map, on transparent huge pages where the kernel allows it: the map is
 * larger than the TLB's reach, and in a VM each TLB miss costs a two-level page walk. */
#define HUGE_PAGE ((size_t)2 << 20)
static BookOrder *slots_alloc(size_t n) {
    size_t bytes = n * sizeof(BookOrder);
    if (bytes < HUGE_PAGE)
        return calloc(n, sizeof(BookOrder));
    bytes = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static void slots_free(BookOrder *p, size_t n) {
    size_t bytes = n * sizeof(BookOrder);
    if (bytes < HUGE_PAGE) {
        free(p);
        return;
    }
    munmap(p, (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
}

static int order_grow(BookCore *b) {
    size_t old_cap = b->cap;
    BookOrder *old = b->slots;
    BookOrder *slots = slots_alloc(old_cap * 2);
    if (!slots)
        return -1;
    b->slots = slots;
    b->cap = old_cap * 2;
    b->bits++;
    size_t mask = b->cap - 1;
    for (size_t k = 0; k < old_cap; k++) {
        if (!old[k].used)
            continue;
        size_t i = hslot(old[k].ref, b->bits);
        while (slots[i].used)
            i = (i + 1) & mask;
        slots[i] = old[k];
    }
    slots_free(old, old_cap);
    return 0;
}

/* A new slot for ref (the caller checked it is absent), or NULL when out of memory. */
static BookOrder *order_insert(BookCore *b, uint64_t ref) {
    if ((b->count + 1) * 2 > b->cap && order_grow(b) < 0)
        return NULL;
    size_t mask = b->cap - 1, i = hslot(ref, b->bits);
    while (b->slots[i].used)
        i = (i + 1) & mask;
    b->slots[i].used = 1;
    b->slots[i].ref = ref;
    b->count++;
    return &b->slots[i];
}

static void order_erase(BookCore *b, BookOrder *o) {
    size_t mask = b->cap - 1, i = (size_t)(o - b->slots), j = i;
    b->slots[i].used = 0;
    b->count--;
    for (;;) {
        j = (j + 1) & mask;
        if (!b->slots[j].used)
            return;
        size_t home = hslot(b->slots[j].ref, b->bits);
        /* move j back into the hole at i unless its home lies cyclically in (i, j] */
        if ((i <= j) ? (home <= i || home > j) : (home <= i && home > j)) {
            b->slots[i] = b->slots[j];
            b->slots[j].used = 0;
            i = j;
        }
    }
}

static inline uint32_t level_key(int side, uint32_t price) { return side == 0 ? price : ~price; }

/* Index of key in s, or -(insertion point) - 1. Most traffic is near the best (last) level, so the
 * top few levels are scanned before a binary search of the rest. */
static inline long level_search(const BookSide *s, uint32_t key) {
    long lo = 0, hi = (long)s->n - 1;
    for (int k = 0; k < 8 && hi >= 0; k++, hi--) {
        uint32_t top = s->v[hi].key;
        if (top == key)
            return hi;
        if (top < key)
            return -(hi + 1) - 1;
    }
    while (lo <= hi) {
        long mid = (lo + hi) >> 1;
        uint32_t k = s->v[mid].key;
        if (k == key)
            return mid;
        if (k < key)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

static int level_add(BookSide *s, uint32_t key, uint32_t shares) {
    long i = level_search(s, key);
    if (i >= 0) {
        s->v[i].shares += shares;
        s->v[i].orders++;
        return 0;
    }
    long at = -i - 1;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        BookLevel *v = realloc(s->v, cap * sizeof(BookLevel));
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    memmove(&s->v[at + 1], &s->v[at], (s->n - (uint32_t)at) * sizeof(BookLevel));
    s->v[at].key = key;
    s->v[at].shares = shares;
    s->v[at].orders = 1;
    s->n++;
    return 0;
}

/* Take `shares` off order o; remove it (and an emptied level) at zero. */
static void order_reduce(BookCore *b, BookOrder *o, uint32_t shares) {
    BookInst *in = &b->inst[o->locate];
    BookSide *s = &in->side[o->side];
    long i = level_search(s, level_key(o->side, o->price));
    /* i >= 0 always: every live order's level exists */
    s->v[i].shares -= shares;
    o->shares -= shares;
    if (o->shares == 0) {
        if (--s->v[i].orders == 0) {
            memmove(&s->v[i], &s->v[i + 1], (s->n - (uint32_t)i - 1) * sizeof(BookLevel));
            s->n--;
        }
        in->orders--;
        order_erase(b, o);
    }
}

static int order_add(BookCore *b, uint64_t ref, uint16_t locate, int side, uint32_t price, uint32_t shares) {
    BookOrder *o = order_insert(b, ref);
    if (!o)
        return -1;
    o->locate = locate;
    o->side = (uint8_t)side;
    o->price = price;
    o->shares = shares;
    BookInst *in = &b->inst[locate];
    in->orders++;
    return level_add(&in->side[side], level_key(side, price), shares);
}

static void book_error(BookCore *b, int kind, int64_t offset, const unsigned char *p, int64_t avail) {
    b->errors[kind]++;
    if (b->nsamples < BOOK_MAX_SAMPLES) {
        BookSample *s = &b->samples[b->nsamples++];
        s->kind = kind;
        s->offset = offset;
        s->len = avail < 16 ? (avail > 0 ? avail : 0) : 16;
        memcpy(s->data, p, (size_t)s->len);
    }
}

int book_apply(BookCore *b, const unsigned char *p, int64_t len, int64_t offset) {
    b->messages++;
    if (len == 0) {
        book_error(b, E_BAD_LENGTH, offset, p - 2, 2);
        return 0;
    }
    unsigned char t = p[0];
    uint16_t want = LENGTHS[t];
    if (!want) {
        book_error(b, E_UNKNOWN_TYPE, offset, p, len);
        return 0;
    }
    if (len != want) {
        book_error(b, E_BAD_LENGTH, offset, p, len);
        return 0;
    }
    b->type_counts[t]++;
    switch (t) {
    case 'A':
    case 'F': {
        uint64_t ref = be64(p + 11);
        unsigned char side = p[19];
        uint32_t shares = be32(p + 20), price = be32(p + 32);
        if (side != 'B' && side != 'S')
            book_error(b, E_BAD_SIDE, offset, p, len);
        else if (shares == 0)
            book_error(b, E_ZERO_SHARES, offset, p, len);
        else if (order_find(b, ref))
            book_error(b, E_DUPLICATE_REF, offset, p, len);
        else if (order_add(b, ref, be16(p + 1), side == 'B' ? 0 : 1, price, shares) < 0)
            return -1;
        break;
    }
    case 'E':
    case 'C':
    case 'X': {
        BookOrder *o = order_find(b, be64(p + 11));
        uint32_t shares = be32(p + 19);
        if (!o) {
            book_error(b, E_UNKNOWN_REF, offset, p, len);
            break;
        }
        if (shares > o->shares) {
            book_error(b, t == 'X' ? E_OVER_CANCEL : E_OVER_EXECUTE, offset, p, len);
            shares = o->shares;
        }
        order_reduce(b, o, shares);
        break;
    }
    case 'D': {
        BookOrder *o = order_find(b, be64(p + 11));
        if (!o)
            book_error(b, E_UNKNOWN_REF, offset, p, len);
        else
            order_reduce(b, o, o->shares);
        break;
    }
    case 'U': {
        uint64_t old = be64(p + 11), nref = be64(p + 19);
        uint32_t shares = be32(p + 27), price = be32(p + 31);
        BookOrder *o = order_find(b, old);
        if (!o)
            book_error(b, E_UNKNOWN_REF, offset, p, len);
        else if (nref != old && order_find(b, nref))
            book_error(b, E_DUPLICATE_REF, offset, p, len);
        else if (shares == 0)
            book_error(b, E_ZERO_SHARES, offset, p, len);
        else {
            uint16_t locate = o->locate;
            int side = o->side;
            order_reduce(b, o, o->shares);
            if (order_add(b, nref, locate, side, price, shares) < 0)
                return -1;
        }
        break;
    }
    case 'R': {
        uint16_t locate = be16(p + 1);
        memcpy(b->sym[locate], p + 11, 8);
        b->has_sym[locate] = 1;
        break;
    }
    default:
        break;
    }
    return 0;
}

#define PREFETCH_DISTANCE 16

/* GCC deletes __builtin_prefetch here as dead code (the look-ahead cursor feeds nothing else), so the
 * instruction is spelled out where the compiler must keep it. */
static inline void prefetch(const void *p) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p);
#endif
}

static inline int refers_to_order(unsigned char t) {
    return t == 'A' || t == 'F' || t == 'E' || t == 'C' || t == 'X' || t == 'D' || t == 'U';
}

/* Prefetch the hash slot of the order that the frame at `at` refers to; returns the next frame. */
static inline int64_t prefetch_frame(const BookCore *b, const unsigned char *d, int64_t at, int64_t end) {
    if (at + 2 + 19 > end)
        return end;
    int64_t len = be16(d + at);
    unsigned char t = d[at + 2];
    if (len >= 19 && at + 2 + len <= end && refers_to_order(t))
        prefetch(&b->slots[hslot(be64(d + at + 2 + 11), b->bits)]);
    return at + 2 + len;
}

int64_t book_feed_frames(BookCore *b, const unsigned char *d, int64_t end, int64_t base, int final,
                              int64_t *framed) {
    int64_t pos = 0, n = 0, ahead = 0;
    /* The order map is far larger than the caches and refs land at random slots, so a look-ahead
     * cursor prefetches the slot of the order that the message PREFETCH_DISTANCE frames on touches. */
    for (int k = 0; k < PREFETCH_DISTANCE; k++)
        ahead = prefetch_frame(b, d, ahead, end);
    while (pos < end) {
        ahead = prefetch_frame(b, d, ahead, end);
        if (pos + 2 > end || pos + 2 + (int64_t)be16(d + pos) > end) {
            if (final)
                book_error(b, E_TRUNCATED, base + pos, d + pos, end - pos);
            break;
        }
        int64_t len = be16(d + pos), start = pos + 2;
        if (book_apply(b, d + start, len, base + pos) < 0) {
            *framed = n;
            return -1;
        }
        n++;
        pos = start + len;
    }
    *framed = n;
    return final ? end : pos;
}

int book_init(BookCore *b, size_t capacity) {
    memset(b, 0, sizeof *b);
    int bits = 4;
    while (((size_t)1 << bits) < capacity * 2 && bits < 40)
        bits++;
    b->bits = bits;
    b->cap = (size_t)1 << bits;
    b->slots = slots_alloc(b->cap);
    b->inst = calloc(BOOK_NLOCATE, sizeof(BookInst));
    b->sym = calloc(BOOK_NLOCATE, 8);
    b->has_sym = calloc(BOOK_NLOCATE, 1);
    if (!b->slots || !b->inst || !b->sym || !b->has_sym) {
        book_free(b);
        return -1;
    }
    return 0;
}

void book_free(BookCore *b) {
    if (b->inst)
        for (int loc = 0; loc < BOOK_NLOCATE; loc++) {
            free(b->inst[loc].side[0].v);
            free(b->inst[loc].side[1].v);
        }
    free(b->inst);
    if (b->slots)
        slots_free(b->slots, b->cap);
    free(b->sym);
    free(b->has_sym);
    b->inst = NULL;
    b->slots = NULL;
    b->sym = NULL;
    b->has_sym = NULL;
}

void book_best(const BookCore *b, uint16_t locate, int side, uint32_t *price, uint64_t *shares) {
    const BookSide *s = &b->inst[locate].side[side];
    *price = s->n ? (side == 0 ? s->v[s->n - 1].key : ~s->v[s->n - 1].key) : 0;
    *shares = s->n ? s->v[s->n - 1].shares : 0;
}

int book_level(const BookCore *b, uint16_t locate, int side, uint32_t k, uint32_t *price, uint64_t *shares) {
    const BookSide *s = &b->inst[locate].side[side];
    if (k >= s->n)
        return 0;
    const BookLevel *l = &s->v[s->n - 1 - k];
    *price = side == 0 ? l->key : ~l->key;
    *shares = l->shares;
    return 1;
}

void book_prefetch_message(const BookCore *b, const unsigned char *p, int64_t len) {
    if (len >= 19 && refers_to_order(p[0]))
        prefetch(&b->slots[hslot(be64(p + 11), b->bits)]);
}

void book_warm(const BookCore *b, uint16_t locate) {
    const BookInst *in = &b->inst[locate];
    prefetch(b); /* the header: slots, cap, bits, inst */
    prefetch(in);
    /* a line in every page of the order map: a new order lands in one at random, and in a VM a TLB miss is a
     * two-level page walk */
    size_t bytes = b->cap * sizeof(BookOrder), page = bytes < HUGE_PAGE ? 4096 : HUGE_PAGE;
    for (size_t at = 0; at < bytes; at += page)
        prefetch((const char *)b->slots + at);
    prefetch(&b->type_counts['A']);
    prefetch(&b->messages);
    for (int side = 0; side < 2; side++)
        if (in->side[side].n)
            prefetch(&in->side[side].v[in->side[side].n - 1]);
}
