/* The compiled books' C API, shared by _book.c (which fills it), _gen.c and _trader.c (which import it). */
#ifndef LATLAB_BOOK_API_H
#define LATLAB_BOOK_API_H

#include <Python.h>
#include <stdint.h>

#include "book_core.h"

#define BOOK_API_CAPSULE "feed_handler._book._C_API"

typedef struct {
    /* Apply one ITCH message (len bytes, no length prefix); -1 only when out of memory. */
    int (*apply)(PyObject *books, const unsigned char *msg, Py_ssize_t len);
    /* Best level of one side (0 bid, 1 ask): price and shares, 0 and 0 when empty. */
    void (*best)(PyObject *books, uint16_t locate, int side, uint32_t *price, uint64_t *shares);
    /* Prefetch what apply() of this message will touch first (its order's hash slot); no effect on the books. */
    void (*prefetch)(PyObject *books, const unsigned char *msg, Py_ssize_t len);
    /* Prefetch what a new order on `locate` touches (the instrument, its best levels, the counters, and a line in
     * every page of the order map), so a trader waiting for a trigger keeps them in cache and its TLB; no effect
     * on the books. */
    void (*warm)(PyObject *books, uint16_t locate);
    PyTypeObject *type; /* feed_handler._book.Books */
    /* The plain-C books inside a Books object, for a plain-C core that calls book_core.c itself (the trader's
     * path); the object keeps them alive. */
    BookCore *(*core)(PyObject *books);
} BookApi;

#endif
