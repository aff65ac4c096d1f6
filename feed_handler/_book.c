/*
 * Compiled ITCH 5.0 order books: the per-message path of replay and of the trader.
 * feed_handler/book.py is the reference; every rule and error policy here is a copy of it, and the
 * differential tests compare the two books after every N messages.
 *
 * Orders: open-addressing hash map (linear probing, backward-shift deletion) from order ref.
 * Levels: per instrument and side, an array sorted by key (bid: price, ask: ~price) so the best level
 * is the last one; most traffic is near the top, so inserts and removals move few entries.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "book_api.h"
#include "byteorder.h"
#include "named_counts.h"

#define NLOCATE 65536
#define MAX_SAMPLES 10

enum { E_UNKNOWN_TYPE, E_BAD_LENGTH, E_TRUNCATED, E_BAD_SIDE, E_ZERO_SHARES, E_DUPLICATE_REF, E_UNKNOWN_REF,
       E_OVER_EXECUTE, E_OVER_CANCEL, E_COUNT };
static const char *ERROR_NAMES[E_COUNT] = {"unknown_type", "bad_length", "truncated", "bad_side", "zero_shares",
                                           "duplicate_ref", "unknown_ref", "over_execute", "over_cancel"};

/* Message lengths by type byte (0: not an ITCH 5.0 type). */
static uint16_t LENGTHS[256];
static void init_lengths(void) {
    const char *t = "SRHYLVWKJhAFECXDUPQBINO";
    const uint16_t l[] = {12, 39, 25, 20, 26, 35, 12, 28, 35, 21, 36, 40, 31, 36, 23, 19, 35, 44, 40, 19, 50, 20, 48};
    for (int i = 0; t[i]; i++)
        LENGTHS[(unsigned char)t[i]] = l[i];
}

typedef struct { uint64_t ref; uint32_t price, shares; uint16_t locate; uint8_t side, used; } Order;
typedef struct { uint32_t key; uint32_t orders; uint64_t shares; } Level;
typedef struct { Level *v; uint32_t n, cap; } Side;
typedef struct { Side side[2]; uint32_t orders; } Inst;
typedef struct { int kind; Py_ssize_t offset; unsigned char data[16]; Py_ssize_t len; } Sample;

typedef struct {
    PyObject_HEAD
    Order *slots;
    size_t cap, count;
    int bits;
    Inst *inst;
    char (*sym)[8];
    uint8_t *has_sym;
    uint64_t type_counts[256];
    uint64_t errors[E_COUNT];
    Sample samples[MAX_SAMPLES];
    int nsamples;
    uint64_t messages;
} Books;

static inline size_t hslot(uint64_t ref, int bits) { return (size_t)((ref * 0x9E3779B97F4A7C15ULL) >> (64 - bits)); }

static Order *order_find(Books *b, uint64_t ref) {
    size_t mask = b->cap - 1, i = hslot(ref, b->bits);
    for (;;) {
        Order *o = &b->slots[i];
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
static Order *slots_alloc(size_t n) {
    size_t bytes = n * sizeof(Order);
    if (bytes < HUGE_PAGE)
        return calloc(n, sizeof(Order));
    bytes = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static void slots_free(Order *p, size_t n) {
    size_t bytes = n * sizeof(Order);
    if (bytes < HUGE_PAGE) {
        free(p);
        return;
    }
    munmap(p, (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
}

static int order_grow(Books *b) {
    size_t old_cap = b->cap;
    Order *old = b->slots;
    Order *slots = slots_alloc(old_cap * 2);
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
static Order *order_insert(Books *b, uint64_t ref) {
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

static void order_erase(Books *b, Order *o) {
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
static inline long level_search(const Side *s, uint32_t key) {
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

static int level_add(Side *s, uint32_t key, uint32_t shares) {
    long i = level_search(s, key);
    if (i >= 0) {
        s->v[i].shares += shares;
        s->v[i].orders++;
        return 0;
    }
    long at = -i - 1;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        Level *v = realloc(s->v, cap * sizeof(Level));
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    memmove(&s->v[at + 1], &s->v[at], (s->n - (uint32_t)at) * sizeof(Level));
    s->v[at].key = key;
    s->v[at].shares = shares;
    s->v[at].orders = 1;
    s->n++;
    return 0;
}

/* Take `shares` off order o; remove it (and an emptied level) at zero. */
static void order_reduce(Books *b, Order *o, uint32_t shares) {
    Inst *in = &b->inst[o->locate];
    Side *s = &in->side[o->side];
    long i = level_search(s, level_key(o->side, o->price));
    /* i >= 0 always: every live order's level exists */
    s->v[i].shares -= shares;
    o->shares -= shares;
    if (o->shares == 0) {
        if (--s->v[i].orders == 0) {
            memmove(&s->v[i], &s->v[i + 1], (s->n - (uint32_t)i - 1) * sizeof(Level));
            s->n--;
        }
        in->orders--;
        order_erase(b, o);
    }
}

static int order_add(Books *b, uint64_t ref, uint16_t locate, int side, uint32_t price, uint32_t shares) {
    Order *o = order_insert(b, ref);
    if (!o)
        return -1;
    o->locate = locate;
    o->side = (uint8_t)side;
    o->price = price;
    o->shares = shares;
    Inst *in = &b->inst[locate];
    in->orders++;
    return level_add(&in->side[side], level_key(side, price), shares);
}

static void book_error(Books *b, int kind, Py_ssize_t offset, const unsigned char *p, Py_ssize_t avail) {
    b->errors[kind]++;
    if (b->nsamples < MAX_SAMPLES) {
        Sample *s = &b->samples[b->nsamples++];
        s->kind = kind;
        s->offset = offset;
        s->len = avail < 16 ? (avail > 0 ? avail : 0) : 16;
        memcpy(s->data, p, (size_t)s->len);
    }
}

/* Apply one message of len bytes at p. Returns -1 only when out of memory. */
static int apply(Books *b, const unsigned char *p, Py_ssize_t len, Py_ssize_t offset) {
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
        Order *o = order_find(b, be64(p + 11));
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
        Order *o = order_find(b, be64(p + 11));
        if (!o)
            book_error(b, E_UNKNOWN_REF, offset, p, len);
        else
            order_reduce(b, o, o->shares);
        break;
    }
    case 'U': {
        uint64_t old = be64(p + 11), nref = be64(p + 19);
        uint32_t shares = be32(p + 27), price = be32(p + 31);
        Order *o = order_find(b, old);
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
static inline Py_ssize_t prefetch_frame(const Books *b, const unsigned char *d, Py_ssize_t at, Py_ssize_t end) {
    if (at + 2 + 19 > end)
        return end;
    Py_ssize_t len = be16(d + at);
    unsigned char t = d[at + 2];
    if (len >= 19 && at + 2 + len <= end && refers_to_order(t))
        prefetch(&b->slots[hslot(be64(d + at + 2 + 11), b->bits)]);
    return at + 2 + len;
}

/* Apply the length-prefixed frames of d[0, end); `final` says the buffer ends the stream, so that a frame cut at its
 * end is an error (counted) rather than left for the next buffer. Sets *framed and returns the bytes consumed, or
 * -1 when out of memory. */
static Py_ssize_t feed_frames(Books *b, const unsigned char *d, Py_ssize_t end, Py_ssize_t base, int final,
                              Py_ssize_t *framed) {
    Py_ssize_t pos = 0, n = 0, ahead = 0;
    /* The order map is far larger than the caches and refs land at random slots, so a look-ahead
     * cursor prefetches the slot of the order that the message PREFETCH_DISTANCE frames on touches. */
    for (int k = 0; k < PREFETCH_DISTANCE; k++)
        ahead = prefetch_frame(b, d, ahead, end);
    while (pos < end) {
        ahead = prefetch_frame(b, d, ahead, end);
        if (pos + 2 > end || pos + 2 + (Py_ssize_t)be16(d + pos) > end) {
            if (final)
                book_error(b, E_TRUNCATED, base + pos, d + pos, end - pos);
            break;
        }
        Py_ssize_t len = be16(d + pos), start = pos + 2;
        if (apply(b, d + start, len, base + pos) < 0) {
            *framed = n;
            return -1;
        }
        n++;
        pos = start + len;
    }
    *framed = n;
    return final ? end : pos;
}

/* feed: the buffer ends the stream, returns the frames; feed_partial: a piece of it, returns the bytes used. */
static PyObject *feed_buffer(Books *b, PyObject *args, int final) {
    Py_buffer view;
    Py_ssize_t base = 0, n = 0;
    if (!PyArg_ParseTuple(args, "y*|n", &view, &base))
        return NULL;
    Py_ssize_t used = feed_frames(b, view.buf, view.len, base, final, &n);
    PyBuffer_Release(&view);
    if (used < 0)
        return PyErr_NoMemory();
    return PyLong_FromSsize_t(final ? n : used);
}

static PyObject *Books_feed(Books *b, PyObject *args) { return feed_buffer(b, args, 1); }

static PyObject *Books_feed_partial(Books *b, PyObject *args) { return feed_buffer(b, args, 0); }

static PyObject *depth_list(const Side *s, int side) {
    PyObject *list = PyList_New(s->n);
    if (!list)
        return NULL;
    for (uint32_t k = 0; k < s->n; k++) {
        const Level *l = &s->v[s->n - 1 - k];
        uint32_t price = side == 0 ? l->key : ~l->key;
        PyObject *t = Py_BuildValue("(IKI)", price, (unsigned long long)l->shares, l->orders);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, k, t);
    }
    return list;
}

static PyObject *Books_snapshot(Books *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyDict_New();
    if (!out)
        return NULL;
    for (int loc = 0; loc < NLOCATE; loc++) {
        Inst *in = &b->inst[loc];
        if (!in->orders)
            continue;
        PyObject *bids = depth_list(&in->side[0], 0), *asks = depth_list(&in->side[1], 1);
        PyObject *t = (bids && asks) ? Py_BuildValue("(NNI)", bids, asks, in->orders) : NULL;
        PyObject *key = PyLong_FromLong(loc);
        if (!t || !key || PyDict_SetItem(out, key, t) < 0) {
            Py_XDECREF(t);
            Py_XDECREF(key);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
        Py_DECREF(key);
    }
    return out;
}

/* (bid price, bid shares, ask price, ask shares) of one instrument; 0s for an empty side. */
static PyObject *Books_bbo(Books *b, PyObject *arg) {
    long loc = PyLong_AsLong(arg);
    if (loc < 0 || loc >= NLOCATE) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "stock locate out of range");
        return NULL;
    }
    Side *bid = &b->inst[loc].side[0], *ask = &b->inst[loc].side[1];
    uint32_t bp = bid->n ? bid->v[bid->n - 1].key : 0, ap = ask->n ? ~ask->v[ask->n - 1].key : 0;
    unsigned long long bs = bid->n ? bid->v[bid->n - 1].shares : 0, as = ask->n ? ask->v[ask->n - 1].shares : 0;
    return Py_BuildValue("(IKIK)", bp, bs, ap, as);
}

/* The C API other extensions use (trader/_trader.c): see book_api.h. */
static int api_apply(PyObject *books, const unsigned char *p, Py_ssize_t len) {
    return apply((Books *)books, p, len, 0);
}

static void api_best(PyObject *books, uint16_t locate, int side, uint32_t *price, uint64_t *shares) {
    const Side *s = &((Books *)books)->inst[locate].side[side];
    *price = s->n ? (side == 0 ? s->v[s->n - 1].key : ~s->v[s->n - 1].key) : 0;
    *shares = s->n ? s->v[s->n - 1].shares : 0;
}

static void api_prefetch(PyObject *books, const unsigned char *p, Py_ssize_t len) {
    const Books *b = (const Books *)books;
    if (len >= 19 && refers_to_order(p[0]))
        prefetch(&b->slots[hslot(be64(p + 11), b->bits)]);
}

static void api_warm(PyObject *books, uint16_t locate) {
    const Books *b = (const Books *)books;
    const Inst *in = &b->inst[locate];
    prefetch(b); /* the header: slots, cap, bits, inst */
    prefetch(in);
    /* a line in every page of the order map: a new order lands in one at random, and in a VM a TLB miss is a
     * two-level page walk */
    size_t bytes = b->cap * sizeof(Order), page = bytes < HUGE_PAGE ? 4096 : HUGE_PAGE;
    for (size_t at = 0; at < bytes; at += page)
        prefetch((const char *)b->slots + at);
    prefetch(&b->type_counts['A']);
    prefetch(&b->messages);
    for (int side = 0; side < 2; side++)
        if (in->side[side].n)
            prefetch(&in->side[side].v[in->side[side].n - 1]);
}

static BookApi API = {api_apply, api_best, api_prefetch, api_warm, NULL};

static PyObject *Books_type_counts(Books *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyDict_New();
    for (int t = 0; out && t < 256; t++) {
        if (!b->type_counts[t])
            continue;
        char name[2] = {(char)t, 0};
        PyObject *v = PyLong_FromUnsignedLongLong(b->type_counts[t]);
        if (!v || PyDict_SetItemString(out, name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(v);
    }
    return out;
}

static PyObject *Books_errors(Books *b, PyObject *Py_UNUSED(ignored)) {
    return named_counts(ERROR_NAMES, b->errors, E_COUNT);
}

static PyObject *Books_error_samples(Books *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(b->nsamples);
    for (int k = 0; out && k < b->nsamples; k++) {
        Sample *s = &b->samples[k];
        PyObject *t = Py_BuildValue("(sny#)", ERROR_NAMES[s->kind], s->offset, s->data, s->len);
        if (!t) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, t);
    }
    return out;
}

static PyObject *Books_symbols(Books *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyDict_New();
    for (int loc = 0; out && loc < NLOCATE; loc++) {
        if (!b->has_sym[loc])
            continue;
        /* Alpha fields are space padded: strip spaces only; any byte outside printable ASCII is shown
         * as \xNN (the same text as feed_handler.book.symbol_text) */
        int n = 8;
        while (n > 0 && b->sym[loc][n - 1] == ' ')
            n--;
        char text[8 * 4];
        int len = 0;
        for (int i = 0; i < n; i++) {
            unsigned char c = (unsigned char)b->sym[loc][i];
            if (c >= 0x20 && c < 0x7f) {
                text[len++] = (char)c;
            } else {
                static const char hex[] = "0123456789abcdef";
                text[len++] = '\\';
                text[len++] = 'x';
                text[len++] = hex[c >> 4];
                text[len++] = hex[c & 15];
            }
        }
        PyObject *key = PyLong_FromLong(loc), *v = PyUnicode_DecodeASCII(text, len, NULL);
        if (!key || !v || PyDict_SetItem(out, key, v) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(v);
    }
    return out;
}

static PyObject *Books_get_messages(Books *b, void *Py_UNUSED(c)) { return PyLong_FromUnsignedLongLong(b->messages); }
static PyObject *Books_get_live(Books *b, void *Py_UNUSED(c)) { return PyLong_FromSize_t(b->count); }

static int Books_init(Books *b, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"capacity", NULL};
    Py_ssize_t capacity = 1 << 16;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n", kwlist, &capacity))
        return -1;
    int bits = 4;
    while (((size_t)1 << bits) < (size_t)capacity * 2 && bits < 40)
        bits++;
    b->bits = bits;
    b->cap = (size_t)1 << bits;
    b->slots = slots_alloc(b->cap);
    b->inst = calloc(NLOCATE, sizeof(Inst));
    b->sym = calloc(NLOCATE, 8);
    b->has_sym = calloc(NLOCATE, 1);
    if (!b->slots || !b->inst || !b->sym || !b->has_sym) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void Books_dealloc(Books *b) {
    if (b->inst)
        for (int loc = 0; loc < NLOCATE; loc++) {
            free(b->inst[loc].side[0].v);
            free(b->inst[loc].side[1].v);
        }
    free(b->inst);
    if (b->slots)
        slots_free(b->slots, b->cap);
    free(b->sym);
    free(b->has_sym);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyMethodDef Books_methods[] = {
    {"feed", (PyCFunction)Books_feed, METH_VARARGS, "feed(buffer, base_offset=0): apply length-prefixed messages."},
    {"feed_partial", (PyCFunction)Books_feed_partial, METH_VARARGS,
     "feed_partial(buffer, base_offset=0): apply the whole messages; returns the bytes used (a cut tail is left)."},
    {"snapshot", (PyCFunction)Books_snapshot, METH_NOARGS, "{locate: (bids, asks, orders)}, levels best first."},
    {"bbo", (PyCFunction)Books_bbo, METH_O, "bbo(locate) -> (bid_price, bid_shares, ask_price, ask_shares)."},
    {"type_counts", (PyCFunction)Books_type_counts, METH_NOARGS, "Messages applied, by type."},
    {"errors", (PyCFunction)Books_errors, METH_NOARGS, "Errors by kind."},
    {"error_samples", (PyCFunction)Books_error_samples, METH_NOARGS, "The first errors: (kind, offset, bytes)."},
    {"symbols", (PyCFunction)Books_symbols, METH_NOARGS, "{locate: stock} from stock directory messages."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Books_getset[] = {
    {"messages", (getter)Books_get_messages, NULL, "framed messages seen", NULL},
    {"live_orders", (getter)Books_get_live, NULL, "orders on the books", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject BooksType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "feed_handler._book.Books",
    .tp_basicsize = sizeof(Books),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Compiled ITCH 5.0 order books (feed_handler.book.Books is the reference).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Books_init,
    .tp_dealloc = (destructor)Books_dealloc,
    .tp_methods = Books_methods,
    .tp_getset = Books_getset,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_book", "Compiled ITCH 5.0 order books.", -1, NULL,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__book(void) {
    init_lengths();
    if (PyType_Ready(&BooksType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    API.type = &BooksType;
    PyObject *capsule = PyCapsule_New(&API, BOOK_API_CAPSULE, NULL);
    if (!capsule || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&BooksType);
    if (PyModule_AddObject(m, "Books", (PyObject *)&BooksType) < 0) {
        Py_DECREF(&BooksType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
