/*
 * The MoldUDP64 per-packet paths in C; the Python versions are the reference and the tests hold the
 * two to the same answers.
 *
 * check_packet(buffer) -> None | (kind, offset): validates a packet's layout without copying its
 *     messages (reference: latlab.wire.moldudp64.decode_packet).
 * publish(...): the publisher's open loop for fixed-size synthetic messages (reference: the Python
 *     loop in udp_multicast.publisher.publish).
 * drain(...): the subscriber's in-order live path: receives until the socket is empty or a packet
 *     needs the full protocol logic (a gap, a heartbeat, a malformed packet...), which it hands back
 *     (reference: udp_multicast.subscriber.Subscriber.on_packet).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "byteorder.h"
#include "mold_core.h"
#include "rx_timestamp.h"

#define MAX_PACKET 65536

static int64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static PyObject *check_packet(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    int64_t at = 0;
    const char *kind = mold_check(v.buf, v.len, &at);
    PyBuffer_Release(&v);
    if (kind == NULL)
        Py_RETURN_NONE;
    return Py_BuildValue("(sL)", kind, (long long)at);
}

/* An int64 array argument, writable, and how many items it holds. */
static int64_t *int64s(Py_buffer *b, Py_ssize_t *n) {
    if (b->len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "expected int64 arrays");
        return NULL;
    }
    *n = b->len / 8;
    return (int64_t *)b->buf;
}

static void sleep_ns(int64_t ns) {
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    nanosleep(&ts, NULL);
}

static PyObject *publish(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"fd", "group", "port", "session", "template", "block", "seq_offset", "count",
                            "period_ns", "t0_ns", "first", "counts", "mono", "real", NULL};
    int fd, port, block, seq_offset;
    const char *group;
    long long count, t0;
    double period;
    Py_buffer session, tmpl, b_first, b_counts, b_mono, b_real;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "isiy*y*iiLdLw*w*w*w*", names, &fd, &group, &port, &session, &tmpl,
                                     &block, &seq_offset, &count, &period, &t0, &b_first, &b_counts, &b_mono,
                                     &b_real))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t cap = 0, n2 = 0, n3 = 0, n4 = 0;
    int64_t *first = int64s(&b_first, &cap), *counts = int64s(&b_counts, &n2), *mono = int64s(&b_mono, &n3),
            *real = int64s(&b_real, &n4);
    if (!first || !counts || !mono || !real)
        goto done;
    if (session.len != MOLD_SESSION_LEN || block <= 0 || tmpl.len % block != 0 || seq_offset + 8 > block ||
        MOLD_HEADER_LEN + tmpl.len > MAX_PACKET || n2 < cap || n3 < cap || n4 < cap) {
        PyErr_SetString(PyExc_ValueError, "publish: inconsistent session, template or arrays");
        goto done;
    }
    struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, group, &dest.sin_addr) != 1) {
        PyErr_Format(PyExc_ValueError, "publish: bad group %s", group);
        goto done;
    }
    static unsigned char packet[MAX_PACKET];
    memcpy(packet, session.buf, MOLD_SESSION_LEN);
    memcpy(packet + MOLD_HEADER_LEN, tmpl.buf, tmpl.len);
    const long long per_packet = tmpl.len / block;
    long long seq = 1, packets = 0;
    int64_t last_send = clock_ns(CLOCK_MONOTONIC), last_signal_check = last_send;
    const char *status = "ok";
    while (seq <= count) {
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        if (now - last_signal_check > 10000000) { /* a SIGINT/SIGTERM ends the loop, keeping what was sent */
            last_signal_check = now;
            if (PyErr_CheckSignals() < 0) {
                if (!PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))
                    goto done;
                PyErr_Clear();
                status = "interrupted";
                break;
            }
        }
        long long due = count;
        if (period > 0)
            due = now < t0 ? 0 : (long long)((double)(now - t0) / period) + 1;
        if (due > count)
            due = count;
        if (due < seq) {
            if (now - last_send > 1000000000LL) {
                unsigned char hb[MOLD_HEADER_LEN];
                memcpy(hb, session.buf, MOLD_SESSION_LEN);
                put_be64(hb + 10, (uint64_t)seq);
                hb[18] = hb[19] = 0;
                sendto(fd, hb, MOLD_HEADER_LEN, 0, (struct sockaddr *)&dest, sizeof dest);
                last_send = now;
            }
            int64_t wait = t0 + (int64_t)((double)(seq - 1) * period) - now;
            if (wait > 200000)
                sleep_ns(wait - 100000);
            continue;
        }
        if (packets == cap) {
            PyErr_SetString(PyExc_ValueError, "publish: record arrays are full");
            goto done;
        }
        long long n = due - seq + 1 < per_packet ? due - seq + 1 : per_packet;
        put_be64(packet + 10, (uint64_t)seq);
        packet[18] = (unsigned char)(n >> 8);
        packet[19] = (unsigned char)n;
        for (long long i = 0; i < n; i++)
            put_be64(packet + MOLD_HEADER_LEN + i * block + seq_offset, (uint64_t)(seq + i));
        first[packets] = seq;
        counts[packets] = n;
        mono[packets] = clock_ns(CLOCK_MONOTONIC);
        real[packets] = clock_ns(CLOCK_REALTIME);
        if (sendto(fd, packet, (size_t)(MOLD_HEADER_LEN + n * block), 0, (struct sockaddr *)&dest, sizeof dest) < 0) {
            if (errno == EINTR)
                continue; /* not recorded: the next pass resends this packet */
            PyErr_SetFromErrno(PyExc_OSError);
            goto done;
        }
        last_send = mono[packets];
        packets++;
        seq += n;
    }
    result = Py_BuildValue("(LLs)", seq, packets, status);
done:
    PyBuffer_Release(&session);
    PyBuffer_Release(&tmpl);
    PyBuffer_Release(&b_first);
    PyBuffer_Release(&b_counts);
    PyBuffer_Release(&b_mono);
    PyBuffer_Release(&b_real);
    return result;
}

static PyObject *drain(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"fd", "session", "expected", "highest", "samples", "seen", "update", "first_seq",
                            "count", "t_user", "t_kernel", "other_fd", "wait_ms", NULL};
    int fd, other_fd = -1, wait_ms = 0;
    long long expected, highest, samples;
    Py_buffer session, b_first, b_count, b_user, b_kernel;
    PyObject *seen, *update;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iy*LLLO!Ow*w*w*w*|ii", names, &fd, &session, &expected, &highest,
                                     &samples, &PySet_Type, &seen, &update, &b_first, &b_count, &b_user, &b_kernel,
                                     &other_fd, &wait_ms))
        return NULL;
    PyObject *result = NULL, *leftover = NULL;
    Py_ssize_t cap = 0, n2 = 0, n3 = 0, n4 = 0;
    int64_t *first = int64s(&b_first, &cap), *counts = int64s(&b_count, &n2), *t_user = int64s(&b_user, &n3),
            *t_kernel = int64s(&b_kernel, &n4);
    if (!first || !counts || !t_user || !t_kernel)
        goto done;
    if (session.len != MOLD_SESSION_LEN || n2 < cap || n3 < cap || n4 < cap) {
        PyErr_SetString(PyExc_ValueError, "drain: inconsistent session or arrays");
        goto done;
    }
    static unsigned char buf[MAX_PACKET];
    static char control[512];
    long long live = 0;
    int64_t now = 0, kernel = 0;
    for (;;) {
        struct iovec iov = {buf, sizeof buf};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
        ssize_t len = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (len < 0) {
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_ms > 0) {
                /* Wait here rather than in Python: the feed wakes this loop, anything else returns to Python. */
                struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = other_fd, .events = POLLIN}};
                int ready = poll(fds, other_fd >= 0 ? 2 : 1, wait_ms);
                if (ready > 0 && (fds[0].revents & POLLIN) && !(other_fd >= 0 && fds[1].revents))
                    continue;
                break; /* timeout, the other socket, or a signal (Python runs its handler after the return) */
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            PyErr_SetFromErrno(PyExc_OSError);
            goto done;
        }
        now = clock_ns(CLOCK_MONOTONIC);
        kernel = kernel_rx_timestamp(&msg);
        unsigned count = len >= MOLD_HEADER_LEN ? be16(buf + 18) : 0;
        long long seq = len >= MOLD_HEADER_LEN ? (long long)be64(buf + 10) : 0;
        if (!mold_in_order(buf, len, session.buf, expected, highest) || samples == cap) {
            leftover = PyBytes_FromStringAndSize((const char *)buf, len); /* the full logic decides */
            if (!leftover)
                goto done;
            break;
        }
        PyObject *key = PyLong_FromLongLong(seq);
        if (!key || PySet_Add(seen, key) < 0) {
            Py_XDECREF(key);
            goto done;
        }
        Py_DECREF(key);
        PyObject *blocks = PyBytes_FromStringAndSize((const char *)buf + MOLD_HEADER_LEN, len - MOLD_HEADER_LEN);
        PyObject *r = blocks ? PyObject_CallOneArg(update, blocks) : NULL;
        Py_XDECREF(blocks);
        if (!r)
            goto done;
        Py_DECREF(r);
        first[samples] = seq;
        counts[samples] = count;
        t_user[samples] = now;
        t_kernel[samples] = kernel;
        samples++;
        expected = seq + count;
        highest = seq;
        live += count;
    }
    result = Py_BuildValue("(LLLLNLL)", expected, highest, samples, live, leftover ? leftover : Py_NewRef(Py_None),
                           now, kernel);
    leftover = NULL;
done:
    Py_XDECREF(leftover);
    PyBuffer_Release(&session);
    PyBuffer_Release(&b_first);
    PyBuffer_Release(&b_count);
    PyBuffer_Release(&b_user);
    PyBuffer_Release(&b_kernel);
    return result;
}

static PyMethodDef methods[] = {
    {"check_packet", check_packet, METH_O, "None when the MoldUDP64 packet is well formed, else (kind, offset)."},
    {"publish", (PyCFunction)(void (*)(void))publish, METH_VARARGS | METH_KEYWORDS,
     "Open-loop publisher for fixed-size messages: -> (next sequence, packets, status)."},
    {"drain", (PyCFunction)(void (*)(void))drain, METH_VARARGS | METH_KEYWORDS,
     "Receive in-order live packets until the socket is empty or one needs the full logic: "
     "-> (expected, highest, samples, live messages, leftover packet or None, its t_user, its t_kernel)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mold", "MoldUDP64 per-packet paths in C.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__mold(void) { return PyModule_Create(&module); }
