/*
 * Compiled verbs ping-pong: the same tests and wire protocol as rdma/verbs.py (pyverbs, the reference),
 * with set-up and the timed loop in C against libibverbs so Python's per-call cost stays out of the
 * figures. The tests run this against the pyverbs side in both directions.
 *
 *   ep = Endpoint(device, port, gid_index, test, size, inline, events)
 *   ep.info() -> (qpn, psn, gid, addr, rkey);  ep.connect(qpn, psn, gid, addr, rkey)
 *   ep.client(warmup, iterations, duration_ns, timeout_ns, rtt_ns, send_ns) -> (measured, warmed, status, detail)
 *   ep.serve(total, timeout_ns) -> (answered, status, detail);  ep.close()
 * status: "ok", "timeout", "interrupted", "error" (detail: verbs status text and the work request).
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <infiniband/verbs.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sched.h>

#include "stage_clock.h"

enum { T_SEND, T_WRITE, T_READ, T_UD };
#define GRH 40
#define SIGNAL_EVERY 32
#define QKEY 0x11111111u
#define READ_MARKER 0x5EAD5EAD5EAD5EADULL
#define CHECK_EVERY 4096u
#define RD_ATOMIC_MAX 16

typedef struct {
    PyObject_HEAD
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_comp_channel *ch;
    struct ibv_cq *cq;
    struct ibv_mr *mr;
    struct ibv_qp *qp;
    struct ibv_ah *ah;
    char *buf;
    size_t size, slot;
    int test, port, gid_index, inline_ok, events, unsignaled, ctrl_fd;
    uint32_t psn, rqpn, rrkey;
    uint64_t raddr;
    union ibv_gid gid;
    struct ibv_port_attr pattr;
    int rd_atomic, dest_rd_atomic; /* outstanding RDMA READs: the device's limits (at most RD_ATOMIC_MAX), as perftest */
    char detail[256];
} Ep;

/* The control connection became readable while waiting: the peer sent "abort" (or closed). */
static int peer_spoke(Ep *e, const char *what, long long seq) {
    if (e->ctrl_fd < 0) return 0;
    struct pollfd p = {.fd = e->ctrl_fd, .events = POLLIN};
    if (poll(&p, 1, 0) > 0) {
        snprintf(e->detail, sizeof e->detail, "%s %lld: the peer aborted", what, seq);
        return 4;
    }
    return 0;
}

static inline int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The timed loop's clock: the TSC, calibrated against the system clock, on CLOCK_MONOTONIC's scale. perftest times
 * its samples with the TSC too; a clock_gettime costs ~0.9 us in the TCG guest (its clocksource is hpet), and part
 * of two of them fell inside every sample. Without a TSC (ns_per_tick 0) every read is a clock_gettime.
 * The calling thread stays on the CPU it is on until sample_clock_end: the TSCs of different CPUs need not agree
 * (the TCG guest's kernel marks them unsynchronized), and a sample must not span two of them. */
typedef struct { StageClock tsc; int pinned; cpu_set_t was; } SampleClock;

static void sample_clock_start(SampleClock *c) {
    c->pinned = 0;
    int cpu = sched_getcpu();
    if (HAVE_TSC && cpu >= 0 && sched_getaffinity(0, sizeof c->was, &c->was) == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        c->pinned = sched_setaffinity(0, sizeof one, &one) == 0;
    }
    /* not pinned (not allowed, say): the clock then, slower but the same on every CPU */
    c->tsc.ns_per_tick = c->pinned ? calibrate_tsc(20) : 0.0;
    c->tsc.ns0 = mono_ns();
    c->tsc.tsc0 = ticks();
}

static void sample_clock_end(SampleClock *c) {
    if (c->pinned)
        (void)sched_setaffinity(0, sizeof c->was, &c->was);
    c->pinned = 0;
}

/* The stage clock's TSC conversion, from an origin on CLOCK_MONOTONIC; without it, CLOCK_MONOTONIC itself. */
static inline int64_t sample_ns(const SampleClock *c) {
    return c->tsc.ns_per_tick > 0 ? clock_stamp(&c->tsc) : mono_ns();
}

static void release(Ep *e) {
    if (e->qp) ibv_destroy_qp(e->qp);
    if (e->ah) ibv_destroy_ah(e->ah);
    if (e->mr) ibv_dereg_mr(e->mr);
    if (e->cq) ibv_destroy_cq(e->cq);
    if (e->ch) ibv_destroy_comp_channel(e->ch);
    if (e->pd) ibv_dealloc_pd(e->pd);
    if (e->ctx) ibv_close_device(e->ctx);
    free(e->buf);
    e->qp = NULL; e->ah = NULL; e->mr = NULL; e->cq = NULL; e->ch = NULL; e->pd = NULL; e->ctx = NULL; e->buf = NULL;
}

static int fail(Ep *e, const char *what) {
    PyErr_Format(PyExc_RuntimeError, "%s: %s", what, strerror(errno));
    release(e);
    return -1;
}

static int modify(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask, const char *what) {
    int rc = ibv_modify_qp(qp, a, mask);
    if (rc) {
        errno = rc;
        PyErr_Format(PyExc_RuntimeError, "QP %u transition to %s failed: %s", qp->qp_num, what, strerror(rc));
        return -1;
    }
    return 0;
}

static int Ep_init(Ep *e, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"device", "port", "gid_index", "test", "size", "inline", "events", NULL};
    const char *dev, *test;
    Py_ssize_t size;
    int want_inline, events;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "siisnpp", kwlist, &dev, &e->port, &e->gid_index, &test, &size,
                                     &want_inline, &events))
        return -1;
    e->test = !strcmp(test, "send") ? T_SEND : !strcmp(test, "write") ? T_WRITE : !strcmp(test, "read") ? T_READ
              : !strcmp(test, "ud") ? T_UD : -1;
    if (e->test < 0 || size < 16) {
        PyErr_SetString(PyExc_ValueError, "test must be send, write, read or ud, and size at least 16");
        return -1;
    }
    e->ctrl_fd = -1;
    e->size = (size_t)size;
    e->slot = e->size + GRH;
    e->events = events;
    int n = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    for (int i = 0; list && i < n; i++)
        if (!strcmp(ibv_get_device_name(list[i]), dev))
            e->ctx = ibv_open_device(list[i]);
    if (list)
        ibv_free_device_list(list);
    if (!e->ctx) {
        PyErr_Format(PyExc_RuntimeError, "cannot open RDMA device %s", dev);
        return -1;
    }
    if (ibv_query_port(e->ctx, (uint8_t)e->port, &e->pattr)) return fail(e, "query_port");
    struct ibv_device_attr dattr;
    if (ibv_query_device(e->ctx, &dattr)) return fail(e, "query_device");
    /* READs allowed in flight: the device's limit, perftest's default (--outs), rather than one. */
    e->rd_atomic = dattr.max_qp_init_rd_atom < RD_ATOMIC_MAX ? dattr.max_qp_init_rd_atom : RD_ATOMIC_MAX;
    e->dest_rd_atomic = dattr.max_qp_rd_atom < RD_ATOMIC_MAX ? dattr.max_qp_rd_atom : RD_ATOMIC_MAX;
    if (e->rd_atomic < 1) e->rd_atomic = 1;
    if (e->dest_rd_atomic < 1) e->dest_rd_atomic = 1;
    if (ibv_query_gid(e->ctx, (uint8_t)e->port, e->gid_index, &e->gid)) return fail(e, "query_gid");
    if (!(e->pd = ibv_alloc_pd(e->ctx))) return fail(e, "alloc_pd");
    if (events && !(e->ch = ibv_create_comp_channel(e->ctx))) return fail(e, "create_comp_channel");
    if (!(e->cq = ibv_create_cq(e->ctx, 256, NULL, e->ch, 0))) return fail(e, "create_cq");
    size_t len = (e->slot * 2 + 4095) & ~(size_t)4095;
    if (!(e->buf = aligned_alloc(4096, len))) return fail(e, "buffer");
    memset(e->buf, 0xFF, len);  /* no sequence number (from 0) matches before the first write lands */
    int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    if (!(e->mr = ibv_reg_mr(e->pd, e->buf, len, access))) return fail(e, "reg_mr");
    struct ibv_qp_init_attr ia = {.send_cq = e->cq, .recv_cq = e->cq, .qp_type = e->test == T_UD ? IBV_QPT_UD : IBV_QPT_RC,
                                  .cap = {.max_send_wr = 128, .max_recv_wr = 128, .max_send_sge = 1, .max_recv_sge = 1,
                                          .max_inline_data = want_inline ? (uint32_t)e->size : 0}};
    e->qp = ibv_create_qp(e->pd, &ia);
    if (!e->qp && want_inline) {  /* the device cannot inline this size: send from the MR instead */
        ia.cap.max_inline_data = 0;
        want_inline = 0;
        e->qp = ibv_create_qp(e->pd, &ia);
    }
    if (!e->qp) return fail(e, "create_qp");
    e->inline_ok = want_inline;
    struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .pkey_index = 0, .port_num = (uint8_t)e->port};
    int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
    if (e->test == T_UD) {
        a.qkey = QKEY;
        mask |= IBV_QP_QKEY;
    } else {
        a.qp_access_flags = access;
        mask |= IBV_QP_ACCESS_FLAGS;
    }
    if (modify(e->qp, &a, mask, "INIT")) { release(e); return -1; }
    if (e->test == T_UD) {
        struct ibv_qp_attr r = {.qp_state = IBV_QPS_RTR};
        struct ibv_qp_attr s = {.qp_state = IBV_QPS_RTS, .sq_psn = 0};
        if (modify(e->qp, &r, IBV_QP_STATE, "RTR") || modify(e->qp, &s, IBV_QP_STATE | IBV_QP_SQ_PSN, "RTS")) {
            release(e);
            return -1;
        }
    }
    srand48(mono_ns());
    e->psn = (uint32_t)(lrand48() & 0xFFFFFF);
    return 0;
}

/* "0000:0000:...:0001" (the pyverbs format) <-> 16 bytes */
static void gid_to_str(const union ibv_gid *g, char *out) {
    for (int i = 0; i < 8; i++)
        sprintf(out + i * 5, "%02x%02x%s", g->raw[2 * i], g->raw[2 * i + 1], i < 7 ? ":" : "");
}

static int gid_from_str(const char *s, union ibv_gid *g) {
    unsigned v[8];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
        return -1;
    for (int i = 0; i < 8; i++) {
        g->raw[2 * i] = (uint8_t)(v[i] >> 8);
        g->raw[2 * i + 1] = (uint8_t)v[i];
    }
    return 0;
}

static PyObject *Ep_info(Ep *e, PyObject *Py_UNUSED(x)) {
    if (!e->qp) { PyErr_SetString(PyExc_RuntimeError, "endpoint is closed"); return NULL; }
    char gid[40];
    gid_to_str(&e->gid, gid);
    return Py_BuildValue("(IIsKIi)", e->qp->qp_num, e->psn, gid, (unsigned long long)(uintptr_t)e->buf, e->mr->rkey,
                         e->inline_ok);
}

static PyObject *Ep_connect(Ep *e, PyObject *args) {
    unsigned rqpn, rpsn, rkey;
    const char *gid;
    unsigned long long addr;
    if (!PyArg_ParseTuple(args, "IIsKI", &rqpn, &rpsn, &gid, &addr, &rkey))
        return NULL;
    if (!e->qp) { PyErr_SetString(PyExc_RuntimeError, "endpoint is closed"); return NULL; }
    e->rqpn = rqpn;
    e->rrkey = rkey;
    e->raddr = addr;
    struct ibv_ah_attr ah = {.is_global = 1, .port_num = (uint8_t)e->port, .dlid = e->pattr.lid,
                             .grh = {.sgid_index = (uint8_t)e->gid_index, .hop_limit = 64}};
    if (gid_from_str(gid, &ah.grh.dgid)) {
        PyErr_Format(PyExc_ValueError, "bad GID %s", gid);
        return NULL;
    }
    if (e->test == T_UD) {
        if (!(e->ah = ibv_create_ah(e->pd, &ah))) {
            PyErr_Format(PyExc_RuntimeError, "create_ah towards QP %u: %s", rqpn, strerror(errno));
            return NULL;
        }
        Py_RETURN_NONE;
    }
    struct ibv_qp_attr r = {.qp_state = IBV_QPS_RTR, .path_mtu = e->pattr.active_mtu, .dest_qp_num = rqpn,
                            .rq_psn = rpsn, .max_dest_rd_atomic = (uint8_t)e->dest_rd_atomic, .min_rnr_timer = 12,
                            .ah_attr = ah};
    struct ibv_qp_attr t = {.qp_state = IBV_QPS_RTS, .sq_psn = e->psn, .timeout = 14, .retry_cnt = 7,
                            .rnr_retry = 7, .max_rd_atomic = (uint8_t)e->rd_atomic};
    if (modify(e->qp, &r, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
               IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER, "RTR") ||
        modify(e->qp, &t, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
               IBV_QP_MAX_QP_RD_ATOMIC, "RTS"))
        return NULL;
    Py_RETURN_NONE;
}

static int post_recv(Ep *e) {
    struct ibv_sge sge = {.addr = (uintptr_t)(e->buf + e->slot), .length = (uint32_t)(e->size + (e->test == T_UD ? GRH : 0)),
                          .lkey = e->mr->lkey};
    struct ibv_recv_wr wr = {.wr_id = 1, .sg_list = &sge, .num_sge = 1}, *bad;
    int rc = ibv_post_recv(e->qp, &wr, &bad);
    if (rc)
        snprintf(e->detail, sizeof e->detail, "post_recv: %s", strerror(rc));
    return rc;
}

/* Look through n completions: 2 (detail set) on the first error, 0 on the first of opcode `want`
 * (-1: none wanted), -1 when neither. */
static int scan_wcs(Ep *e, const struct ibv_wc *wc, int n, int want, const char *what, long long seq) {
    for (int i = 0; i < n; i++) {
        if (wc[i].status != IBV_WC_SUCCESS) {
            snprintf(e->detail, sizeof e->detail, "%s %lld: completion %s (status %d, opcode %d, wr_id %llu, vendor_err %u)",
                     what, seq, ibv_wc_status_str(wc[i].status), wc[i].status, wc[i].opcode,
                     (unsigned long long)wc[i].wr_id, wc[i].vendor_err);
            return 2;
        }
        if ((int)wc[i].opcode == want) return 0;
    }
    return -1;
}

/* Wait for a completion with `want` opcode; others that succeed are absorbed. 0 ok, 1 timeout, 2 error, 3 signal */
static int wait_cq(Ep *e, enum ibv_wc_opcode want, const char *what, long long seq, int64_t timeout_ns) {
    struct ibv_wc wc[8];
    int64_t start = 0; /* taken at the first check, not here: a clock read costs ~1 us in a TCG guest (hpet) */
    unsigned spins = 0;
    for (;;) {
        if (e->ch) {
            ibv_req_notify_cq(e->cq, 0);
            int n = ibv_poll_cq(e->cq, 8, wc);
            if (n == 0) {
                struct ibv_cq *cq;
                void *ctx;
                if (ibv_get_cq_event(e->ch, &cq, &ctx)) {
                    snprintf(e->detail, sizeof e->detail, "%s %lld: get_cq_event: %s", what, seq, strerror(errno));
                    return errno == EINTR ? 3 : 2;
                }
                ibv_ack_cq_events(cq, 1);
                continue;
            }
            int r = scan_wcs(e, wc, n, (int)want, what, seq);
            if (r >= 0) return r;
            continue;
        }
        int n = ibv_poll_cq(e->cq, 8, wc);
        int r = scan_wcs(e, wc, n, (int)want, what, seq);
        if (r >= 0) return r;
        if (n < 0) {
            snprintf(e->detail, sizeof e->detail, "%s %lld: poll_cq failed", what, seq);
            return 2;
        }
        if ((++spins % CHECK_EVERY) == 0) {
            if (peer_spoke(e, what, seq)) return 4;
            if (!start) start = mono_ns();
            else if (mono_ns() - start > timeout_ns) {
                snprintf(e->detail, sizeof e->detail, "%s %lld: no completion within %lld ms", what, seq,
                         (long long)(timeout_ns / 1000000));
                return 1;
            }
            if (PyErr_CheckSignals() < 0) { PyErr_Clear(); return 3; }
        }
    }
}

/* Post the outgoing message (every SIGNAL_EVERY-th signaled; a signaled WRITE is reaped at once). */
static int post_send(Ep *e, const char *what, long long seq, int64_t timeout_ns) {
    int signaled = e->test == T_READ || e->unsignaled + 1 >= SIGNAL_EVERY;
    struct ibv_sge sge = {.addr = (uintptr_t)e->buf, .length = (uint32_t)e->size, .lkey = e->mr->lkey};
    struct ibv_send_wr wr = {.wr_id = 2, .sg_list = &sge, .num_sge = 1}, *bad;
    wr.send_flags = (signaled ? IBV_SEND_SIGNALED : 0) | (e->inline_ok && e->test != T_READ ? IBV_SEND_INLINE : 0);
    switch (e->test) {
    case T_SEND: wr.opcode = IBV_WR_SEND; break;
    case T_UD:
        wr.opcode = IBV_WR_SEND;
        wr.wr.ud.ah = e->ah;
        wr.wr.ud.remote_qpn = e->rqpn;
        wr.wr.ud.remote_qkey = QKEY;
        break;
    default:
        wr.opcode = e->test == T_WRITE ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
        wr.wr.rdma.remote_addr = e->raddr + e->slot;
        wr.wr.rdma.rkey = e->rrkey;
    }
    int rc = ibv_post_send(e->qp, &wr, &bad);
    if (rc) {
        snprintf(e->detail, sizeof e->detail, "post_send of %s %lld: %s", what, seq, strerror(rc));
        return 2;
    }
    e->unsignaled = signaled ? 0 : e->unsignaled + 1;
    if (signaled && e->test == T_WRITE)
        return wait_cq(e, IBV_WC_RDMA_WRITE, what, seq, timeout_ns);
    return 0;
}

static inline void stamp(Ep *e, uint64_t seq) {
    memcpy(e->buf, &seq, 8);
    memcpy(e->buf + e->size - 8, &seq, 8);
}

static int check(Ep *e, uint64_t want, const char *what, long long seq, size_t base) {
    uint64_t head, tail;
    memcpy(&head, e->buf + base, 8);
    memcpy(&tail, e->buf + base + e->size - 8, 8);
    if (head != want || tail != want) {
        snprintf(e->detail, sizeof e->detail, "%s %lld: payload check failed (want %llu, got %llu/%llu)", what, seq,
                 (unsigned long long)want, (unsigned long long)head, (unsigned long long)tail);
        return 2;
    }
    return 0;
}

/* A completion error while a side polls memory (its own WRITE failed): 2 with the detail set, else 0. */
static int reap_errors(Ep *e, const char *what, uint64_t seq) {
    struct ibv_wc wc[8];
    int n = ibv_poll_cq(e->cq, 8, wc);
    return scan_wcs(e, wc, n, -1, what, (long long)seq) == 2 ? 2 : 0;
}

/* WRITE: wait until the peer's write puts seq in the last 8 bytes of our receive slot. */
static int poll_memory(Ep *e, uint64_t seq, const char *what, int64_t timeout_ns) {
    volatile uint64_t *p = (volatile uint64_t *)(void *)(e->buf + e->slot + e->size - 8);
    int64_t start = 0; /* taken at the first check, not here: a clock read costs ~1 us in a TCG guest (hpet) */
    unsigned spins = 0;
    while (*p != seq) {
        if ((++spins % CHECK_EVERY) == 0) {
            if (reap_errors(e, what, seq)) return 2;
            if (peer_spoke(e, what, (long long)seq)) return 4;
            if (!start) start = mono_ns();
            else if (mono_ns() - start > timeout_ns) {
                snprintf(e->detail, sizeof e->detail, "%s %llu: the peer's write did not arrive within %lld ms", what,
                         (unsigned long long)seq, (long long)(timeout_ns / 1000000));
                return 1;
            }
            if (PyErr_CheckSignals() < 0) { PyErr_Clear(); return 3; }
        }
    }
    return 0;
}

static const char *STATUS[] = {"ok", "timeout", "error", "interrupted", "aborted"};

static int get_i64(PyObject *obj, Py_buffer *v, Py_ssize_t n) {
    if (PyObject_GetBuffer(obj, v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (v->itemsize != 8 || v->len / 8 < n) {
        PyBuffer_Release(v);
        PyErr_SetString(PyExc_ValueError, "sample buffers must hold `iterations` int64 items");
        return -1;
    }
    return 0;
}

static PyObject *Ep_client(Ep *e, PyObject *args) {
    long long warmup, iterations, duration_ns, timeout_ns;
    PyObject *rtt_obj, *send_obj;
    if (!PyArg_ParseTuple(args, "LLLLOO", &warmup, &iterations, &duration_ns, &timeout_ns, &rtt_obj, &send_obj))
        return NULL;
    Py_buffer rv, sv;
    if (get_i64(rtt_obj, &rv, iterations) < 0) return NULL;
    if (get_i64(send_obj, &sv, iterations) < 0) { PyBuffer_Release(&rv); return NULL; }
    int64_t *rtt = rv.buf, *snd = sv.buf;
    e->detail[0] = 0;
    int rc = 0;
    long long measured = 0, seq = 0, total = warmup + iterations;
    if (e->test == T_SEND || e->test == T_UD)
        for (int i = 0; i < 16 && !rc; i++) rc = post_recv(e) ? 2 : 0;
    int64_t start = 0;
    SampleClock clock;
    sample_clock_start(&clock);
    for (; !rc && seq < total; seq++) {
        if (seq == warmup) start = sample_ns(&clock);
        stamp(e, (uint64_t)seq);
        int64_t t0 = sample_ns(&clock);
        rc = post_send(e, "ping", seq, timeout_ns);
        if (rc) break;
        if (e->test == T_WRITE) rc = poll_memory(e, (uint64_t)seq, "pong", timeout_ns);
        else rc = wait_cq(e, e->test == T_READ ? IBV_WC_RDMA_READ : IBV_WC_RECV, e->test == T_READ ? "read" : "pong",
                          seq, timeout_ns);
        int64_t t1 = sample_ns(&clock);
        if (rc) break;
        if (e->test == T_SEND || e->test == T_UD) {
            if (post_recv(e)) { rc = 2; break; }
            rc = check(e, (uint64_t)seq, "pong", seq, e->slot + (e->test == T_UD ? GRH : 0));
        } else if (e->test == T_READ) {
            rc = check(e, READ_MARKER, "read", seq, 0);
        }
        if (rc) break;
        if (seq >= warmup) {
            snd[measured] = t0;
            rtt[measured] = t1 - t0;
            measured++;
            if (duration_ns && (measured % 64) == 0 && t1 - start > duration_ns) { seq++; break; }
        }
    }
    sample_clock_end(&clock);
    PyBuffer_Release(&rv);
    PyBuffer_Release(&sv);
    long long warmed = seq < warmup ? seq : warmup;
    return Py_BuildValue("(LLss)", measured, warmed, STATUS[rc], e->detail);
}

static PyObject *Ep_serve(Ep *e, PyObject *args) {
    long long total, timeout_ns;
    if (!PyArg_ParseTuple(args, "LL", &total, &timeout_ns)) return NULL;
    e->detail[0] = 0;
    int rc = 0;
    long long seq = 0;
    if (e->test == T_READ) {
        uint64_t m = READ_MARKER;
        memcpy(e->buf + e->slot, &m, 8);
        memcpy(e->buf + e->slot + e->size - 8, &m, 8);
        return Py_BuildValue("(Lss)", 0LL, "ok", "");
    }
    for (; !rc && seq < total; seq++) {
        if (e->test == T_WRITE) {
            rc = poll_memory(e, (uint64_t)seq, "ping", timeout_ns);
        } else {
            rc = wait_cq(e, IBV_WC_RECV, "receive of ping", seq, timeout_ns);
            if (!rc) rc = post_recv(e) ? 2 : 0;
            if (!rc) rc = check(e, (uint64_t)seq, "ping", seq, e->slot + (e->test == T_UD ? GRH : 0));
        }
        if (rc) break;
        stamp(e, (uint64_t)seq);
        rc = post_send(e, "pong", seq, timeout_ns);
    }
    return Py_BuildValue("(Lss)", seq, STATUS[rc], e->detail);
}

/* Receives must be posted before the peer's first send arrives: the server posts them at connect time. */
static PyObject *Ep_prepost(Ep *e, PyObject *Py_UNUSED(x)) {
    if (e->test == T_SEND || e->test == T_UD)
        for (int i = 0; i < 16; i++)
            if (post_recv(e)) { PyErr_SetString(PyExc_RuntimeError, e->detail); return NULL; }
    if (e->test == T_READ) {
        uint64_t m = READ_MARKER;
        memcpy(e->buf + e->slot, &m, 8);
        memcpy(e->buf + e->slot + e->size - 8, &m, 8);
    }
    Py_RETURN_NONE;
}

static PyObject *Ep_watch(Ep *e, PyObject *arg) {
    int fd = (int)PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    e->ctrl_fd = fd;
    Py_RETURN_NONE;
}

static PyObject *Ep_close(Ep *e, PyObject *Py_UNUSED(x)) {
    release(e);
    Py_RETURN_NONE;
}

static void Ep_dealloc(Ep *e) {
    release(e);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static PyMethodDef Ep_methods[] = {
    {"info", (PyCFunction)Ep_info, METH_NOARGS, "(qpn, psn, gid, addr, rkey, inline)"},
    {"connect", (PyCFunction)Ep_connect, METH_VARARGS, "connect(qpn, psn, gid, addr, rkey)"},
    {"prepost", (PyCFunction)Ep_prepost, METH_NOARGS, "server: post receives (send/ud) or the READ marker"},
    {"client", (PyCFunction)Ep_client, METH_VARARGS, "client(warmup, iterations, duration_ns, timeout_ns, rtt, send)"},
    {"serve", (PyCFunction)Ep_serve, METH_VARARGS, "serve(total, timeout_ns)"},
    {"watch", (PyCFunction)Ep_watch, METH_O, "watch(fd): stop waiting (status aborted) when fd becomes readable"},
    {"close", (PyCFunction)Ep_close, METH_NOARGS, "release every verbs object"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EpType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rdma._verbs.Endpoint",
    .tp_basicsize = sizeof(Ep),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One side of a compiled verbs ping-pong (rdma/verbs.py is the reference).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ep_init,
    .tp_dealloc = (destructor)Ep_dealloc,
    .tp_methods = Ep_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_verbs", "Compiled verbs ping-pong.", -1, NULL, NULL, NULL,
                                    NULL, NULL};

PyMODINIT_FUNC PyInit__verbs(void) {
    if (PyType_Ready(&EpType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&EpType);
    if (PyModule_AddObject(m, "Endpoint", (PyObject *)&EpType) < 0) {
        Py_DECREF(&EpType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
