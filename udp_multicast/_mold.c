/*
 * check_packet(buffer) -> None | (kind, detail): validates a MoldUDP64 packet's layout without
 * copying its messages (the subscriber's per-packet path). udp_multicast.moldudp64.decode_packet is
 * the reference: the tests check that both accept and refuse the same packets with the same kind.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define HEADER_LEN 20

static PyObject *fail(const char *kind, Py_ssize_t at) { return Py_BuildValue("(sn)", kind, at); }

static PyObject *check_packet(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *d = v.buf;
    Py_ssize_t end = v.len, pos = HEADER_LEN, n = 0;
    PyObject *out = NULL;
    if (end < HEADER_LEN) {
        out = fail("short_header", end);
        goto done;
    }
    unsigned count = (unsigned)(d[18] << 8 | d[19]);
    if (count == 0 || count == 0xFFFF) {
        out = end == HEADER_LEN ? Py_NewRef(Py_None) : fail("trailing_bytes", HEADER_LEN);
        goto done;
    }
    while (pos < end) {
        if (pos + 2 > end) {
            out = fail("length_past_end", pos);
            goto done;
        }
        Py_ssize_t len = d[pos] << 8 | d[pos + 1];
        if (len == 0) {
            out = fail("zero_length", pos);
            goto done;
        }
        if (pos + 2 + len > end) {
            out = fail("length_past_end", pos);
            goto done;
        }
        pos += 2 + len;
        n++;
    }
    out = n == (Py_ssize_t)count ? Py_NewRef(Py_None) : fail("count_mismatch", n);
done:
    PyBuffer_Release(&v);
    return out;
}

static PyMethodDef methods[] = {
    {"check_packet", check_packet, METH_O, "None when the MoldUDP64 packet is well formed, else (kind, offset)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mold", "MoldUDP64 packet validation.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__mold(void) { return PyModule_Create(&module); }
