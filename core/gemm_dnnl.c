/* The oneDNN backend of the GEMM seam (gemm_dnnl.h): matmul primitives per
 * weight shape and row class, created at load; weights reordered once into
 * the primitives' layout; row blocks of a call spread over the caller's
 * er_par team, each thread with its own stream, memory objects and user
 * scratchpad. */
#include "gemm_dnnl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ER_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>

#include "kernels_math.h"

/* libgomp's (Debian builds oneDNN on OpenMP: dnnl_version()->cpu_runtime):
 * oneDNN sizes each primitive's thread team from the calling thread's
 * OpenMP setting, pinned to 1 here (the er_par team does the spreading). */
extern void omp_set_num_threads(int n);

#define CLASSES 3
static const int class_rows[CLASSES] = {32, 8, 2}; /* fixed M of each primitive */
enum { ACT_NONE, ACT_GELU, ACTS };                 /* ACT_GELU: eltwise gelu_erf post-op */
enum { M_SRC, M_WEI, M_BIAS, M_DST, M_SCRATCH, MEMS };
static const int mem_arg[MEMS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST,
                                  DNNL_ARG_SCRATCHPAD};
#define ALIGN 64

typedef struct shape {
    int out, in;
    dnnl_primitive_t prim[CLASSES][ACTS];
    dnnl_memory_desc_t wmd; /* the packed weights' layout: the 32-row primitive's choice */
    size_t wbytes;
    float *zeros;           /* [out] the bias of a call without one */
    struct shape *next;
} shape;

/* The start of a packed weight; its weights follow at the next ALIGN bytes. */
typedef struct {
    const shape *s;
} packed_head;

static dnnl_engine_t engine;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static shape *shapes; /* the registry, kept for the process's life */
static char describe[256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static er_err init_err;
static er_status init_st;
static pthread_key_t state_key;
static bool brgemm; /* the probe primitive's implementation is brgemm */

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

static void md2(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {d0, d1};
    dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, tag);
}

/* The attributes of every primitive: user scratchpad, and for ACT_GELU the
 * gelu_erf post-op (*po to destroy after the primitive descriptor). */
static dnnl_status_t make_attr(int act, dnnl_primitive_attr_t *attr, dnnl_post_ops_t *po) {
    *po = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success && act == ACT_GELU) {
        st = dnnl_post_ops_create(po);
        if (st == dnnl_success) st = dnnl_post_ops_append_eltwise(*po, 1.0f, dnnl_eltwise_gelu_erf, 0, 0);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*attr, *po);
    }
    return st;
}

/* s->prim[cls][act]: y [R, out] = x [R, in] . W + bias, R the class's rows.
 * The first one (32 rows, no post-op) chooses the weights' layout (`any`);
 * the others must take that layout (dnnl_unimplemented if they do not). */
static dnnl_status_t make_prim(shape *s, int cls, int act) {
    const bool first = cls == 0 && act == ACT_NONE;
    dnnl_memory_desc_t src, wei, bias, dst;
    md2(&src, class_rows[cls], s->in, dnnl_ab);
    md2(&bias, 1, s->out, dnnl_ab);
    md2(&dst, class_rows[cls], s->out, dnnl_ab);
    if (first) md2(&wei, s->in, s->out, dnnl_format_tag_any);
    else wei = s->wmd;
    dnnl_matmul_desc_t mm;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_matmul_desc_init(&mm, &src, &wei, &bias, &dst);
    if (st == dnnl_success) st = make_attr(act, &attr, &po);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &mm, attr, engine, NULL);
    if (st == dnnl_success) {
        const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        if (first) {
            s->wmd = *w;
            s->wbytes = dnnl_memory_desc_get_size(w);
        } else if (!dnnl_memory_desc_equal(w, &s->wmd)) {
            st = dnnl_unimplemented;
        }
    }
    if (st == dnnl_success) st = dnnl_primitive_create(&s->prim[cls][act], pd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    dnnl_post_ops_destroy(po);
    return st;
}

static void shape_free(shape *s) {
    if (!s) return;
    for (int c = 0; c < CLASSES; c++)
        for (int a = 0; a < ACTS; a++) dnnl_primitive_destroy(s->prim[c][a]);
    free(s->zeros);
    free(s);
}

/* The registry's shape [out, in], made (every primitive) if new; NULL with
 * *st oneDNN's refusal.  Called with reg_mu held. */
static shape *shape_get_locked(int out, int in, dnnl_status_t *st) {
    *st = dnnl_success;
    for (shape *s = shapes; s; s = s->next)
        if (s->out == out && s->in == in) return s;
    shape *s = calloc(1, sizeof *s);
    if (s) s->zeros = calloc((size_t)out, sizeof *s->zeros);
    if (!s || !s->zeros) {
        *st = dnnl_out_of_memory;
        shape_free(s);
        return NULL;
    }
    s->out = out;
    s->in = in;
    for (int c = 0; c < CLASSES && *st == dnnl_success; c++)
        for (int a = 0; a < ACTS && *st == dnnl_success; a++) *st = make_prim(s, c, a);
    if (*st != dnnl_success) {
        shape_free(s);
        return NULL;
    }
    s->next = shapes;
    shapes = s;
    return s;
}

static const shape *shape_get(int out, int in, dnnl_status_t *st) {
    pthread_mutex_lock(&reg_mu);
    const shape *s = shape_get_locked(out, in, st);
    pthread_mutex_unlock(&reg_mu);
    return s;
}

/* ---- per calling thread: stream, memory objects, pad rows, scratchpad ---- */

typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t mem[MEMS];
} bound_prim;

typedef struct {
    dnnl_stream_t stream;
    bound_prim *b; /* [n] one per primitive this thread has run */
    int n, cap;
    void *xpad, *ypad;  /* floats [rows, in], [rows, out]: a padded or split block */
    size_t xpad_n, ypad_n;
    void *scratch;      /* the user scratchpad of every primitive this thread runs */
    size_t scratch_n;
} thread_state;

static void state_free(void *p) {
    thread_state *t = p;
    if (!t) return;
    for (int i = 0; i < t->n; i++)
        for (int k = 0; k < MEMS; k++) dnnl_memory_destroy(t->b[i].mem[k]);
    free(t->b);
    if (t->stream) dnnl_stream_destroy(t->stream);
    free(t->xpad);
    free(t->ypad);
    free(t->scratch);
    free(t);
}

static _Noreturn void fatal(const char *what, dnnl_status_t st) {
    fprintf(stderr, "erserve: oneDNN GEMM: %s failed (dnnl status %d)\n", what, (int)st);
    abort();
}

/* This thread's state, made on its first call (never again after). */
static thread_state *state_get(void) {
    thread_state *t = pthread_getspecific(state_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) fatal("thread state", dnnl_out_of_memory);
    omp_set_num_threads(1);
    dnnl_status_t st = dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags);
    if (st != dnnl_success) fatal("dnnl_stream_create", st);
    pthread_setspecific(state_key, t);
    return t;
}

/* A buffer of at least n bytes (grown, contents not kept). */
static void *grow(void **p, size_t *have, size_t n) {
    if (*have >= n) return *p;
    free(*p);
    *p = aligned_alloc(ALIGN, (n + ALIGN - 1) / ALIGN * ALIGN);
    if (!*p) fatal("scratch allocation", dnnl_out_of_memory);
    *have = n;
    return *p;
}

/* The memory objects of s->prim[cls][act] on this thread (handles unset). */
static bound_prim *bind(thread_state *t, const shape *s, int cls, int act) {
    dnnl_primitive_t prim = s->prim[cls][act];
    for (int i = 0; i < t->n; i++)
        if (t->b[i].prim == prim) return &t->b[i];
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        bound_prim *nb = realloc(t->b, (size_t)cap * sizeof *nb);
        if (!nb) fatal("memory objects", dnnl_out_of_memory);
        t->b = nb;
        t->cap = cap;
    }
    bound_prim *b = &t->b[t->n];
    memset(b, 0, sizeof *b);
    b->prim = prim;
    const_dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_primitive_get_primitive_desc(prim, &pd);
    dnnl_memory_desc_t md[MEMS];
    md2(&md[M_SRC], class_rows[cls], s->in, dnnl_ab);
    md[M_WEI] = s->wmd;
    md2(&md[M_BIAS], 1, s->out, dnnl_ab);
    md2(&md[M_DST], class_rows[cls], s->out, dnnl_ab);
    if (st == dnnl_success) md[M_SCRATCH] = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    for (int k = 0; k < MEMS && st == dnnl_success; k++)
        st = dnnl_memory_create(&b->mem[k], &md[k], engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success) fatal("dnnl_memory_create", st);
    t->n++;
    return b;
}

/* Sets a handle from a const pointer: oneDNN only reads src, weights and bias. */
static void set_handle(dnnl_memory_t m, const void *p) {
    dnnl_status_t st = dnnl_memory_set_data_handle(m, (void *)(uintptr_t)p);
    if (st != dnnl_success) fatal("dnnl_memory_set_data_handle", st);
}

/* y [R, out] = x [R, in] . W + bias through s->prim[cls][act] on this thread. */
static void execute(thread_state *t, const shape *s, int cls, int act, const float *x,
                    const void *w, const float *bias, float *y) {
    bound_prim *b = bind(t, s, cls, act);
    set_handle(b->mem[M_SRC], x);
    set_handle(b->mem[M_WEI], w);
    set_handle(b->mem[M_BIAS], bias);
    set_handle(b->mem[M_DST], y);
    const_dnnl_primitive_desc_t pd;
    dnnl_primitive_get_primitive_desc(b->prim, &pd);
    size_t need = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    set_handle(b->mem[M_SCRATCH], need ? grow(&t->scratch, &t->scratch_n, need) : NULL);
    dnnl_exec_arg_t args[MEMS];
    for (int k = 0; k < MEMS; k++) args[k] = (dnnl_exec_arg_t){mem_arg[k], b->mem[k]};
    dnnl_status_t st = dnnl_primitive_execute(b->prim, t->stream, MEMS, args);
    if (st == dnnl_success) st = dnnl_stream_wait(t->stream);
    if (st != dnnl_success) fatal("dnnl_primitive_execute", st);
}

/* ---- row blocks ---- */

/* Block `item` of an n-row call: 32-row blocks, then 8, then 2, then (n odd)
 * one row run as a padded 2-row block.  *r0 its first row, *rows its rows,
 * *cls its primitive's class. */
static void block_at(int n, int item, int *r0, int *rows, int *cls) {
    int left = n, start = 0;
    for (int c = 0; c < CLASSES; c++) {
        const int R = class_rows[c], k = left / R;
        if (item < k) {
            *r0 = start + item * R;
            *rows = R;
            *cls = c;
            return;
        }
        item -= k;
        start += k * R;
        left -= k * R;
    }
    *r0 = start; /* the last, padded block */
    *rows = left;
    *cls = CLASSES - 1;
}

static int blocks_of(int n) {
    int b = 0, left = n;
    for (int c = 0; c < CLASSES; c++) {
        b += left / class_rows[c];
        left %= class_rows[c];
    }
    return b + (left > 0);
}

typedef struct {
    const float *x, *bias;
    const shape *s;
    const void *w;
    int n;
    er_epi act;
    const er_gemm_out *y;
} job;

/* act on rows [rows, out] for the epilogues oneDNN does not run (erserve's
 * own GELU tanh and ReLU, the same functions as the own kernels' epilogue). */
static void own_act(float *y, size_t count, er_epi act) {
    for (size_t i = 0; i < count; i++)
        y[i] = act == ER_EPI_GELU_TANH ? gelu_tanh1(y[i]) : y[i] > 0.0f ? y[i] : 0.0f;
}

static void block_item(void *arg, int item, int thread) {
    (void)thread;
    const job *j = arg;
    const shape *s = j->s;
    int r0, rows, cls;
    block_at(j->n, item, &r0, &rows, &cls);
    const int R = class_rows[cls], seg = j->y->seg;
    const bool pad = rows < R, split = seg != s->out;
    thread_state *t = state_get();
    const float *x = j->x + (size_t)r0 * s->in; // [rows, in]
    if (pad) {
        float *xp = grow(&t->xpad, &t->xpad_n, (size_t)R * s->in * sizeof(float)); // [R, in]
        memcpy(xp, x, (size_t)rows * s->in * sizeof *xp);
        memset(xp + (size_t)rows * s->in, 0, (size_t)(R - rows) * s->in * sizeof *xp);
        x = xp;
    }
    float *y = pad || split ? grow(&t->ypad, &t->ypad_n, (size_t)R * s->out * sizeof(float))
                            : j->y->dst[0] + (size_t)r0 * s->out; // [R, out]
    const int act = j->act == ER_EPI_GELU ? ACT_GELU : ACT_NONE;
    execute(t, s, cls, act, x, j->w, j->bias ? j->bias : s->zeros, y);
    if (j->act == ER_EPI_GELU_TANH || j->act == ER_EPI_RELU) own_act(y, (size_t)rows * s->out, j->act);
    if (!pad && !split) return;
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < s->out; c += seg)
            memcpy(j->y->dst[c / seg] + (size_t)(r0 + i) * seg, y + (size_t)i * s->out + c,
                   (size_t)seg * sizeof *y);
}

static const void *weights_of(const void *packed) {
    return (const void *)(((uintptr_t)packed + sizeof(packed_head) + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
}

void er_dnnl_gemm(er_par *team, const float *x, int n, int in, const void *packed, int out,
                  const float *b, er_epi act, const er_gemm_out *y) {
    const packed_head *h = packed;
    (void)in;
    (void)out; /* h->s has both */
    job j = {.x = x, .bias = b, .s = h->s, .w = weights_of(packed), .n = n, .act = act, .y = y};
    const int blocks = blocks_of(n);
    if (team && er_par_threads(team) > 1 && blocks > 1) {
        er_par_run(team, block_item, &j, blocks);
        return;
    }
    for (int i = 0; i < blocks; i++) block_item(&j, i, 0);
}

/* ---- set-up ---- */

static void init_once_fn(void) {
    omp_set_num_threads(1); /* the primitives made on this thread: one OpenMP thread */
    dnnl_status_t st = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (st == dnnl_success && pthread_key_create(&state_key, state_free) != 0) st = dnnl_out_of_memory;
    const shape *probe = st == dnnl_success ? shape_get(768, 768, &st) : NULL;
    if (!probe) {
        init_st = er_set(&init_err, ER_ERR_UNSUPPORTED, "GEMM backend onednn: oneDNN %d.%d.%d "
                         "refused a [768, 768] fp32 matmul on this CPU (dnnl status %d)",
                         dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch, (int)st);
        return;
    }
    const char *impl = "?";
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(probe->prim[0][ACT_NONE], &pd) == dnnl_success)
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    brgemm = strncmp(impl, "brg", 3) == 0;
    const dnnl_version_t *v = dnnl_version();
    snprintf(describe, sizeof describe, "oneDNN %d.%d.%d (%s) matmul %s, ISA %s", v->major, v->minor,
             v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP, pinned to 1 thread per caller"
                       : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB" : "sequential",
             impl, isa_name(dnnl_get_effective_cpu_isa()));
}

er_status er_dnnl_init(er_err *err) {
    pthread_once(&init_once, init_once_fn);
    if (init_st != ER_OK && err) *err = init_err;
    return init_st;
}

const char *er_dnnl_describe(void) { return describe; }

bool er_dnnl_rows_independent(void) { return brgemm; }

er_status er_dnnl_prepare(int out, int in, er_err *err) {
    er_status st0 = er_dnnl_init(err);
    if (st0 != ER_OK) return st0;
    if (out < 1 || in < 1)
        return er_set(err, ER_ERR_INVALID_ARG, "GEMM backend onednn: a [%d, %d] weight", out, in);
    dnnl_status_t st;
    if (shape_get(out, in, &st)) return ER_OK;
    return er_set(err, ER_ERR_UNSUPPORTED, "GEMM backend onednn: oneDNN refused a [%d, %d] fp32 "
                  "matmul (dnnl status %d)", out, in, (int)st);
}

static const shape *shape_or_die(int out, int in) {
    er_err e;
    if (er_dnnl_prepare(out, in, &e) != ER_OK) {
        fprintf(stderr, "erserve: %s\n", e.msg);
        abort();
    }
    dnnl_status_t st;
    return shape_get(out, in, &st);
}

size_t er_dnnl_packed_bytes(int out, int in) {
    return sizeof(packed_head) + ALIGN + shape_or_die(out, in)->wbytes;
}

/* The reorder W [out, in] (a [in, out] matrix in `ba` order) -> s->wmd. */
void er_dnnl_pack(const float *W, int out, int in, void *packed) {
    const shape *s = shape_or_die(out, in);
    ((packed_head *)packed)->s = s;
    dnnl_memory_desc_t user;
    md2(&user, in, out, dnnl_ba);
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_status_t st = dnnl_memory_create(&from, &user, engine, (void *)(uintptr_t)W);
    if (st == dnnl_success)
        st = dnnl_memory_create(&to, &s->wmd, engine, (void *)(uintptr_t)weights_of(packed));
    if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&rpd, &user, engine, &s->wmd, engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&r, rpd);
    if (st == dnnl_success) st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    if (st == dnnl_success) st = dnnl_primitive_execute(r, stream, 2, args);
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
    if (stream) dnnl_stream_destroy(stream);
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(from);
    dnnl_memory_destroy(to);
    if (st != dnnl_success) fatal("the weights' reorder", st);
}

#else /* no oneDNN in this build */

er_status er_dnnl_init(er_err *err) {
    return er_set(err, ER_ERR_UNSUPPORTED, "GEMM backend onednn: this build has no oneDNN "
                  "(libdnnl-dev was not installed when it was built; deploy/install-deps.sh)");
}

const char *er_dnnl_describe(void) { return "no oneDNN in this build"; }

bool er_dnnl_rows_independent(void) { return false; }

er_status er_dnnl_prepare(int out, int in, er_err *err) {
    (void)out;
    (void)in;
    return er_dnnl_init(err);
}

size_t er_dnnl_packed_bytes(int out, int in) {
    (void)out;
    (void)in;
    abort(); /* er_gemm never chooses the backend without er_dnnl_init */
}

void er_dnnl_pack(const float *W, int out, int in, void *packed) {
    (void)W; (void)out; (void)in; (void)packed;
    abort();
}

void er_dnnl_gemm(er_par *team, const float *x, int n, int in, const void *packed, int out,
                  const float *b, er_epi act, const er_gemm_out *y) {
    (void)team; (void)x; (void)n; (void)in; (void)packed; (void)out; (void)b; (void)act; (void)y;
    abort();
}

#endif
