/*
 * The timed ping-pong loops, compiled so that Python's per-call cost stays out of the figures.
 * toe_bench/pingpong_py.py is the reference implementation of the same contract; the tests run both.
 *
 * client_loop(fd, stream, size, warmup, count, duration_ns, busy, period_ns, timeout_ns,
 *             send_ns, rtt_ns, corrected_ns) -> (measured, warmup_done, status, errno)
 *   Sends `size`-byte messages carrying a sequence number in their first 8 bytes and waits for each echo.
 *   Timestamps: CLOCK_MONOTONIC in user space, before send() and after the last byte is received (RTT).
 *   send_ns/rtt_ns/corrected_ns are writable int64 buffers of at least `count` items, allocated by
 *   the caller (corrected_ns may be None; it is filled only in open loop, period_ns > 0, with
 *   receive time minus intended send time).
 *   status: "ok", "interrupted" (a signal; what was measured is returned), "timeout" (no echo within
 *   timeout_ns), "closed" (peer closed), "mismatch" (wrong echo), "error" (errno set).
 *
 * server_loop(fd, stream, busy, idle_timeout_ns) -> (echoed, status, errno)
 *   Echoes every datagram (UDP) or every byte (TCP) back to its sender until the peer closes,
 *   nothing arrives for idle_timeout_ns, or a signal arrives. A UDP socket is connected to the
 *   first sender: it serves that one client from then on.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include "int64_buffer.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define CHECK_EVERY 1024u
#define MAX_MSG 65536

enum rx_result { RX_OK = 0, RX_TIMEOUT, RX_CLOSED, RX_ERROR, RX_INTERRUPTED, RX_SHORT };

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Called rarely: true when a Python signal handler raised (KeyboardInterrupt). */
static int interrupted(void) {
    if (PyErr_CheckSignals() < 0) {
        PyErr_Clear();
        return 1;
    }
    return 0;
}

static enum rx_result wait_rx(unsigned *spins, int64_t deadline) {
    if (errno == EINTR)
        return interrupted() ? RX_INTERRUPTED : RX_OK;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return RX_ERROR;
    if ((++*spins % CHECK_EVERY) == 0) {
        if (deadline && now_ns() > deadline)
            return RX_TIMEOUT;
        if (interrupted())
            return RX_INTERRUPTED;
    }
    return RX_OK;
}

static enum rx_result recv_msg(int fd, char *buf, size_t size, int stream, int busy, int64_t deadline) {
    size_t got = 0;
    unsigned spins = 0;
    int flags = busy ? MSG_DONTWAIT : 0;
    while (got < size) {
        ssize_t n = recv(fd, buf + got, stream ? size - got : MAX_MSG, flags);
        if (n > 0) {
            if (!stream)
                return (size_t)n == size ? RX_OK : RX_SHORT;
            got += (size_t)n;
        } else if (n == 0 && stream) {
            return RX_CLOSED;
        } else if (n == 0) {
            return RX_SHORT;
        } else {
            enum rx_result r = wait_rx(&spins, deadline);
            if (r != RX_OK)
                return r;
            if (!busy && deadline && now_ns() > deadline)
                return RX_TIMEOUT;
        }
    }
    return RX_OK;
}

static int send_all(int fd, const char *buf, size_t size) {
    size_t sent = 0;
    while (sent < size) {
        ssize_t n = send(fd, buf + sent, size - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return -1;
        }
        sent += (size_t)n;
    }
    return 0;
}

static const char *rx_status(enum rx_result r) {
    switch (r) {
    case RX_TIMEOUT: return "timeout";
    case RX_CLOSED: return "closed";
    case RX_INTERRUPTED: return "interrupted";
    case RX_SHORT: return "mismatch";
    case RX_ERROR: return "error";
    default: return "ok";
    }
}

static PyObject *client_loop(PyObject *self, PyObject *args) {
    (void)self;
    int fd, stream, busy;
    Py_ssize_t size;
    long long warmup, count, duration_ns, period_ns, timeout_ns;
    PyObject *send_obj, *rtt_obj, *corr_obj;
    if (!PyArg_ParseTuple(args, "ipnLLLpLLOOO", &fd, &stream, &size, &warmup, &count, &duration_ns,
                          &busy, &period_ns, &timeout_ns, &send_obj, &rtt_obj, &corr_obj))
        return NULL;
    if (size < 8 || size > MAX_MSG) {
        PyErr_SetString(PyExc_ValueError, "size must be between 8 and 65536 bytes");
        return NULL;
    }
    Py_buffer sendv, rttv, corrv;
    int have_corr = corr_obj != Py_None;
    if (get_int64_buffer(send_obj, &sendv, count, "send_ns") < 0)
        return NULL;
    if (get_int64_buffer(rtt_obj, &rttv, count, "rtt_ns") < 0) {
        PyBuffer_Release(&sendv);
        return NULL;
    }
    if (have_corr && get_int64_buffer(corr_obj, &corrv, count, "corrected_ns") < 0) {
        PyBuffer_Release(&sendv);
        PyBuffer_Release(&rttv);
        return NULL;
    }
    int64_t *send_ns = sendv.buf, *rtt_ns = rttv.buf, *corr_ns = have_corr ? corrv.buf : NULL;
    static char txbuf[MAX_MSG], rxbuf[MAX_MSG];
    memset(txbuf, 0xA5, (size_t)size);

    long long measured = 0, warmed = 0;
    const char *status = "ok";
    int err = 0;
    int64_t measure_start = 0;
    for (long long i = 0; measured < count; i++) {
        int in_warmup = i < warmup;
        int64_t intended = 0;
        if (!in_warmup && measure_start == 0)
            measure_start = now_ns();
        if (!in_warmup && period_ns > 0) {
            intended = measure_start + (int64_t)measured * period_ns;
            unsigned spins = 0;
            while (now_ns() < intended) {
                if ((++spins % CHECK_EVERY) == 0 && interrupted()) {
                    status = "interrupted";
                    goto done;
                }
            }
        }
        uint64_t seq = (uint64_t)i;
        memcpy(txbuf, &seq, sizeof seq);
        int64_t t0 = now_ns();
        if (send_all(fd, txbuf, (size_t)size) < 0) {
            status = "error";
            err = errno;
            break;
        }
        enum rx_result r = recv_msg(fd, rxbuf, (size_t)size, stream, busy, timeout_ns ? t0 + timeout_ns : 0);
        int64_t t1 = now_ns();
        if (r != RX_OK) {
            status = rx_status(r);
            err = r == RX_ERROR ? errno : 0;
            break;
        }
        if (memcmp(rxbuf, txbuf, (size_t)size) != 0) {
            status = "mismatch";
            break;
        }
        if (in_warmup) {
            warmed++;
            continue;
        }
        send_ns[measured] = t0;
        rtt_ns[measured] = t1 - t0;
        if (corr_ns)
            corr_ns[measured] = period_ns > 0 ? t1 - intended : t1 - t0;
        measured++;
        if (duration_ns > 0 && (measured % 64) == 0 && t1 - measure_start >= duration_ns)
            break;
    }
done:
    PyBuffer_Release(&sendv);
    PyBuffer_Release(&rttv);
    if (have_corr)
        PyBuffer_Release(&corrv);
    return Py_BuildValue("LLsi", measured, warmed, status, err);
}

static PyObject *server_loop(PyObject *self, PyObject *args) {
    (void)self;
    int fd, stream, busy;
    long long idle_timeout_ns;
    if (!PyArg_ParseTuple(args, "ipLp", &fd, &stream, &idle_timeout_ns, &busy))
        return NULL;
    static char buf[MAX_MSG];
    struct sockaddr_storage peer;
    long long echoed = 0, echoed_at_check = 0;
    const char *status = "ok";
    int err = 0;
    int flags = busy ? MSG_DONTWAIT : 0;
    int64_t last_traffic = now_ns();
    unsigned spins = 0;
    int connected = stream;
    for (;;) {
        socklen_t plen = sizeof peer;
        ssize_t n = connected ? recv(fd, buf, sizeof buf, flags)
                              : recvfrom(fd, buf, sizeof buf, flags, (struct sockaddr *)&peer, &plen);
        if (n >= 0 && !connected) {
            /* One client per server: connecting the UDP socket to it caches the route, so no echo pays for a
             * route lookup (sendto with an address does one per datagram). */
            if (connect(fd, (struct sockaddr *)&peer, plen) < 0) {
                status = "error";
                err = errno;
                break;
            }
            connected = 1;
        }
        if (n > 0 || (n == 0 && !stream)) {
            int bad = stream ? send_all(fd, buf, (size_t)n) < 0 : send(fd, buf, (size_t)n, 0) < 0;
            if (bad) {
                status = "error";
                err = errno;
                break;
            }
            echoed++;
            continue;
        }
        if (n == 0) {
            status = "closed";
            break;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            status = "error";
            err = errno;
            break;
        }
        /* Blocking sockets come here only on EINTR or SO_RCVTIMEO expiry, so always look. */
        if (busy && errno != EINTR && (++spins % CHECK_EVERY) != 0)
            continue;
        if (interrupted()) {
            status = "interrupted";
            break;
        }
        int64_t t = now_ns();
        if (echoed != echoed_at_check) {
            echoed_at_check = echoed;
            last_traffic = t;
        } else if (t - last_traffic > idle_timeout_ns) {
            status = "idle";
            break;
        }
    }
    return Py_BuildValue("Lsi", echoed, status, err);
}

static PyMethodDef methods[] = {
    {"client_loop", client_loop, METH_VARARGS, "Timed ping-pong client loop (see module docs)."},
    {"server_loop", server_loop, METH_VARARGS, "Echo server loop (see module docs)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pingpong",
                                    "Compiled ping-pong loops; pingpong_py is the reference.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__pingpong(void) { return PyModule_Create(&module); }
