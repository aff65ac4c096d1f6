/* The thin CPython binding of gen_core.c: feed_handler._gen.Flow. Arrays come in through the buffer protocol
 * (numpy int64 / float64, C-contiguous); frames go out as bytes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "book_api.h"
#include "gen_core.h"

static BookApi *API;

typedef struct {
    PyObject_HEAD GenState state;
    PyObject *books;
    int ready;
} Flow;

static int books_apply(void *ctx, const unsigned char *msg, size_t len) {
    return API->apply((PyObject *)ctx, msg, (Py_ssize_t)len);
}

static uint32_t books_best(void *ctx, uint16_t locate, int side) {
    uint32_t price;
    uint64_t shares;
    API->best((PyObject *)ctx, locate, side, &price, &shares);
    return price;
}

/* A read-only view of an array of `n` items of `itemsize` bytes (n < 0: any length, returned in *n); `kinds` are
 * the struct codes its format may end in ("lq" int64, "d" float64; NULL: any). */
static int view(PyObject *o, Py_buffer *v, Py_ssize_t itemsize, Py_ssize_t *n, const char *name, const char *kinds) {
    if (PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = v->format ? v->format : "B";
    char code = f[strlen(f) - 1];
    if (kinds && (v->itemsize != itemsize || !strchr(kinds, code))) {
        PyErr_Format(PyExc_TypeError, "%s: an array of %s expected, got format '%s'", name,
                     kinds[0] == 'd' ? "float64" : "int64", f);
        PyBuffer_Release(v);
        return -1;
    }
    if (v->len % itemsize || (*n >= 0 && v->len != *n * itemsize)) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd items of %zd bytes", name, v->len,
                     *n >= 0 ? *n : v->len / itemsize, itemsize);
        PyBuffer_Release(v);
        return -1;
    }
    *n = v->len / itemsize;
    return 0;
}

static void release(Py_buffer *v, int count) {
    for (int i = 0; i < count; i++)
        PyBuffer_Release(&v[i]);
}

static int Flow_init(Flow *self, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"books", "stocks", "mids", "live_orders", "cum", NULL};
    PyObject *books, *mids_obj, *cum_obj;
    Py_buffer stocks;
    long live_orders;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!y*OlO", kw, API->type, &books, &stocks, &mids_obj,
                                     &live_orders, &cum_obj))
        return -1;
    Py_buffer v[2];
    Py_ssize_t instruments = stocks.len / 8, ncum = GEN_MIX;
    int rc = -1;
    if (stocks.len % 8 || !instruments)
        PyErr_SetString(PyExc_ValueError, "stocks: 8 bytes per instrument");
    else if (view(mids_obj, &v[0], 8, &instruments, "mids", "lq") == 0) {
        if (view(cum_obj, &v[1], 8, &ncum, "cum", "d") == 0) {
            if (self->ready)
                gen_free(&self->state);
            GenBook book = {books, books_apply, books_best};
            if (gen_init(&self->state, book, stocks.buf, v[0].buf, (size_t)instruments, live_orders, v[1].buf) < 0)
                PyErr_NoMemory();
            else {
                Py_INCREF(books);
                Py_XSETREF(self->books, books);
                self->ready = 1;
                rc = 0;
            }
            PyBuffer_Release(&v[1]);
        }
        PyBuffer_Release(&v[0]);
    }
    PyBuffer_Release(&stocks);
    return rc;
}

/* Call gen_build or gen_flow into a bytes object sized for n frames, shrunk to what was written. */
static PyObject *run(Flow *self, Py_buffer *v, Py_ssize_t n, int flow) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * GEN_MAX_FRAME);
    if (!out)
        return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    long written;
    if (flow) {
        GenFlowBatch b = {v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, v[5].buf,
                          v[6].buf, v[7].buf, v[8].buf, v[9].buf, (size_t)n};
        written = gen_flow(&self->state, &b, o);
    } else {
        written = gen_build(&self->state, v[0].buf, v[1].buf, v[2].buf, v[3].buf, v[4].buf, (size_t)n, o);
    }
    if (written < 0) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    if (_PyBytes_Resize(&out, written) < 0)
        return NULL;
    return out;
}

/* Views of `count` arrays, all as long as the first; the first `ints` are int64, the rest float64. */
static PyObject *with_arrays(Flow *self, PyObject *args, const char *const *names, int count, int ints, int flow) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Flow is not initialised");
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) != count) {
        PyErr_Format(PyExc_TypeError, "expected %d arrays", count);
        return NULL;
    }
    Py_buffer v[10];
    Py_ssize_t n = -1;
    for (int i = 0; i < count; i++) {
        if (view(PyTuple_GET_ITEM(args, i), &v[i], 8, &n, names[i], i < ints ? "lq" : "d") < 0) {
            release(v, i);
            return NULL;
        }
    }
    PyObject *out = run(self, v, n, flow);
    release(v, count);
    return out;
}

static const char *const BUILD_NAMES[] = {"times", "locs", "sides", "depth", "lots"};
static const char *const FLOW_NAMES[] = {"times", "locs", "lots", "depth", "action_r",
                                         "pick_r", "side_r", "price_r", "walk_r", "extra_r"};

static PyObject *Flow_build(Flow *self, PyObject *args) { return with_arrays(self, args, BUILD_NAMES, 5, 5, 0); }

static PyObject *Flow_flow(Flow *self, PyObject *args) { return with_arrays(self, args, FLOW_NAMES, 10, 4, 1); }

static PyObject *Flow_get_live(Flow *self, void *Py_UNUSED(c)) { return PyLong_FromSize_t(self->state.n); }

static void Flow_dealloc(Flow *self) {
    if (self->ready)
        gen_free(&self->state);
    Py_XDECREF(self->books);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Flow_methods[] = {
    {"build", (PyCFunction)Flow_build, METH_VARARGS,
     "build(times, locs, sides, depth, lots) -> bytes: the opening build-up's adds, framed (int64 arrays)."},
    {"flow", (PyCFunction)Flow_flow, METH_VARARGS,
     "flow(times, locs, lots, depth, action_r, pick_r, side_r, price_r, walk_r, extra_r) -> bytes: one batch of "
     "order flow, framed (the first four int64, the rest float64)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Flow_getset[] = {
    {"live", (getter)Flow_get_live, NULL, "live orders now", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FlowType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "feed_handler._gen.Flow",
    .tp_basicsize = sizeof(Flow),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Flow(books, stocks, mids, live_orders, cum): the generator's compiled order flow.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Flow_init,
    .tp_dealloc = (destructor)Flow_dealloc,
    .tp_methods = Flow_methods,
    .tp_getset = Flow_getset,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gen", "The session generator's compiled order flow.",
                                    -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__gen(void) {
    PyObject *book_module = PyImport_ImportModule("feed_handler._book"); /* PyCapsule_Import needs it loaded */
    if (!book_module)
        return NULL;
    Py_DECREF(book_module);
    API = PyCapsule_Import(BOOK_API_CAPSULE, 0);
    if (!API || PyType_Ready(&FlowType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&FlowType);
    if (PyModule_AddObject(m, "Flow", (PyObject *)&FlowType) < 0) {
        Py_DECREF(&FlowType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
