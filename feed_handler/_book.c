/* The thin CPython binding of book_core.c: feed_handler._book.Books, and the C API other extensions use
 * (book_api.h). The books themselves, their rules and their errors live in book_core.c. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "book_api.h"
#include "book_core.h"
#include "named_counts.h"

typedef struct {
    PyObject_HEAD
    BookCore core;
    int ready;
} Books;

/* feed: the buffer ends the stream, returns the frames; feed_partial: a piece of it, returns the bytes used. */
static PyObject *feed_buffer(Books *b, PyObject *args, int final) {
    Py_buffer view;
    Py_ssize_t base = 0, n = 0;
    if (!PyArg_ParseTuple(args, "y*|n", &view, &base))
        return NULL;
    int64_t framed = 0;
    Py_ssize_t used = (Py_ssize_t)book_feed_frames(&b->core, view.buf, view.len, base, final, &framed);
    n = (Py_ssize_t)framed;
    PyBuffer_Release(&view);
    if (used < 0)
        return PyErr_NoMemory();
    return PyLong_FromSsize_t(final ? n : used);
}

static PyObject *Books_feed(Books *b, PyObject *args) { return feed_buffer(b, args, 1); }

static PyObject *Books_feed_partial(Books *b, PyObject *args) { return feed_buffer(b, args, 0); }

static PyObject *depth_list(const BookSide *s, int side) {
    PyObject *list = PyList_New(s->n);
    if (!list)
        return NULL;
    for (uint32_t k = 0; k < s->n; k++) {
        const BookLevel *l = &s->v[s->n - 1 - k];
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
    for (int loc = 0; loc < BOOK_NLOCATE; loc++) {
        BookInst *in = &b->core.inst[loc];
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
    if (loc < 0 || loc >= BOOK_NLOCATE) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "stock locate out of range");
        return NULL;
    }
    BookSide *bid = &b->core.inst[loc].side[0], *ask = &b->core.inst[loc].side[1];
    uint32_t bp = bid->n ? bid->v[bid->n - 1].key : 0, ap = ask->n ? ~ask->v[ask->n - 1].key : 0;
    unsigned long long bs = bid->n ? bid->v[bid->n - 1].shares : 0, as = ask->n ? ask->v[ask->n - 1].shares : 0;
    return Py_BuildValue("(IKIK)", bp, bs, ap, as);
}

/* The C API other extensions use (trader/_trader.c, feed_handler/_gen.c): see book_api.h. */
static int api_apply(PyObject *books, const unsigned char *p, Py_ssize_t len) {
    return book_apply(&((Books *)books)->core, p, len, 0);
}

static void api_best(PyObject *books, uint16_t locate, int side, uint32_t *price, uint64_t *shares) {
    book_best(&((Books *)books)->core, locate, side, price, shares);
}

static void api_prefetch(PyObject *books, const unsigned char *p, Py_ssize_t len) {
    book_prefetch_message(&((Books *)books)->core, p, len);
}

static void api_warm(PyObject *books, uint16_t locate) { book_warm(&((Books *)books)->core, locate); }

static BookCore *api_core(PyObject *books) { return &((Books *)books)->core; }

static BookApi API = {api_apply, api_best, api_prefetch, api_warm, NULL, api_core};

static PyObject *Books_type_counts(Books *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyDict_New();
    for (int t = 0; out && t < 256; t++) {
        if (!b->core.type_counts[t])
            continue;
        char name[2] = {(char)t, 0};
        PyObject *v = PyLong_FromUnsignedLongLong(b->core.type_counts[t]);
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
    return named_counts(BOOK_ERROR_NAMES, b->core.errors, E_COUNT);
}

static PyObject *Books_error_samples(Books *b, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(b->core.nsamples);
    for (int k = 0; out && k < b->core.nsamples; k++) {
        BookSample *s = &b->core.samples[k];
        PyObject *t = Py_BuildValue("(sny#)", BOOK_ERROR_NAMES[s->kind], (Py_ssize_t)s->offset, s->data,
                                    (Py_ssize_t)s->len);
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
    for (int loc = 0; out && loc < BOOK_NLOCATE; loc++) {
        if (!b->core.has_sym[loc])
            continue;
        /* Alpha fields are space padded: strip spaces only; any byte outside printable ASCII is shown
         * as \xNN (the same text as feed_handler.book.symbol_text) */
        int n = 8;
        while (n > 0 && b->core.sym[loc][n - 1] == ' ')
            n--;
        char text[8 * 4];
        int len = 0;
        for (int i = 0; i < n; i++) {
            unsigned char c = (unsigned char)b->core.sym[loc][i];
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

static PyObject *Books_get_messages(Books *b, void *Py_UNUSED(c)) { return PyLong_FromUnsignedLongLong(b->core.messages); }
static PyObject *Books_get_live(Books *b, void *Py_UNUSED(c)) { return PyLong_FromSize_t(b->core.count); }

static int Books_init(Books *b, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"capacity", NULL};
    Py_ssize_t capacity = 1 << 16;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n", kwlist, &capacity))
        return -1;
    if (capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "capacity must be at least 1");
        return -1;
    }
    if (b->ready)
        book_free(&b->core);
    b->ready = 0;
    if (book_init(&b->core, (size_t)capacity) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    b->ready = 1;
    return 0;
}

static void Books_dealloc(Books *b) {
    if (b->ready)
        book_free(&b->core);
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
