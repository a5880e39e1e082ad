/* er_gemm: the weight-GEMM seam of the forward pass, y = x . W^T + b (+ act).
 *
 * Four backends, chosen once per process (er_gemm_backend):
 *  - ER_GEMM_AVX512: erserve's own AVX-512 kernels on weights packed once at
 *    load into 32-column panels (model-owned memory).  They dispatch on CPU
 *    features (__builtin_cpu_supports), not on the CPU model, so speed does
 *    not depend on OPENBLAS_CORETYPE; they never allocate (oneDNN 2.6's
 *    sgemm and matmul primitives malloc on every call, so they cannot sit on
 *    a no-allocation hot path); bias and activation run in the epilogue on
 *    the tile still in registers; threads are the caller's er_par team.
 *  - ER_GEMM_AVX2: erserve's AVX2 + FMA fp32 kernels (gemm_avx2.c, and
 *    att_kernels_avx2.c for attention) on the same packed layout, for hosts
 *    with AVX2 and FMA but no AVX-512F (AMD Zen 2/3, Intel Haswell to Comet
 *    Lake), so fp32 does not depend on OPENBLAS_CORETYPE there either; the
 *    same bits as the AVX-512 kernels; bf16 and int8 are refused.
 *  - ER_GEMM_OPENBLAS: cblas_sgemm on the weights as stored, then one pass
 *    for bias (+ act): hosts with neither, non-x86 builds, or chosen.
 *  - ER_GEMM_ONEDNN: oneDNN 2.6 matmul primitives (gemm_dnnl.h), fp32 only,
 *    only when chosen ("onednn"): primitives per weight shape made at load,
 *    weights reordered once into their layout, bias and GELU (erf) fused;
 *    but oneDNN allocates in every primitive execution (core/GEMM.md), so
 *    the forward is not allocation-free on it and `auto` never takes it.
 *
 * Every output element is the same sum in the same order whatever the row
 * count, the row's position in the batch and the number of threads, so a
 * sequence's activations do not depend on what it was batched with
 * (recycling: a hit equals a miss bit for bit).  The onednn backend gives
 * the same bits for the same call whatever the thread count, and across
 * batches only where oneDNN runs its brgemm kernels (er_gemm_rows_independent). */
#ifndef ER_GEMM_H
#define ER_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "er_error.h"
#include "par.h"

typedef enum { ER_GEMM_OPENBLAS, ER_GEMM_AVX512, ER_GEMM_AVX2, ER_GEMM_ONEDNN } er_gemm_backend;

/* The process's backend, fixed at first use: er_gemm_select's choice, else
 * ERSERVE_GEMM=auto|own|avx2|openblas|onednn (default auto: AVX-512 where the
 * CPU has AVX-512F, else AVX2 where it has AVX2 and FMA, else OpenBLAS; own:
 * the same, but a CPU with neither is refused by er_gemm_select; avx2 forces
 * the AVX2 kernels on any AVX2 host; onednn: oneDNN where this build has it
 * and it runs here, else auto's choice with the refusal in er_gemm_describe). */
er_gemm_backend er_gemm_backend_get(void);

/* Chooses the backend, overriding ERSERVE_GEMM: "auto" (the AVX-512 kernels
 * where the CPU has AVX-512F, else the AVX2 ones where it has AVX2 and FMA,
 * else OpenBLAS), "own" (or "avx512": erserve's
 * AVX-512 kernels, else its AVX2 ones; ER_ERR_UNSUPPORTED naming the
 * missing features where the CPU has neither), "avx2" (the AVX2 kernels
 * even on an AVX-512 host), "openblas" or "onednn" (ER_ERR_UNSUPPORTED
 * naming why where this build has no oneDNN or oneDNN cannot create a matmul
 * primitive here).  Call once, at start-up, before anything
 * loads a model (the choice is fixed at first use: ER_ERR_INVALID_ARG for
 * openblas after the own kernels were chosen).  ER_ERR_INVALID_ARG for
 * another name.  Not thread-safe against concurrent first use. */
er_status er_gemm_select(const char *name, er_err *err);

/* Where attention's small GEMMs (att_kernels.h) run: erserve's AVX-512 code
 * on the AVX-512 backend; erserve's AVX2 code on the AVX2 backend; on the
 * onednn backend (oneDNN serves the weight GEMMs only) whichever of the two
 * the CPU runs; else OpenBLAS. */
typedef enum { ER_ATT_ON_OPENBLAS, ER_ATT_ON_AVX512, ER_ATT_ON_AVX2 } er_att_kernels;
er_att_kernels er_gemm_attention_kernels(void);

/* Whether a row's result is the same bits whatever the other rows of the
 * call and its place among them (recycling: a hit served in another batch
 * equals a miss there).  The own kernels: always.  onednn: where oneDNN runs
 * its brgemm kernels (AVX-512 hosts; checked by test_gemm), not on its
 * gemm:jit path (AVX2), whose rows depend on their place in the block.
 * OpenBLAS: not promised.  Every backend gives the same bits for the same
 * call whatever the thread count. */
bool er_gemm_rows_independent(void);

/* One line for the start-up log: the backend and the ISA it runs. */
const char *er_gemm_describe(void);

/* The packed weight's number format.  ER_GEMM_BF16: weights rounded to
 * bfloat16 at load, x rounded to bfloat16 as it is copied into the kernel's
 * block, products summed in fp32 (VDPBF16PS, AVX512-BF16).  ER_GEMM_INT8:
 * weights symmetric int8 per output column (scale max |w| / 127), x
 * quantised per row (token) on the fly the same way, exact int32 sums
 * (VPDPBUSD, AVX512-VNNI), rescaled to fp32 before bias and activation. */
typedef enum { ER_GEMM_F32, ER_GEMM_BF16, ER_GEMM_INT8 } er_gemm_kind;

/* Whether this process can run `kind` (backend and CPU features); if not,
 * *missing names what is missing (a CPU feature or the backend). */
bool er_gemm_supports(er_gemm_kind kind, const char **missing);

/* Epilogue applied after the bias. */
typedef enum { ER_EPI_NONE, ER_EPI_GELU, ER_EPI_GELU_TANH, ER_EPI_RELU } er_epi;

/* Whether the backend can pack and run a [out, in] weight of `kind`,
 * preparing what it needs (onednn: the shape's matmul primitives, made once
 * per process); ER_OK, or ER_ERR_UNSUPPORTED naming the shape and the
 * library's refusal (ER_ERR_INVALID_ARG: a dimension below 1).  Call before er_gemm_packed_bytes where a failure must
 * be an error (model loading); the own kernels and OpenBLAS always ER_OK. */
er_status er_gemm_prepare(er_gemm_kind kind, int out, int in, er_err *err);

/* Bytes of a packed [out, in] weight (onednn fp32: its primitives' weight
 * layout plus a header; otherwise out rounded up to 32; bf16: in
 * rounded up to 2, two bytes a value; int8: in rounded up to 4, one byte a
 * value, plus a scale and a compensation term per column). */
size_t er_gemm_packed_bytes(er_gemm_kind kind, int out, int in);

/* packed = W[out, in] (nn.Linear layout) in the backend's layout (onednn
 * fp32: oneDNN's reorder into its primitives' layout), for the own kernels
 * panels of 32 output columns:
 * F32: panel p holds, for each k < in, W[32p .. 32p + 31][k] (zeros past
 * out).  BF16: for each pair of k, the 32 columns' (k, k + 1) values side by
 * side, VDPBF16PS's operand layout; INT8: quads of k likewise (gemm.c). */
void er_gemm_pack(er_gemm_kind kind, const float *W, int out, int in, void *packed);

/* Where the output columns go: column c of y[n, out] is written to
 * dst[c / seg][(row * seg) + c % seg], i.e. `out / seg` row-major matrices
 * [n, seg] (one for a plain GEMM: seg = out; q, k, v for a fused QKV).  seg
 * is a multiple of 32 when there is more than one destination. */
typedef struct {
    float *dst[3];
    int seg;
    /* BF16 only, one destination (seg = out), NULL otherwise: instead of
     * dst, the output (after bias and activation, in fp32) is rounded to
     * bfloat16 and written here already laid out as the x operand of a
     * following BF16 GEMM whose `in` is this GEMM's `out`
     * (er_gemm_packed_xbf16), er_gemm_xbf16_bytes(n, out) bytes.  That GEMM
     * then neither re-reads fp32 rows nor rounds them: the same bits as
     * rounding dst's rows, half the bytes.  Only where
     * er_gemm_xbf16_supported(in) for this GEMM's `in`. */
    void *xbf16;
    /* F32 only, one destination (seg = out), NULL otherwise: instead of
     * dst, the output (after bias and activation) is written here already
     * laid out as the x operand of a following F32 GEMM whose `in` is this
     * GEMM's `out` (er_gemm_packed_xf32), er_gemm_xf32_floats(n, out)
     * floats.  That GEMM then skips its copy of x into 12-row groups (the
     * copy every thread makes of every row block): the same bits, one pass
     * over the intermediate fewer.  Only where er_gemm_xf32_supported(in)
     * for this GEMM's `in`. */
    float *xf32;
} er_gemm_out;

/* Bytes of n rows of `in` values in the bf16 x layout of er_gemm_out.xbf16:
 * groups of 12 rows (the last one padded), each [ceil(in / 2), 12] pairs. */
size_t er_gemm_xbf16_bytes(int n, int in);

/* Whether a BF16 GEMM of reduction length `in` can write er_gemm_out.xbf16
 * (it needs the whole reduction in one block: in <= 3072). */
bool er_gemm_xbf16_supported(int in);

/* Floats of n rows of `in` values in the fp32 x layout of
 * er_gemm_out.xf32: groups of 12 rows (the last one padded), each
 * [ceil(in / 16), 12, 16] (per 16 values of k, the group's rows one after
 * the other, so the writing GEMM stores its tile's rows whole, and the
 * reading one finds a step's 12 values in 12 lines of L1); at least n * in. */
size_t er_gemm_xf32_floats(int n, int in);

/* Whether an F32 GEMM of reduction length `in` can write er_gemm_out.xf32
 * or read its x from it (er_gemm_packed_xf32): the AVX-512 backend only (the
 * AVX2, OpenBLAS and oneDNN backends keep row-major intermediates), and the
 * whole reduction in one block (in <= 3072). */
bool er_gemm_xf32_supported(int in);

/* y = act(x[n, in] . W^T + b) with W packed by er_gemm_pack (b may be NULL),
 * spread over team (NULL: the calling thread only).  Only for a kind
 * er_gemm_supports. */
void er_gemm_packed(er_par *team, const float *x, int n, int in, er_gemm_kind kind,
                    const void *packed, int out, const float *b, er_epi act,
                    const er_gemm_out *y);

/* er_gemm_packed with x given as bf16 in er_gemm_out.xbf16's layout
 * (xbf16: n rows of `in` values, written by an earlier GEMM); kind is
 * ER_GEMM_BF16.  Bit for bit what er_gemm_packed gives on the fp32 rows
 * those bf16 values were rounded from. */
void er_gemm_packed_xbf16(er_par *team, const void *xbf16, int n, int in, const void *packed,
                          int out, const float *b, er_epi act, const er_gemm_out *y);

/* er_gemm_packed with x given in er_gemm_out.xf32's layout (n rows of `in`
 * values, written by an earlier GEMM); kind is ER_GEMM_F32, and only where
 * er_gemm_xf32_supported(in).  Bit for bit what er_gemm_packed gives on the
 * same values as rows. */
void er_gemm_packed_xf32(er_par *team, const float *xf32, int n, int in, const void *packed,
                         int out, const float *b, er_epi act, const er_gemm_out *y);

/* The team er_lin_apply spreads its GEMMs over on this thread (the ctx's,
 * bound by the encoder's entry points for the duration of a call); returns
 * the previous binding.  NULL: single-threaded. */
er_par *er_gemm_bind(er_par *team);
er_par *er_gemm_bound(void);

#endif
