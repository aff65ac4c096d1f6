/* A writable, contiguous buffer of at least `need` int64 items from a Python object (a numpy array, say):
 * the sample buffers that the timed loops fill. On failure a ValueError names the argument. */
#ifndef LATLAB_INT64_BUFFER_H
#define LATLAB_INT64_BUFFER_H

#include <Python.h>

static int get_int64_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t need, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->itemsize != 8 || view->len / 8 < need) {
        PyErr_Format(PyExc_ValueError, "%s must hold at least %zd int64 items", name, need);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#endif
