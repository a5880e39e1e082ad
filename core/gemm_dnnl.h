/* The oneDNN backend of the GEMM seam (gemm.h, ER_GEMM_ONEDNN): fp32 weight
 * GEMMs as oneDNN 2.6 matmul primitives (Debian libdnnl-dev, C API dnnl.h).
 * Not a public header: gemm.c dispatches to it when `--gemm onednn` (or
 * ERSERVE_GEMM=onednn) chose it.
 *
 * Per weight shape [out, in] (a process-wide registry, kept for the
 * process's life): one matmul primitive per row class (32, 8 and 2 rows, a
 * fixed M each, so oneDNN picks its brgemm kernels, which a runtime M does
 * not get) and epilogue (none; GELU erf as an eltwise post-op), all created
 * when the first weight of that shape is packed, i.e. at model load; bias as
 * the primitive's bias operand (a [out] zero vector when the caller has
 * none).  A packed weight is the weights reordered once, at load, into the
 * layout the 32-row primitive prefers (the other classes are created on that
 * same layout).
 *
 * A call splits its rows into blocks (32-row blocks, then 8, then 2; a last
 * single row is run as a 2-row block through a padded copy) and spreads the
 * blocks over the caller's er_par team; oneDNN's own OpenMP team is pinned
 * to one thread on every calling thread, so the worker's threads are the
 * only ones.  Each calling thread keeps its own stream, dnnl memory objects
 * (per primitive: data handles set per call) and user scratchpad, made on
 * its first call of each primitive and reused after.  oneDNN's
 * dnnl_primitive_execute itself allocates on every call (measured: 7 per
 * execute, core/GEMM.md), so this backend is opt-in and never `auto`.
 *
 * Without oneDNN at build time (no ER_HAVE_DNNL) every entry point reports
 * that the build has none. */
#ifndef ER_GEMM_DNNL_H
#define ER_GEMM_DNNL_H

#include <stdbool.h>
#include <stddef.h>

#include "er_error.h"
#include "gemm.h"

/* Creates the engine and a probe primitive, once per process: ER_OK, or
 * ER_ERR_UNSUPPORTED naming why oneDNN cannot run here (no oneDNN in this
 * build, an engine or primitive oneDNN refused, with its status). */
er_status er_dnnl_init(er_err *err);

/* One line for er_gemm_describe: version, threading runtime, ISA and the
 * implementation oneDNN chose ("oneDNN 2.6.3 (OpenMP) matmul brg:avx512_core,
 * ISA avx512_core_bf16").  Valid after er_dnnl_init succeeded. */
const char *er_dnnl_describe(void);

/* Whether oneDNN runs its brgemm kernels here (impl "brg:..."), whose rows
 * are the same bits whatever block and place they are computed in (measured
 * on AVX-512, checked by test_gemm); its gemm:jit path (AVX2) is not.
 * Valid after er_dnnl_init succeeded. */
bool er_dnnl_rows_independent(void);

/* Creates (once) the primitives of weight shape [out, in]: ER_OK,
 * ER_ERR_INVALID_ARG for a dimension below 1, or ER_ERR_UNSUPPORTED naming
 * the shape and oneDNN's status.  Thread-safe. */
er_status er_dnnl_prepare(int out, int in, er_err *err);

/* Bytes of a packed [out, in] weight (its primitives' weight layout plus
 * alignment); prepares the shape first (aborts with a message if oneDNN
 * refuses it: callers that can fail call er_dnnl_prepare before). */
size_t er_dnnl_packed_bytes(int out, int in);

/* packed (er_dnnl_packed_bytes) = W [out, in] (nn.Linear layout) reordered
 * into the primitives' weight layout. */
void er_dnnl_pack(const float *W, int out, int in, void *packed);

/* y = act(x[n, in] . W^T + b) for W packed by er_dnnl_pack; b may be NULL;
 * y as er_gemm_packed documents; row blocks spread over team (NULL: the
 * calling thread). */
void er_dnnl_gemm(er_par *team, const float *x, int n, int in, const void *packed, int out,
                  const float *b, er_epi act, const er_gemm_out *y);

#endif
