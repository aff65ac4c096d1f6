/* The C tests' one assertion: CHECK names what failed and counts it; main returns the count. */
#ifndef LATLAB_TEST_CHECK_H
#define LATLAB_TEST_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond)                                                                                                \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                                             \
            failures++;                                                                                            \
        }                                                                                                          \
    } while (0)

#endif
