/*
 * The thin CPython binding of the trader's path (path_core.c, plain C): trader._trader.Trader and reflect(), the
 * floor alone. The binding parses arguments, holds the buffers the core writes into (the stage rows, the floor's
 * frame), turns the store into a C callback, and the core's ends and failures into Python values and errors.
 * trader/trader_core.py is the reference; the differential tests feed both the same packets.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "book_api.h"
#include "feed_io.h"
#include "named_counts.h"
#include "path_core.h"
#include "router_core.h"
#include "t2t_common.h"

static BookApi *API;

typedef struct Trader {
    PyObject_HEAD
    TraderPath path;
    int ready; /* trader_init succeeded: trader_free at the end */
    PyObject *books, *shadow, *store;
    Py_buffer rows, acks;
    /* paired mode: the floor served by the same loop (attach_floor), its frame and rows held here */
    Floor floor;
    Py_buffer floor_frame, floor_rows;
} Trader;

static PyTypeObject TraderType;

/* The store as the core calls it: store(token, shares, price) -> None passes, anything else rejects. */
static int call_store(void *ctx, const unsigned char *token, int64_t shares, int64_t price) {
    PyObject *res = PyObject_CallFunction((PyObject *)ctx, "y#LL", (const char *)token,
                                          (Py_ssize_t)TRADER_TOKEN_LEN, (long long)shares, (long long)price);
    if (!res)
        return -1;
    int verdict = res != Py_None;
    Py_DECREF(res);
    return verdict;
}

/* After the core said -1: the store's Python error is set already; otherwise memory ran out. */
static PyObject *path_failed(void) {
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    return NULL;
}

static int rows_buffer(PyObject *rows, Py_buffer *view, const char *who) {
    if (PyObject_GetBuffer(rows, view, PyBUF_WRITABLE) < 0)
        return -1;
    if (view->len % (STAGES * 8) != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: rows must be n x %d int64", who, STAGES);
        return -1;
    }
    return 0;
}

static PyObject *Trader_run(Trader *t, PyObject *args, PyObject *kw) {
    static char *names[] = {"udp_fd", "tcp_fd", "wait_ms", "busy", NULL};
    int udp, tcp, wait_ms = 100, busy = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ii|ip", names, &udp, &tcp, &wait_ms, &busy))
        return NULL;
    TraderRunEnd end = trader_run(&t->path, udp, tcp, wait_ms, busy);
    if (end == RUN_RECV_ERROR)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (end == RUN_FAILED)
        return path_failed();
    return PyUnicode_FromString(TRADER_RUN_ENDS[end]);
}

static PyObject *Trader_attach_floor(Trader *t, PyObject *args, PyObject *kw) {
    static char *names[] = {"udp_fd", "tcp_fd", "frame", "rows", "seq_off", NULL};
    int udp, tcp;
    PyObject *frame, *rows;
    Py_ssize_t seq_off = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiOO|n", names, &udp, &tcp, &frame, &rows, &seq_off))
        return NULL;
    if (t->path.floor)
        return PyErr_Format(PyExc_ValueError, "a floor is attached already");
    if (PyObject_GetBuffer(frame, &t->floor_frame, PyBUF_WRITABLE) < 0)
        return NULL;
    if (rows_buffer(rows, &t->floor_rows, "floor") < 0) {
        PyBuffer_Release(&t->floor_frame);
        return NULL;
    }
    if (floor_init(&t->floor, udp, tcp, t->floor_frame.buf, (size_t)t->floor_frame.len, t->floor_rows.buf,
                   (size_t)t->floor_rows.len / (STAGES * 8), seq_off) < 0) {
        PyBuffer_Release(&t->floor_frame);
        PyBuffer_Release(&t->floor_rows);
        return PyErr_Format(PyExc_ValueError, "floor: seq_off %zd does not fit the frame", seq_off);
    }
    t->path.floor = &t->floor;
    Py_RETURN_NONE;
}

static PyObject *Trader_on_packet(Trader *t, PyObject *args) {
    Py_buffer b;
    long long t_kernel = 0;
    if (!PyArg_ParseTuple(args, "y*|L", &b, &t_kernel))
        return NULL;
    int r = trader_on_packet(&t->path, b.buf, (size_t)b.len, t_kernel, clock_origin(&t->path.clock));
    if (r == 0)
        r = trader_finish_packet(&t->path);
    PyBuffer_Release(&b);
    if (r < 0)
        return path_failed();
    return PyBytes_FromStringAndSize((const char *)t->path.out, (Py_ssize_t)t->path.out_len);
}

static PyObject *Trader_check_order(Trader *t, PyObject *args) {
    Py_buffer tok;
    long long shares, price, now;
    if (!PyArg_ParseTuple(args, "y*LLL", &tok, &shares, &price, &now))
        return NULL;
    if (tok.len != TRADER_TOKEN_LEN) {
        PyBuffer_Release(&tok);
        return PyErr_Format(PyExc_ValueError, "token must be %d bytes", TRADER_TOKEN_LEN);
    }
    int r = trader_risk_check(&t->path, tok.buf, shares, price, now);
    PyBuffer_Release(&tok);
    if (r == -2)
        return path_failed();
    if (r < 0)
        Py_RETURN_NONE;
    return PyUnicode_FromString(TRADER_REASONS[r]);
}

static PyObject *Trader_warm(Trader *t, PyObject *Py_UNUSED(ignored)) {
    trader_warm(&t->path);
    Py_RETURN_NONE;
}

static PyObject *Trader_kill(Trader *t, PyObject *arg) {
    const char *why = PyUnicode_AsUTF8(arg);
    if (!why)
        return NULL;
    trader_kill(&t->path, why);
    Py_RETURN_NONE;
}

static PyObject *Trader_stats(Trader *t, PyObject *Py_UNUSED(ignored)) {
    const TraderPath *p = &t->path;
    PyObject *rejects = named_counts(TRADER_REASONS, p->rejects, R_COUNT);
    if (!rejects)
        return NULL;
    return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsKsNsssnsisLsssnsKsKsKsK}", "packets", p->packets, "messages",
                         p->messages, "malformed", p->malformed, "gaps", p->gaps, "duplicates", p->duplicates,
                         "heartbeats", p->heartbeats, "triggers", p->triggers, "orders", p->orders, "sent", p->sent,
                         "reply_bytes", p->reply_bytes, "passed", p->passed, "rejects", rejects, "killed", p->killed,
                         "rows", (Py_ssize_t)p->nrows, "ended", p->ended, "last_trade", (long long)p->last_trade,
                         "stage_clock", p->clock.ns_per_tick > 0 ? "tsc" : "clock_gettime", "floor_rows",
                         (Py_ssize_t)(p->floor ? p->floor->nrows : 0), "floor_datagrams",
                         p->floor ? p->floor->datagrams : 0, "floor_reply_bytes", p->floor ? p->floor->reply_bytes : 0,
                         "warm_orders", p->shadow ? p->shadow->orders : 0, "fix_seq", p->fix.seq);
}

/* fix = (SenderCompID, TargetCompID, Symbol, first MsgSeqNum): printable, under FIX_NAME_MAX characters. */
static int fix_init(FixOrder *f, PyObject *fix) {
    const char *names[3];
    unsigned long long seq;
    if (!PyArg_ParseTuple(fix, "sssK", &names[0], &names[1], &names[2], &seq))
        return -1;
    char *dest[3] = {f->sender, f->target, f->symbol};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(names[k]);
        int printable = n > 0 && n < FIX_NAME_MAX;
        for (size_t i = 0; i < n && printable; i++)
            printable = names[k][i] > ' ' && names[k][i] < 127 && names[k][i] != '=';
        if (!printable) {
            PyErr_Format(PyExc_ValueError, "fix: '%s' must be 1 to %d printable characters", names[k],
                         FIX_NAME_MAX - 1);
            return -1;
        }
        memcpy(dest[k], names[k], n + 1);
    }
    f->seq = seq;
    f->stamp_sec = -1;
    return 0;
}

static int Trader_init(Trader *t, PyObject *args, PyObject *kw) {
    static char *names[] = {"books", "locate", "limit", "clip", "prefix", "frame", "token_off", "shares_off",
                            "price_off", "rows", "max_order_shares", "max_notional", "price_band_bps",
                            "max_orders_per_second", "last_trade", "store", "tsc", "shadow", "fix", "acks", NULL};
    PyObject *books, *store = Py_None, *shadow = Py_None, *fix = Py_None, *acks = Py_None;
    int tsc = 0;
    unsigned int locate, limit, clip;
    const char *prefix;
    Py_buffer frame;
    Py_ssize_t token_off, shares_off, price_off;
    long long max_shares, band, per_second, last_trade;
    double notional;
    PyObject *rows;
    if (t->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Trader: initialised already");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OIIIsy*nnnOLdLLL|OpOOO", names, &books, &locate, &limit, &clip,
                                     &prefix, &frame, &token_off, &shares_off, &price_off, &rows, &max_shares,
                                     &notional, &band, &per_second, &last_trade, &store, &tsc, &shadow, &fix, &acks))
        return -1;
    FixOrder fix_ids;
    int ok = PyObject_TypeCheck(books, API->type) &&
             (shadow == Py_None || (PyObject_TypeCheck(shadow, &TraderType) && shadow != (PyObject *)t &&
                                    ((Trader *)shadow)->ready && !((Trader *)shadow)->path.shadow &&
                                    ((Trader *)shadow)->path.cap > 0 && ((Trader *)shadow)->books != books)) &&
             locate < 65536 && strlen(prefix) == 2 && token_off >= 0 && shares_off >= 0 && price_off >= 0;
    if (!ok) {
        PyBuffer_Release(&frame);
        PyErr_SetString(PyExc_ValueError, "Trader: bad books, shadow, locate, prefix or frame offsets");
        return -1;
    }
    if ((fix != Py_None && fix_init(&fix_ids, fix) < 0) || rows_buffer(rows, &t->rows, "Trader") < 0) {
        PyBuffer_Release(&frame);
        return -1;
    }
    if (acks != Py_None) { /* one int64 per stage row */
        if (PyObject_GetBuffer(acks, &t->acks, PyBUF_WRITABLE) < 0 ||
            t->acks.len != t->rows.len / STAGES) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "Trader: acks must be one int64 per stage row");
            if (t->acks.obj)
                PyBuffer_Release(&t->acks);
            PyBuffer_Release(&t->rows);
            PyBuffer_Release(&frame);
            return -1;
        }
    }
    TraderParams p = {.locate = (uint16_t)locate, .limit = limit, .clip = clip, .prefix = {prefix[0], prefix[1]},
                      .frame = frame.buf, .frame_len = (size_t)frame.len, .token_off = (size_t)token_off,
                      .shares_off = (size_t)shares_off, .price_off = (size_t)price_off, .rows = t->rows.buf,
                      .rows_cap = (size_t)t->rows.len / (STAGES * 8), .acks = t->acks.obj ? t->acks.buf : NULL,
                      .max_shares = max_shares, .band_bps = band,
                      .per_second = per_second, .last_trade = last_trade, .max_notional = notional, .tsc = tsc,
                      .fix = fix != Py_None ? &fix_ids : NULL};
    const char *why;
    int r = trader_init(&t->path, API->core(books), &p, &why);
    PyBuffer_Release(&frame);
    if (r < 0) {
        PyBuffer_Release(&t->rows);
        if (t->acks.obj)
            PyBuffer_Release(&t->acks);
        if (r == -2)
            PyErr_NoMemory();
        else
            PyErr_Format(PyExc_ValueError, "Trader: %s", why);
        return -1;
    }
    t->ready = 1;
    Py_INCREF(books);
    t->books = books;
    if (shadow != Py_None) {
        Py_INCREF(shadow);
        t->shadow = shadow;
        t->path.shadow = &((Trader *)shadow)->path;
        t->path.shadow->clock.ns_per_tick = t->path.clock.ns_per_tick;
    }
    if (store != Py_None) {
        Py_INCREF(store);
        t->store = store;
        t->path.store = call_store;
        t->path.store_ctx = store;
    }
    return 0;
}

static void Trader_dealloc(Trader *t) {
    if (t->ready)
        trader_free(&t->path);
    Py_XDECREF(t->books);
    Py_XDECREF(t->shadow);
    Py_XDECREF(t->store);
    Py_buffer *held[] = {&t->rows, &t->acks, &t->floor_frame, &t->floor_rows};
    for (size_t k = 0; k < sizeof held / sizeof *held; k++)
        if (held[k]->obj)
            PyBuffer_Release(held[k]);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef Trader_methods[] = {
    {"run", (PyCFunction)(void (*)(void))Trader_run, METH_VARARGS | METH_KEYWORDS,
     "run(udp_fd, tcp_fd, wait_ms=100, busy=False) -> 'timeout' | 'end' | 'send_failed' | 'exchange_lost' | 'signal'"},
    {"attach_floor", (PyCFunction)(void (*)(void))Trader_attach_floor, METH_VARARGS | METH_KEYWORDS,
     "attach_floor(udp_fd, tcp_fd, frame, rows, seq_off=-1): run() serves the floor's feed too, datagram by "
     "datagram (paired mode)"},
    {"on_packet", (PyCFunction)Trader_on_packet, METH_VARARGS, "on_packet(packet, t_kernel=0) -> order frame or b''"},
    {"check_order", (PyCFunction)Trader_check_order, METH_VARARGS,
     "check_order(token, shares, price, now_ns) -> None | reason (the risk gate alone)"},
    {"warm", (PyCFunction)Trader_warm, METH_NOARGS,
     "One pass of the idle loop's cache warming (the busy-poll loop runs it between packets); changes nothing."},
    {"kill", (PyCFunction)Trader_kill, METH_O, "The kill switch: no order passes from now on."},
    {"stats", (PyCFunction)Trader_stats, METH_NOARGS, "Counters, rejects by reason, the kill reason."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TraderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "trader._trader.Trader",
    .tp_basicsize = sizeof(Trader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The compiled trader path (see trader/trader_core.py for the reference).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Trader_init,
    .tp_dealloc = (destructor)Trader_dealloc,
    .tp_methods = Trader_methods,
};

/* The floor alone: every datagram from udp_fd through reflect_one. Returns (status, rows written, reply bytes
 * read); rows are written from `start` on. */
static PyObject *reflect(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"udp_fd", "tcp_fd", "frame", "rows", "start", "wait_ms", "busy", "seq_off", NULL};
    int udp, tcp, wait_ms = 100, busy = 0;
    PyObject *frame_obj, *rows_obj;
    Py_ssize_t start, seq_off = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iiOOn|ipn", names, &udp, &tcp, &frame_obj, &rows_obj, &start,
                                     &wait_ms, &busy, &seq_off))
        return NULL;
    Py_buffer frame, rows;
    if (PyObject_GetBuffer(frame_obj, &frame, PyBUF_WRITABLE) < 0)
        return NULL;
    if (rows_buffer(rows_obj, &rows, "floor") < 0) {
        PyBuffer_Release(&frame);
        return NULL;
    }
    Floor f;
    if (floor_init(&f, udp, tcp, frame.buf, (size_t)frame.len, rows.buf, (size_t)rows.len / (STAGES * 8),
                   seq_off) < 0 || start < 0) {
        PyBuffer_Release(&frame);
        PyBuffer_Release(&rows);
        return PyErr_Format(PyExc_ValueError, "floor: seq_off %zd does not fit the frame, or start < 0", seq_off);
    }
    f.nrows = (size_t)start;
    static unsigned char buf[65536];
    const int fds[4] = {udp, tcp, -1, -1};
    const char *status = "timeout";
    int64_t deadline = now_ns() + (int64_t)wait_ms * 1000000LL;
    for (;;) {
        int64_t t_kernel = 0;
        ssize_t n = receive(udp, buf, sizeof buf, &t_kernel);
        if (n < 0) {
            status = errno == EINTR ? "signal" : "recv_failed";
            break;
        }
        if (n == 0) {
            int w = wait_feed(fds, wait_ms, busy);
            if (w == 2) {
                if (drain_tcp(tcp, &f.reply_bytes) < 0) {
                    status = "exchange_lost";
                    break;
                }
                continue;
            }
            if (w == 0 && (!busy || now_ns() > deadline))
                break;
            continue;
        }
        int r = reflect_one(&f, buf, n, t_kernel, now_ns());
        if (r != 0) {
            status = r > 0 ? "end" : "send_failed";
            break;
        }
        if (busy && now_ns() > deadline)
            break;
    }
    PyBuffer_Release(&frame);
    PyBuffer_Release(&rows);
    return Py_BuildValue("(snK)", status, (Py_ssize_t)f.nrows, (unsigned long long)f.reply_bytes);
}

/* The router's split (router_core.c) over compiled books: venues = [(books, locate, taker_fee, latency_ns, up)]. */
static PyObject *split(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *seq;
    int side;
    unsigned int shares, limit;
    if (!PyArg_ParseTuple(args, "OCII", &seq, &side, &shares, &limit))
        return NULL;
    PyObject *venues = PySequence_Fast(seq, "split: venues must be a sequence");
    if (!venues)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(venues);
    if (n > ROUTER_MAX_VENUES) {
        Py_DECREF(venues);
        return PyErr_Format(PyExc_ValueError, "split: at most %d venues", ROUTER_MAX_VENUES);
    }
    RouterVenue v[ROUTER_MAX_VENUES];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *books;
        unsigned int locate;
        long long fee, latency;
        int up;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(venues, i), "OILLp", &books, &locate, &fee, &latency, &up) ||
            !PyObject_TypeCheck(books, API->type) || locate > 65535) {
            Py_DECREF(venues);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "split: a venue is (Books, locate < 65536, fee, latency_ns, up)");
            return NULL;
        }
        v[i] = (RouterVenue){API->core(books), (uint16_t)locate, fee, latency, up};
    }
    RouterChild out[ROUTER_MAX_VENUES];
    uint32_t placed;
    int count = router_split(v, (int)n, (char)side, shares, limit, out, &placed);
    Py_DECREF(venues);
    if (count < 0)
        return PyErr_Format(PyExc_ValueError, "split: side must be 'B' or 'S'");
    PyObject *children = PyList_New(count);
    for (int k = 0; children && k < count; k++) {
        PyObject *child = Py_BuildValue("(iII)", out[k].venue, out[k].shares, out[k].price);
        if (!child) {
            Py_CLEAR(children);
            break;
        }
        PyList_SET_ITEM(children, k, child);
    }
    return children;
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS,
     "split(venues, side, shares, limit) -> [(venue, shares, price)]: the router's split (trader/router.py)"},
    {"reflect", (PyCFunction)(void (*)(void))reflect, METH_VARARGS | METH_KEYWORDS,
     "The floor: UDP in → a frame out on TCP, no logic. -> (status, rows, reply bytes read)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_trader", "The compiled tick-to-trade path.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__trader(void) {
    PyObject *book_module = PyImport_ImportModule("feed_handler._book"); /* PyCapsule_Import needs it loaded */
    if (!book_module)
        return NULL;
    Py_DECREF(book_module);
    API = PyCapsule_Import(BOOK_API_CAPSULE, 0);
    if (!API || PyType_Ready(&TraderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&TraderType);
    if (PyModule_AddObject(m, "Trader", (PyObject *)&TraderType) < 0) {
        Py_DECREF(&TraderType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "STAGES", STAGES);
    return m;
}
