/* Compiled ITCH 5.0 order books in plain C (no Python.h): the per-message path of replay, of the trader and of the
 * generator. feed_handler/book.py is the reference; every rule and error policy here is a copy of it, and the
 * differential tests compare the two books after every N messages. _book.c is the thin CPython binding; a C test
 * or a fuzzing harness can link this file alone (tests/c/book_core_test.c).
 *
 * Orders: open-addressing hash map (linear probing, backward-shift deletion) from order ref.
 * Levels: per instrument and side, an array sorted by key (bid: price, ask: ~price) so the best level is the last
 * one; most traffic is near the top, so inserts and removals move few entries. */
#ifndef LATLAB_BOOK_CORE_H
#define LATLAB_BOOK_CORE_H

#include <stddef.h>
#include <stdint.h>

#define BOOK_NLOCATE 65536
#define BOOK_MAX_SAMPLES 10

enum { E_UNKNOWN_TYPE, E_BAD_LENGTH, E_TRUNCATED, E_BAD_SIDE, E_ZERO_SHARES, E_DUPLICATE_REF, E_UNKNOWN_REF,
       E_OVER_EXECUTE, E_OVER_CANCEL, E_COUNT };
extern const char *const BOOK_ERROR_NAMES[E_COUNT];

typedef struct { uint64_t ref; uint32_t price, shares; uint16_t locate; uint8_t side, used; } BookOrder;
typedef struct { uint32_t key; uint32_t orders; uint64_t shares; } BookLevel;
typedef struct { BookLevel *v; uint32_t n, cap; } BookSide;
typedef struct { BookSide side[2]; uint32_t orders; } BookInst;
typedef struct { int kind; int64_t offset; unsigned char data[16]; int64_t len; } BookSample;

typedef struct {
    BookOrder *slots;
    size_t cap, count;
    int bits;
    BookInst *inst; /* BOOK_NLOCATE instruments */
    char (*sym)[8];
    uint8_t *has_sym;
    uint64_t type_counts[256];
    uint64_t errors[E_COUNT];
    BookSample samples[BOOK_MAX_SAMPLES]; /* the first errors */
    int nsamples;
    uint64_t messages;
} BookCore;

/* Empty books for about `capacity` live orders (the map grows past it); 0, or -1 when out of memory (freed). */
int book_init(BookCore *b, size_t capacity);
void book_free(BookCore *b);

/* Apply one message of len bytes at p (`offset` locates it for the error samples); -1 only when out of memory. */
int book_apply(BookCore *b, const unsigned char *p, int64_t len, int64_t offset);

/* Apply the length-prefixed frames of d[0, end); `final` says the buffer ends the stream, so that a frame cut at
 * its end is an error (counted) rather than left for the next buffer. Sets *framed and returns the bytes consumed,
 * or -1 when out of memory. */
int64_t book_feed_frames(BookCore *b, const unsigned char *d, int64_t end, int64_t base, int final, int64_t *framed);

/* Best level of one side (0 bid, 1 ask): price and shares, 0 and 0 when empty. */
void book_best(const BookCore *b, uint16_t locate, int side, uint32_t *price, uint64_t *shares);

/* The k-th best level of one side (k = 0: the best): 1 and its price and shares, or 0 past the last level. */
int book_level(const BookCore *b, uint16_t locate, int side, uint32_t k, uint32_t *price, uint64_t *shares);

/* Prefetch the hash slot the message refers to; no effect on the books. */
void book_prefetch_message(const BookCore *b, const unsigned char *p, int64_t len);

/* Prefetch what a new order on `locate` touches (the instrument, its best levels, the counters, and a line in
 * every page of the order map); no effect on the books. */
void book_warm(const BookCore *b, uint16_t locate);

#endif
