/* Multi-head self-attention of each sequence over its own tokens, tiled
 * (encoder_internal.h, er_attention).
 *
 * Work item = (sequence, head, block of ER_ATT_ROWS query rows).  For its
 * rows, an item walks the keys in blocks of ER_ATT_COLS with an online
 * softmax (running row max m, running sum l, unnormalised context acc):
 *
 *   tile = scale * Q_blk K_blk^T (+ bias)     // [rows, cols] one GEMM
 *   m'   = max(m, rowmax(tile));  p = exp(tile - m')
 *   acc  = acc * exp(m - m') + p V_blk        // [rows, head_dim] one GEMM
 *   l    = l * exp(m - m') + rowsum(p)
 *   out  = acc / l
 *
 * so no S x S score matrix is ever stored: scratch per thread is one tile
 * plus the accumulators, whatever the sequence length.  A sequence of up to
 * ER_ATT_COLS tokens is one key block, i.e. an ordinary softmax.  Results do
 * not depend on the number of threads (each item is computed by one thread
 * in a fixed order).  The two GEMMs are er_att_qk / er_att_pv
 * (att_kernels.h: erserve's AVX-512 or AVX2 code, cblas on the OpenBLAS
 * backend). */
#include "encoder_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "att_kernels.h"
#include "gemm.h"
#include "kernels.h"

size_t er_attention_scratch_floats(int hidden) {
    return (size_t)ER_ATT_ROWS * ER_ATT_COLS    /* tile */
           + (size_t)ER_ATT_ROWS * (size_t)hidden /* acc, head_dim <= hidden */
           + 2 * (size_t)ER_ATT_ROWS            /* m, l */
           + (size_t)ER_ATT_PANEL * (size_t)hidden  /* kpack: one panel of keys */
           + (size_t)ER_ATT_ROWS * ER_ATT_RMAX;     /* rmax: the tile's partial row maxima */
}

typedef struct {
    er_ctx *x;
    const er_batch *b;
    const er_att_args *a;
    int n_blocks; /* query-row blocks over all sequences */
} att_job;

/* Maps a work item to its sequence, head and first query row. */
static void item_place(const att_job *j, int item, int *seq, int *head, int *row0) {
    const int nh = j->a->n_heads;
    int blk = item / nh;
    *head = item % nh;
    for (int s = 0; s < j->b->n_seqs; s++) {
        int nb = (j->b->seq_len[s] + ER_ATT_ROWS - 1) / ER_ATT_ROWS;
        if (blk < nb) {
            *seq = s;
            *row0 = blk * ER_ATT_ROWS;
            return;
        }
        blk -= nb;
    }
    *seq = 0; /* not reached: items < n_blocks * n_heads */
    *row0 = 0;
}

/* Keys [j0, j1) that query rows [i0, i1) can see. */
static void key_range(const er_att_bias *bias, int n, int i0, int i1, int *j0, int *j1) {
    *j0 = 0;
    *j1 = n;
    if (bias && bias->window > 0) {
        *j0 = i0 - bias->window > 0 ? i0 - bias->window : 0;
        *j1 = i1 + bias->window < n ? i1 + bias->window : n;
    }
}

/* Online-softmax update of rows [0, rows) with one tile of scores
 * tile[rows, cols] for keys [k0, k0 + cols); returns nothing, updates m, l,
 * acc and turns the tile into the unnormalised probabilities p.  rmax: NULL,
 * or the tile's partial row maxima [rows, ER_ATT_RMAX] from er_att_qk (then
 * the tile has no bias and no window: every key is visible). */
static void online_update(const er_att_bias *bias, int i0, int k0, int rows, int cols, int d,
                          float *tile, float *acc, float *m, float *l, const float *rmax) {
    const int w = bias ? bias->window : 0;
    for (int r = 0; r < rows; r++) {
        float *t = tile + (size_t)r * cols; // [cols]
        int lo = 0, hi = cols;              /* visible keys of this row within the tile */
        if (w > 0) {
            int i = i0 + r;
            lo = i - w - k0 > 0 ? i - w - k0 : 0;
            hi = i + w + 1 - k0 < cols ? i + w + 1 - k0 : cols;
        }
        float *arow = acc + (size_t)r * d; // [d]
        if (lo >= hi) {
            memset(t, 0, (size_t)cols * sizeof *t);
            continue;
        }
        /* The max is exact in any order (a -0 for a +0 changes no x - max). */
        float tmax;
        if (rmax) {
            const float *pm = rmax + (size_t)r * ER_ATT_RMAX; // [ER_ATT_RMAX]
            tmax = pm[0];
            for (int j = 1; j < ER_ATT_RMAX; j++) tmax = pm[j] > tmax ? pm[j] : tmax;
        } else {
            tmax = er_max(t + lo, hi - lo);
        }
        float mnew = tmax > m[r] ? tmax : m[r];
        float alpha = m[r] == -INFINITY ? 0.0f : er_exp(m[r] - mnew);
        float sum = er_att_exp_sum(t + lo, hi - lo, mnew);
        memset(t, 0, (size_t)lo * sizeof *t);
        memset(t + hi, 0, (size_t)(cols - hi) * sizeof *t);
        if (alpha != 1.0f)
            for (int c = 0; c < d; c++) arow[c] *= alpha;
        l[r] = l[r] * alpha + sum;
        m[r] = mnew;
    }
}

static void attention_item(void *arg, int item, int thread) {
    const att_job *j = arg;
    const er_att_args *a = j->a;
    er_ctx *x = j->x;
    int s = 0, h = 0, i0 = 0;
    item_place(j, item, &s, &h, &i0);
    const int n = j->b->seq_len[s], d = a->head_dim, ld = a->ld, ldo = a->n_heads * d;
    const int rows = n - i0 < ER_ATT_ROWS ? n - i0 : ER_ATT_ROWS;
    const size_t first = (size_t)x->offsets[s];
    const float *q = a->q + (first + (size_t)i0) * ld + (size_t)h * d; // [rows, d] stride ld
    const float *k = a->k + first * ld + (size_t)h * d;                // [n, d] stride ld
    const float *v = a->v + first * ld + (size_t)h * d;                // [n, d] stride ld
    float *tile = x->att_scratch + (size_t)thread * er_attention_scratch_floats(x->hidden);
    float *acc = tile + (size_t)ER_ATT_ROWS * ER_ATT_COLS; // [rows, d]
    float *m = acc + (size_t)ER_ATT_ROWS * x->hidden;      // [rows]
    float *l = m + ER_ATT_ROWS;                             // [rows]
    float *kpack = l + ER_ATT_ROWS;                         // [d, ER_ATT_PANEL]
    float *rmax = kpack + (size_t)ER_ATT_PANEL * x->hidden;  // [rows, ER_ATT_RMAX]
    for (int r = 0; r < rows; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(acc, 0, (size_t)rows * d * sizeof *acc);
    int j0, j1;
    key_range(a->bias, n, i0, i0 + rows, &j0, &j1);
    /* The row max from the QK^T tiles' registers, where the softmax sees the
     * tile as stored: no bias added after, no window cutting rows short. */
    float *tile_max = a->bias && (a->bias->add || a->bias->window > 0) ? NULL : rmax;
    for (int k0 = j0; k0 < j1; k0 += ER_ATT_COLS) {
        const int cols = j1 - k0 < ER_ATT_COLS ? j1 - k0 : ER_ATT_COLS;
        er_att_qk(q, (size_t)ld, k + (size_t)k0 * ld, (size_t)ld, rows, cols, d, a->scale, tile,
                  (size_t)cols, kpack, tile_max); // [rows, cols]
        if (a->bias && a->bias->add)
            a->bias->add(a->bias, s, h, i0, i0 + rows, k0, k0 + cols, tile, cols);
        online_update(a->bias, i0, k0, rows, cols, d, tile, acc, m, l, tile_max);
        er_att_pv(tile, (size_t)cols, v + (size_t)k0 * ld, (size_t)ld, rows, cols, d, acc,
                  (size_t)d); // [rows, d]
    }
    float *out = a->out + (first + (size_t)i0) * ldo + (size_t)h * d; // [rows, d] stride ldo
    er_att_normalize(acc, (size_t)d, rows, d, l, out, (size_t)ldo); /* l >= 1: the max's exp(0) */
}

void er_attention(er_ctx *x, const er_batch *b, const er_att_args *a) {
    att_job j = {.x = x, .b = b, .a = a, .n_blocks = 0};
    int off = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        x->offsets[s] = off;
        off += b->seq_len[s];
        j.n_blocks += (b->seq_len[s] + ER_ATT_ROWS - 1) / ER_ATT_ROWS;
    }
    /* Each team thread runs whole small GEMMs; where they are OpenBLAS's
     * (att_kernels.h), its threading inside them would only contend (see
     * er_ctx_params.n_threads). */
    const bool blas = er_gemm_attention_kernels() == ER_ATT_ON_OPENBLAS && x->p.n_threads > 1;
    int blas_threads = 1;
    if (blas) {
        blas_threads = openblas_get_num_threads();
        openblas_set_num_threads(1);
    }
    er_par_run(x->par, attention_item, &j, j.n_blocks * a->n_heads);
    if (blas) openblas_set_num_threads(blas_threads);
}
