/* er_model_pack (model_internal.h): the loaded model's Linear weights in the
 * GEMM backend's packed layout, once at load.  The weights as stored stay
 * where they are (the fingerprint and the OpenBLAS path read them).  A row
 * slice of a fused stored matrix (ModernBERT's Wqkv and Wi halves, Nomic's
 * and GTE's Wqkv / up_gate_proj) is an er_lin of its own made at load and
 * is packed as one: its packed copy is the only one the forward reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gemm.h"
#include "model_internal.h"

static er_gemm_kind kind_of(const er_model *m) {
    return m->compute == ER_COMPUTE_BF16   ? ER_GEMM_BF16
           : m->compute == ER_COMPUTE_INT8 ? ER_GEMM_INT8 : ER_GEMM_F32;
}

/* Model-owned room for a packed weight (floats: 64-byte multiples suffice). */
static er_status alloc_packed(er_model *m, size_t bytes, void **out, er_err *err) {
    float *p;
    er_status st = er_model_alloc_floats(m, (bytes + sizeof(float) - 1) / sizeof(float), &p, err);
    *out = p;
    return st;
}

/* int8 keeps a whole row's reduction in one block of the kernel's x copy
 * (gemm.c): 12 rows of quads must fit its 288 KiB. */
#define INT8_MAX_IN 24576

static er_status pack_lin(er_model *m, er_lin *l, er_err *err) {
    if (!l->w || l->packed) return ER_OK;
    if (kind_of(m) == ER_GEMM_INT8 && l->in > INT8_MAX_IN)
        return er_set(err, ER_ERR_UNSUPPORTED, "compute int8: a projection with %d inputs "
                      "(at most %d)", l->in, INT8_MAX_IN);
    void *p;
    er_status st = alloc_packed(m, er_gemm_packed_bytes(kind_of(m), l->out, l->in), &p, err);
    if (st != ER_OK) return st;
    er_gemm_pack(kind_of(m), l->w, l->out, l->in, p);
    l->packed = p;
    l->kind = kind_of(m);
    l->packed_w = l->w;
    l->packed_out = l->out;
    return ER_OK;
}

/* q, k and v [H, H] side by side as one [3H, H] weight and its [3H] bias:
 * one GEMM whose column panels are written to q, k and v (er_gemm_out). */
static er_status pack_qkv(er_model *m, er_layer_w *L, er_err *err) {
    const int H = L->q.out, in = L->q.in;
    if (!L->q.w || !L->k.w || !L->v.w || !L->q.b || !L->k.b || !L->v.b || H % 32 != 0 ||
        L->k.out != H || L->v.out != H || L->k.in != in || L->v.in != in)
        return ER_OK; /* the layer's forward uses the three GEMMs */
    /* [3H, in] as one matrix, packed once: int8's per-column scales and
     * compensation follow the whole matrix's panels (gemm.c), so three
     * packed parts side by side would not be its layout. */
    float *w = malloc((size_t)3 * H * in * sizeof *w), *b;
    if (!w) return er_set(err, ER_ERR_NOMEM, "out of memory packing q/k/v");
    void *p;
    er_status st = alloc_packed(m, er_gemm_packed_bytes(kind_of(m), 3 * H, in), &p, err);
    if (st == ER_OK) st = er_model_alloc_floats(m, 3 * (size_t)H, &b, err);
    if (st != ER_OK) {
        free(w);
        return st;
    }
    const er_lin *parts[3] = {&L->q, &L->k, &L->v};
    for (int i = 0; i < 3; i++) {
        memcpy(w + (size_t)i * H * in, parts[i]->w, (size_t)H * in * sizeof *w);
        memcpy(b + (size_t)i * H, parts[i]->b, (size_t)H * sizeof *b);
    }
    er_gemm_pack(kind_of(m), w, 3 * H, in, p);
    free(w);
    L->qkv = (er_lin){.w = NULL, .b = b, .out = 3 * H, .in = in, .packed = p, .kind = kind_of(m),
                      .packed_w = NULL, .packed_out = 3 * H};
    return ER_OK;
}

/* Drops the resident pages of l's stored weight when it lies in a weights
 * file's mmap and has a packed copy: the forward never reads it, and the
 * fingerprint or the OpenBLAS path re-read it from the file if needed.
 * Only whole pages inside the tensor are dropped. */
static void trim_lin(const er_model *m, const er_lin *l, bool packed) {
    if (!l->w || !packed) return;
    const size_t bytes = (size_t)l->out * l->in * sizeof(float);
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int f = 0; f < m->n_files; f++) {
        if (!er_st_in_map(m->files[f], l->w, bytes)) continue;
        uintptr_t a = ((uintptr_t)l->w + page - 1) & ~(page - 1);
        uintptr_t b = ((uintptr_t)l->w + bytes) & ~(page - 1);
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
        return;
    }
}

void er_model_trim(const er_model *m) {
    if (m->emb_project.packed) trim_lin(m, &m->emb_project, true);
    for (int i = m->skip_below; i < m->cfg.num_layers; i++) {
        const er_layer_w *L = &m->layers[i];
        const bool fused = L->qkv.packed != NULL;
        trim_lin(m, &L->q, fused || L->q.packed);
        trim_lin(m, &L->k, fused || L->k.packed);
        trim_lin(m, &L->v, fused || L->v.packed);
        trim_lin(m, &L->o, L->o.packed);
        trim_lin(m, &L->ffn_in, L->ffn_in.packed);
        trim_lin(m, &L->ffn_out, L->ffn_out.packed);
        trim_lin(m, &L->gate, L->gate.packed);
    }
    trim_lin(m, &m->head_dense, m->head_dense.packed);
    trim_lin(m, &m->head_out, m->head_out.packed);
}

er_status er_model_pack(er_model *m, er_err *err) {
    if (!er_gemm_supports(kind_of(m), NULL)) return ER_OK; /* fp32 on OpenBLAS */
    er_status st = pack_lin(m, &m->emb_project, err);
    for (int i = m->skip_below; i < m->cfg.num_layers && st == ER_OK; i++) {
        er_layer_w *L = &m->layers[i];
        st = pack_qkv(m, L, err);
        if (st == ER_OK && !L->qkv.packed) st = pack_lin(m, &L->q, err);
        if (st == ER_OK && !L->qkv.packed) st = pack_lin(m, &L->k, err);
        if (st == ER_OK && !L->qkv.packed) st = pack_lin(m, &L->v, err);
        if (st == ER_OK) st = pack_lin(m, &L->o, err);
        if (st == ER_OK) st = pack_lin(m, &L->ffn_in, err);
        if (st == ER_OK) st = pack_lin(m, &L->ffn_out, err);
        if (st == ER_OK) st = pack_lin(m, &L->gate, err); /* a row slice: packed as its own */
    }
    if (st == ER_OK) st = pack_lin(m, &m->head_dense, err);
    if (st == ER_OK) st = pack_lin(m, &m->head_out, err);
    if (st == ER_OK) er_model_trim(m);
    return st;
}
