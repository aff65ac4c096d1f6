/*
 * CPython binding of afxdp_core (latlab's AF_XDP endpoint). The loops live in afxdp_core.c; this only turns
 * arguments and results into Python objects and asks Python for pending signals between spins.
 *
 *   open(ifname, queue, native, try_zero_copy) -> handle      (raises OSError with libxdp's reason)
 *   close(handle)
 *   zero_copy(handle) -> bool
 *   counters(handle) -> dict
 *   reflect(handle, port, clear_sockperf_flag, idle_timeout_ns) -> status
 *   pingpong(handle, src_mac, dst_mac, src_ip, dst_ip, src_port, dst_port, size, warmup, count,
 *            duration_ns, timeout_ns, send_ns, rtt_ns) -> (measured, warmed, status)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "int64_buffer.h"

#include "afxdp_core.h"

#define CAPSULE "latlab.afxdp_endpoint"

static int python_stop(void *arg) {
    (void)arg;
    if (PyErr_CheckSignals() < 0) {
        PyErr_Clear();
        return 1;
    }
    return 0;
}

static struct afxdp_endpoint *endpoint(PyObject *handle) {
    return PyCapsule_GetPointer(handle, CAPSULE);
}

static PyObject *py_open(PyObject *self, PyObject *args) {
    (void)self;
    const char *ifname;
    unsigned queue;
    int native, zc;
    if (!PyArg_ParseTuple(args, "sIpp", &ifname, &queue, &native, &zc))
        return NULL;
    char err[256] = "";
    struct afxdp_endpoint *ep = afxdp_open(ifname, queue, native ? XDP_MODE_DRV : XDP_MODE_SKB, zc, err, sizeof err);
    if (!ep) {
        PyErr_SetString(PyExc_OSError, err);
        return NULL;
    }
    return PyCapsule_New(ep, CAPSULE, NULL);
}

static PyObject *py_close(PyObject *self, PyObject *handle) {
    (void)self;
    struct afxdp_endpoint *ep = endpoint(handle);
    if (!ep)
        return NULL;
    afxdp_close(ep);
    PyCapsule_SetName(handle, "latlab.afxdp_closed");
    Py_RETURN_NONE;
}

static PyObject *py_zero_copy(PyObject *self, PyObject *handle) {
    (void)self;
    struct afxdp_endpoint *ep = endpoint(handle);
    return ep ? PyBool_FromLong(afxdp_zero_copy(ep)) : NULL;
}

static PyObject *py_counters(PyObject *self, PyObject *handle) {
    (void)self;
    struct afxdp_endpoint *ep = endpoint(handle);
    if (!ep)
        return NULL;
    struct afxdp_counters c;
    afxdp_read_counters(ep, &c);
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "rx_frames", c.rx_frames, "tx_frames", c.tx_frames,
        "answered", c.answered, "ignored", c.ignored, "malformed", c.malformed, "kicks", c.kicks, "rx_dropped",
        c.rx_dropped, "rx_invalid_descs", c.rx_invalid_descs, "tx_invalid_descs", c.tx_invalid_descs,
        "rx_ring_full", c.rx_ring_full, "rx_fill_ring_empty", c.rx_fill_ring_empty, "tx_ring_empty",
        c.tx_ring_empty);
}

static PyObject *py_reflect(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *handle;
    unsigned port;
    int clear_flag;
    long long idle_ns;
    if (!PyArg_ParseTuple(args, "OIpL", &handle, &port, &clear_flag, &idle_ns))
        return NULL;
    struct afxdp_endpoint *ep = endpoint(handle);
    if (!ep)
        return NULL;
    return PyUnicode_FromString(afxdp_reflect(ep, (uint16_t)port, clear_flag, idle_ns, python_stop, NULL));
}

static PyObject *py_pingpong(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *handle, *send_obj, *rtt_obj;
    Py_buffer smac, dmac;
    unsigned src_ip, dst_ip, sport, dport;
    Py_ssize_t size;
    long long warmup, count, duration_ns, timeout_ns;
    if (!PyArg_ParseTuple(args, "Oy*y*IIIInLLLLOO", &handle, &smac, &dmac, &src_ip, &dst_ip, &sport, &dport, &size,
                          &warmup, &count, &duration_ns, &timeout_ns, &send_obj, &rtt_obj))
        return NULL;
    struct afxdp_endpoint *ep = endpoint(handle);
    PyObject *result = NULL;
    Py_buffer sv, rv;
    if (!ep || smac.len != 6 || dmac.len != 6) {
        if (ep)
            PyErr_SetString(PyExc_ValueError, "MAC addresses are 6 bytes");
        goto out;
    }
    if (get_int64_buffer(send_obj, &sv, count, "send_ns") < 0)
        goto out;
    if (get_int64_buffer(rtt_obj, &rv, count, "rtt_ns") < 0) {
        PyBuffer_Release(&sv);
        goto out;
    }
    struct afxdp_flow flow = {.src_ip = (uint32_t)src_ip, .dst_ip = (uint32_t)dst_ip, .src_port = (uint16_t)sport,
                              .dst_port = (uint16_t)dport};
    memcpy(flow.src_mac, smac.buf, 6);
    memcpy(flow.dst_mac, dmac.buf, 6);
    int64_t measured = 0, warmed = 0;
    const char *status = afxdp_pingpong(ep, &flow, (size_t)size, warmup, count, duration_ns, timeout_ns, sv.buf,
                                        rv.buf, &measured, &warmed, python_stop, NULL);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&rv);
    result = Py_BuildValue("LLs", (long long)measured, (long long)warmed, status);
out:
    PyBuffer_Release(&smac);
    PyBuffer_Release(&dmac);
    return result;
}

static PyObject *py_answer(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer frame;
    unsigned port;
    int clear_flag;
    if (!PyArg_ParseTuple(args, "y*Ip", &frame, &port, &clear_flag))
        return NULL;
    PyObject *copy = PyByteArray_FromStringAndSize(frame.buf, frame.len);
    PyBuffer_Release(&frame);
    if (!copy)
        return NULL;
    int r = afxdp_answer_in_place((uint8_t *)PyByteArray_AS_STRING(copy), (size_t)PyByteArray_GET_SIZE(copy),
                                  (uint16_t)port, clear_flag);
    PyObject *out = Py_BuildValue("iO", r, copy);
    Py_DECREF(copy);
    return out;
}

static PyMethodDef methods[] = {
    {"open", py_open, METH_VARARGS, "Open an XSK socket: (ifname, queue, native, try_zero_copy)."},
    {"close", py_close, METH_O, "Close the socket (libxdp detaches its program with the last socket)."},
    {"zero_copy", py_zero_copy, METH_O, "Whether the kernel bound the socket in zero-copy mode."},
    {"counters", py_counters, METH_O, "The endpoint's own counters and the kernel's XDP_STATISTICS."},
    {"reflect", py_reflect, METH_VARARGS, "Answer UDP frames to a port until idle or interrupted."},
    {"pingpong", py_pingpong, METH_VARARGS, "Timed UDP ping-pong over the XSK socket."},
    {"answer", py_answer, METH_VARARGS, "(result, answered frame) of the reflector's rewrite, for tests."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_afxdp", "latlab's AF_XDP endpoint (afxdp_core.c).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__afxdp(void) { return PyModule_Create(&module); }
