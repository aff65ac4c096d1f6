/* A dict {name: count} of the non-zero counters, shared by the compiled books (errors by kind) and the
 * trader (risk rejects by reason). */
#ifndef LATLAB_NAMED_COUNTS_H
#define LATLAB_NAMED_COUNTS_H

#include <Python.h>
#include <stdint.h>

static inline PyObject *named_counts(const char *const *names, const uint64_t *counts, int n) {
    PyObject *out = PyDict_New();
    for (int k = 0; out && k < n; k++) {
        if (!counts[k])
            continue;
        PyObject *v = PyLong_FromUnsignedLongLong(counts[k]);
        if (!v || PyDict_SetItemString(out, names[k], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(v);
    }
    return out;
}

#endif
