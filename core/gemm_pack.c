/* er_model_pack (model_internal.h): the loaded model's Linear weights in the
 * GEMM backend's packed layout, once at load.  The weights as stored stay
 * where they are (the fingerprint and the OpenBLAS path read them); narrow
 * (F16/BF16) layer weights are widened one matrix at a time into a buffer
 * freed as soon as the matrix is packed.  A row slice of a fused stored
 * matrix (ModernBERT's Wqkv and Wi halves, Nomic's and GTE's Wqkv /
 * up_gate_proj) is an er_lin of its own made at load and is packed as one:
 * its packed copy is the only one the forward reads.
 *
 * Packed weights are shared between models: tasks over one base (adapter
 * tasks, a task loaded twice) map its checkpoint once (model.c), so their
 * stored weights (or narrow tensors) lie at the same addresses, and a stored
 * weight packed the same way is packed once for all of them (a process-wide
 * registry keyed by the stored weight's address, shape and number format,
 * a fused q/k/v's bias by value and a merged LoRA pair by its B, counted by
 * holders).  An entry cannot outlive what its key points into:
 * each holder also holds that mapping (or owned copy) and gives the entry
 * back first. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gemm.h"
#include "heads.h"
#include "model_internal.h"

static er_gemm_kind kind_of(const er_model *m) {
    return m->compute == ER_COMPUTE_BF16   ? ER_GEMM_BF16
           : m->compute == ER_COMPUTE_INT8 ? ER_GEMM_INT8 : ER_GEMM_F32;
}

bool er_model_packs(const er_model *m) { return er_gemm_supports(kind_of(m), NULL); }

typedef struct pack_entry {
    const void *key[3];   /* the stored weight(s) packed (w or narrow): one, or q, k, v */
    const void *mkey[3];  /* merged LoRA pairs' B (er_lin.merge_b), NULL for none: a
                             merged weight is the model's own, packed apart from its base */
    int out, in;
    er_gemm_kind kind;
    void *packed;         /* er_gemm_packed_bytes(kind, out, in) */
    float *bias;          /* fused q/k/v: [3H]; else NULL */
    int holders;
    struct pack_entry *next;
} pack_entry;

static pthread_mutex_t g_packs_mu = PTHREAD_MUTEX_INITIALIZER;
static pack_entry *g_packs;

/* What a packing is made of: the stored weights, the fused bias's parts and
 * any merged LoRA pairs (each [3], unused slots NULL). */
typedef struct {
    const void *w[3];
    const float *b[3]; /* fused q/k/v: their biases [out / 3] each */
    const void *merge[3];
} pack_key;

/* The fused bias of e is k's q/k/v biases, compared by value: an F16/BF16
 * checkpoint's biases are widened into each model's own copies, so models
 * over one checkpoint hold the same numbers at different addresses. */
static bool same_bias(const pack_entry *e, const pack_key *k, int out) {
    if (!e->bias || !k->b[0]) return !e->bias && !k->b[0];
    const size_t h = (size_t)out / 3;
    for (int i = 0; i < 3; i++)
        if (memcmp(e->bias + (size_t)i * h, k->b[i], h * sizeof *e->bias)) return false;
    return true;
}

static bool same_key(const pack_entry *e, const pack_key *k, int out, int in, er_gemm_kind kind) {
    return e->out == out && e->in == in && e->kind == kind &&
           !memcmp(e->key, k->w, sizeof e->key) && !memcmp(e->mkey, k->merge, sizeof e->mkey) &&
           same_bias(e, k, out);
}

/* Room in m->packs for one more entry held. */
static er_status reserve_hold(er_model *m, er_err *err) {
    if (m->n_packs < m->cap_packs) return ER_OK;
    int cap = m->cap_packs ? 2 * m->cap_packs : 32;
    void **p = realloc(m->packs, (size_t)cap * sizeof *p);
    if (!p) return er_set(err, ER_ERR_NOMEM, "out of memory");
    m->packs = p;
    m->cap_packs = cap;
    return ER_OK;
}

/* The registry's entry for this key, held by m: found, or made by fill
 * (which packs into e->packed and, for q/k/v, fills e->bias; its error
 * leaves no entry). */
static er_status shared_pack(er_model *m, const pack_key *k, int out, int in,
                             er_status (*fill)(pack_entry *e, const void *arg, er_err *err),
                             const void *arg, pack_entry **found, er_err *err) {
    er_gemm_kind kind = kind_of(m);
    er_status st = er_gemm_prepare(kind, out, in, err); /* oneDNN: refused shapes fail here */
    if (st != ER_OK) return st;
    st = reserve_hold(m, err); /* first: holding it below cannot fail */
    if (st != ER_OK) return st;
    pthread_mutex_lock(&g_packs_mu);
    pack_entry *e = g_packs;
    while (e && !same_key(e, k, out, in, kind)) e = e->next;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (e) e->packed = calloc(1, er_gemm_packed_bytes(kind, out, in) + 64);
        if (e && k->b[0]) e->bias = calloc((size_t)out, sizeof *e->bias);
        if (!e || !e->packed || (k->b[0] && !e->bias)) {
            if (e) free(e->packed);
            free(e);
            pthread_mutex_unlock(&g_packs_mu);
            return er_set(err, ER_ERR_NOMEM, "out of memory packing a [%d, %d] weight", out, in);
        }
        memcpy(e->key, k->w, sizeof e->key);
        memcpy(e->mkey, k->merge, sizeof e->mkey);
        e->out = out;
        e->in = in;
        e->kind = kind;
        if ((st = fill(e, arg, err)) != ER_OK) {
            free(e->packed);
            free(e->bias);
            free(e);
            pthread_mutex_unlock(&g_packs_mu);
            return st;
        }
        e->next = g_packs;
        g_packs = e;
    }
    m->packs[m->n_packs++] = e; /* held until er_model_unpack */
    e->holders++;
    pthread_mutex_unlock(&g_packs_mu);
    *found = e;
    return ER_OK;
}

void er_model_unpack(er_model *m) {
    pthread_mutex_lock(&g_packs_mu);
    for (int i = 0; i < m->n_packs; i++) {
        pack_entry *e = m->packs[i];
        if (--e->holders > 0) continue;
        pack_entry **pp = &g_packs;
        while (*pp != e) pp = &(*pp)->next;
        *pp = e->next;
        free(e->packed);
        free(e->bias);
        free(e);
    }
    pthread_mutex_unlock(&g_packs_mu);
    free(m->packs);
    m->packs = NULL;
    m->n_packs = m->cap_packs = 0;
}

/* int8 keeps a whole row's reduction in one block of the kernel's x copy
 * (gemm.c): 12 rows of quads must fit its 288 KiB. */
#define INT8_MAX_IN 24576

/* A transient buffer at load (model_internal.h), mapped on its own and
 * unmapped by er_transient_free: a malloc'd one would leave its pages
 * resident in the heap between the packed copies allocated around it (glibc
 * raises its mmap threshold after the first free of a large block). */
float *er_transient_alloc(size_t n) {
    void *p = mmap(NULL, (n ? n : 1) * sizeof(float), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void er_transient_free(float *p, size_t n) {
    if (p) munmap(p, (n ? n : 1) * sizeof(float));
}

/* W [out, in] as fp32 for packing: w itself, or a narrow weight (or one
 * with a merged LoRA pair) widened into a transient buffer (*tmp,
 * transient_free'd by the caller once packed, so the model never holds more
 * than one widened matrix). */
static er_status lin_f32(const er_lin *l, const float **w, float **tmp, er_err *err) {
    *tmp = NULL;
    *w = l->w;
    if (er_lin_is_float(l)) return ER_OK;
    *tmp = er_transient_alloc((size_t)l->out * l->in); // [out, in]
    if (!*tmp) return er_set(err, ER_ERR_NOMEM, "out of memory widening a %dx%d weight", l->out,
                             l->in);
    *w = *tmp;
    return er_lin_widen(l, *tmp, err);
}

/* e->packed from l's weight (widened first when narrow). */
static er_status fill_lin(pack_entry *e, const void *arg, er_err *err) {
    const er_lin *l = arg;
    const float *w;
    float *tmp = NULL;
    er_status st = lin_f32(l, &w, &tmp, err);
    if (st == ER_OK) er_gemm_pack(e->kind, w, l->out, l->in, e->packed);
    er_transient_free(tmp, (size_t)l->out * l->in);
    return st;
}

/* The bytes of l's narrow rows in the checkpoint's mmap, and how many. */
static const void *narrow_bytes(const er_lin *l, size_t *bytes) {
    const size_t elem = l->narrow->nbytes / (size_t)l->narrow->numel; /* 2: F16 or BF16 */
    *bytes = (size_t)l->out * (size_t)l->in * elem;
    return (const char *)l->narrow->data + (size_t)l->narrow_row * (size_t)l->in * elem;
}

/* The stored weight a packing is made of: w, or the address of its narrow
 * rows (a row slice of a fused tensor is a weight of its own, keyed apart
 * from its siblings). */
static const void *stored(const er_lin *l) {
    size_t bytes;
    return l->w ? (const void *)l->w : narrow_bytes(l, &bytes);
}

static er_status pack_lin(er_model *m, er_lin *l, er_err *err) {
    if ((!l->w && !l->narrow) || l->packed) return ER_OK;
    if (kind_of(m) == ER_GEMM_INT8 && l->in > INT8_MAX_IN)
        return er_set(err, ER_ERR_UNSUPPORTED, "compute int8: a projection with %d inputs "
                      "(at most %d)", l->in, INT8_MAX_IN);
    const pack_key key = {.w = {stored(l)}, .merge = {l->merge_b}};
    pack_entry *e = NULL;
    er_status st = shared_pack(m, &key, l->out, l->in, fill_lin, l, &e, err);
    if (st != ER_OK) return st;
    l->packed = e->packed;
    l->kind = kind_of(m);
    l->packed_w = l->w;
    l->packed_out = l->out;
    return ER_OK;
}

static bool has_w(const er_lin *l) { return l->w || l->narrow; }

/* e->packed and e->bias [3H] from q, k and v of layer arg stacked (each
 * widened when narrow) into one transient [3H, in] matrix. */
static er_status fill_qkv(pack_entry *e, const void *arg, er_err *err) {
    const er_layer_w *L = arg;
    const int H = L->q.out, in = L->q.in;
    const size_t n = (size_t)3 * H * in;
    float *w = er_transient_alloc(n); // [3H, in]
    if (!w) return er_set(err, ER_ERR_NOMEM, "out of memory packing q/k/v");
    const er_lin *parts[3] = {&L->q, &L->k, &L->v};
    er_status st = ER_OK;
    for (int i = 0; i < 3 && st == ER_OK; i++) {
        st = er_lin_widen(parts[i], w + (size_t)i * H * in, err);
        memcpy(e->bias + (size_t)i * H, parts[i]->b, (size_t)H * sizeof *e->bias);
    }
    if (st == ER_OK) er_gemm_pack(e->kind, w, 3 * H, in, e->packed);
    er_transient_free(w, n);
    return st;
}

/* q, k and v [H, H] side by side as one [3H, H] weight and its [3H] bias:
 * one GEMM whose column panels are written to q, k and v (er_gemm_out). */
static er_status pack_qkv(er_model *m, er_layer_w *L, er_err *err) {
    const int H = L->q.out, in = L->q.in;
    if (!has_w(&L->q) || !has_w(&L->k) || !has_w(&L->v) || !L->q.b || !L->k.b || !L->v.b ||
        H % 32 != 0 || L->k.out != H || L->v.out != H || L->k.in != in || L->v.in != in)
        return ER_OK; /* the layer's forward uses the three GEMMs */
    /* [3H, in] as one matrix, packed once: int8's per-column scales and
     * compensation follow the whole matrix's panels (gemm.c), so three
     * packed parts side by side would not be its layout. */
    const pack_key key = {.w = {stored(&L->q), stored(&L->k), stored(&L->v)},
                          .b = {L->q.b, L->k.b, L->v.b},
                          .merge = {L->q.merge_b, L->k.merge_b, L->v.merge_b}};
    pack_entry *e = NULL;
    er_status st = shared_pack(m, &key, 3 * H, in, fill_qkv, L, &e, err);
    if (st != ER_OK) return st;
    L->qkv = (er_lin){.w = NULL, .b = e->bias, .out = 3 * H, .in = in, .packed = e->packed,
                      .kind = kind_of(m), .packed_w = NULL, .packed_out = 3 * H};
    return ER_OK;
}

/* Drops the whole pages inside [data, data + bytes) when it lies in one of
 * the model's weight-file mmaps (re-read from the file when touched). */
static void drop_pages(const er_model *m, const void *data, size_t bytes) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int f = 0; f < m->n_files; f++) {
        if (!er_st_in_map(m->files[f], data, bytes)) continue;
        uintptr_t a = ((uintptr_t)data + page - 1) & ~(page - 1);
        uintptr_t b = ((uintptr_t)data + bytes) & ~(page - 1);
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
        return;
    }
}

/* Drops the resident pages of l's stored weight when it lies in a weights
 * file's mmap and has a packed copy: the forward never reads it, and the
 * fingerprint or the OpenBLAS path re-read it from the file if needed. */
static void trim_lin(const er_model *m, const er_lin *l, bool packed) {
    if ((!l->w && !l->narrow) || !packed) return;
    /* a narrow weight lies in the mmap as stored: its F16/BF16 bytes */
    size_t bytes = (size_t)l->out * l->in * sizeof(float);
    const void *data = l->w ? (const void *)l->w : narrow_bytes(l, &bytes);
    drop_pages(m, data, bytes);
}

static void trim_layer(const er_model *m, const er_layer_w *L) {
    const bool fused = L->qkv.packed != NULL;
    trim_lin(m, &L->q, fused || L->q.packed);
    trim_lin(m, &L->k, fused || L->k.packed);
    trim_lin(m, &L->v, fused || L->v.packed);
    trim_lin(m, &L->o, L->o.packed);
    trim_lin(m, &L->ffn_in, L->ffn_in.packed);
    trim_lin(m, &L->ffn_out, L->ffn_out.packed);
    trim_lin(m, &L->gate, L->gate.packed);
}

void er_model_trim(const er_model *m) {
    if (m->emb_project.packed) trim_lin(m, &m->emb_project, true);
    for (int i = m->skip_below; i < m->cfg.num_layers; i++) trim_layer(m, &m->layers[i]);
    trim_lin(m, &m->head_dense, m->head_dense.packed);
    trim_lin(m, &m->head_out, m->head_out.packed);
    trim_lin(m, &m->heads.mlm_transform, m->heads.mlm_transform.packed);
    for (int i = 0; i < m->heads.n_mlm_blocks; i++)
        trim_lin(m, &m->heads.mlm_blocks[i], m->heads.mlm_blocks[i].packed);
    /* a narrow word-embedding table: the fingerprint read all of it, the
     * forward reads a row per token (re-faulted from the file) */
    if (m->word_emb_narrow) drop_pages(m, m->word_emb_narrow->data, m->word_emb_narrow->nbytes);
}

/* The masked-LM head (SPLADE): its transform, and its decoder [V, H] (the
 * tied word-embedding table, often) as row blocks of ER_MLM_COLS, each a
 * view packed on its own: the forward computes one [rows, ER_MLM_COLS] tile
 * of logits at a time (head_mlm.c), each from one whole packed block.  A
 * narrow table is widened one block at a time, so no fp32 V x H copy is
 * ever made. */
static er_status pack_mlm(er_model *m, er_err *err) {
    er_lin *dec = &m->heads.mlm_decoder;
    er_status st = pack_lin(m, &m->heads.mlm_transform, err);
    if (st != ER_OK || (!dec->w && !dec->narrow)) return st;
    const int n = (dec->out + ER_MLM_COLS - 1) / ER_MLM_COLS;
    er_lin *blocks = calloc((size_t)n, sizeof *blocks); // [n]
    if (!blocks) return er_set(err, ER_ERR_NOMEM, "out of memory");
    m->heads.mlm_blocks = blocks; /* freed by er_model_unload */
    m->heads.n_mlm_blocks = n;
    for (int i = 0; i < n && st == ER_OK; i++) {
        const int v0 = i * ER_MLM_COLS, rows = dec->out - v0 < ER_MLM_COLS ? dec->out - v0
                                                                            : ER_MLM_COLS;
        blocks[i] = er_lin_rows(dec, v0, rows);
        st = pack_lin(m, &blocks[i], err);
        /* now: the load's peak holds one block of the table as stored */
        if (st == ER_OK) trim_lin(m, &blocks[i], true);
    }
    return st;
}

er_status er_model_pack(er_model *m, er_err *err) {
    if (!er_gemm_supports(kind_of(m), NULL)) { /* fp32 on OpenBLAS */
        er_model_trim(m);
        return ER_OK;
    }
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
        if (st == ER_OK) trim_layer(m, L); /* now: the load's peak holds one layer as stored */
    }
    if (st == ER_OK) st = pack_lin(m, &m->head_dense, err);
    if (st == ER_OK) st = pack_lin(m, &m->head_out, err);
    if (st == ER_OK) st = pack_mlm(m, err);
    if (st == ER_OK) er_model_trim(m);
    return st;
}
