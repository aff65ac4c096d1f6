/* Stage timestamps: CLOCK_REALTIME once per packet (the kernel's software receive timestamps are on that clock),
 * then the TSC, where the CPU has an invariant one: about 14 ns a read here, against 41 for clock_gettime. */
#ifndef LATLAB_STAGE_CLOCK_H
#define LATLAB_STAGE_CLOCK_H

#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
static inline uint64_t ticks(void) { return __rdtsc(); }
#else
#define HAVE_TSC 0
static inline uint64_t ticks(void) { return 0; }
#endif

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct {
    double ns_per_tick; /* 0: no TSC, every stamp reads the clock */
    int64_t ns0;
    uint64_t tsc0;
} StageClock;

/* The first stamp of a packet: CLOCK_REALTIME; later stamps count TSC ticks from here. */
static inline int64_t clock_origin(StageClock *c) {
    uint64_t before = ticks();
    c->ns0 = now_ns();
    c->tsc0 = before + (ticks() - before) / 2; /* clock_gettime reads the TSC about halfway */
    return c->ns0;
}

/* A later stamp on the same scale. */
static inline int64_t clock_stamp(const StageClock *c) {
    if (c->ns_per_tick <= 0)
        return now_ns();
    return c->ns0 + (int64_t)((double)(ticks() - c->tsc0) * c->ns_per_tick);
}

/* ns per TSC tick, measured against CLOCK_REALTIME over `ms` milliseconds (0: no TSC, stages use the clock). */
static inline double calibrate_tsc(int ms) {
    if (!HAVE_TSC)
        return 0.0;
    int64_t n0 = now_ns(), n1;
    uint64_t c0 = ticks(), c1;
    do {
        n1 = now_ns();
        c1 = ticks();
    } while (n1 - n0 < (int64_t)ms * 1000000LL);
    return c1 > c0 ? (double)(n1 - n0) / (double)(c1 - c0) : 0.0;
}

#endif
