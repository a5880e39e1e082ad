/* F16/BF16 checkpoints (model_internal.h er_lin.narrow): every golden model
 * of every family written once in a narrow dtype and once as the F32
 * widening of the same values gives the same outputs bit for bit in every
 * compute mode this host runs (the packed weights are the same floats: the
 * math is identical), the same lower-stack fingerprint (and another one
 * than the unrounded F32 golden), and, wherever the backend packs, no
 * resident fp32 copy of the layer or head weights (fused rows included),
 * DeBERTa's position projections, the word-embedding table, nor the SPLADE
 * head's tied decoder (packed in blocks); a LoRA (merged or not) or
 * bottleneck adapter over a narrow base equals the same adapter over its
 * widening, with the base kept narrow under it, and tasks over one narrow
 * base share its packed weights. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../check_main.h"
#include "../tmpdir.h"
#include "arch.h"
#include "deberta_internal.h"
#include "gemm.h"
#include "heads.h"
#include "model_internal.h"
#include "narrow_copy.h"

/* 4 sequences of 5..20 ids from a fixed seed, within the model's limits. */
typedef struct {
    int lens[4];
    int32_t ids[4 * 20];
    er_batch b;
} rbatch;

static void random_batch(const er_model *m, unsigned seed, rbatch *r) {
    const int cap = er_model_max_seq_len(m), vocab = er_model_config(m)->vocab_size;
    int t = 0;
    for (int s = 0; s < 4; s++) {
        seed = seed * 1103515245u + 12345u;
        r->lens[s] = 5 + (int)((seed >> 16) % 16);
        if (r->lens[s] > cap) r->lens[s] = cap;
        for (int i = 0; i < r->lens[s]; i++) {
            seed = seed * 1103515245u + 12345u;
            r->ids[t++] = 5 + (int32_t)((seed >> 8) % (unsigned)(vocab - 5));
        }
    }
    r->b = (er_batch){.n_seqs = 4, .seq_len = r->lens, .ids = r->ids, .type_ids = NULL};
}

/* FNV-1a over every visited tensor's name and float bytes. */
static int hash_visit(void *user, const char *name, const float *data, size_t n) {
    uint64_t *h = user;
    const unsigned char *p = (const unsigned char *)name;
    for (; *p; p++) *h = (*h ^ *p) * 1099511628211ull;
    p = (const unsigned char *)data;
    for (size_t i = 0; i < n * sizeof *data; i++) *h = (*h ^ p[i]) * 1099511628211ull;
    return 0;
}

static uint64_t lower_hash(const er_model *m) {
    uint64_t h = 1469598103934665603ull;
    er_err e;
    ck_assert_msg(er_model_visit_lower(m, er_model_config(m)->num_layers, hash_visit, &h, &e) ==
                  ER_OK, "%s", e.msg);
    return h;
}

/* Head output of m on r (malloc'd, *n floats). */
static float *run(const er_model *m, const rbatch *r, size_t *n) {
    er_ctx *x;
    er_err e;
    ck_assert_int_eq(er_ctx_init(m, NULL, &x, &e), ER_OK);
    *n = er_head_out_size(m, &r->b);
    float *h = malloc((size_t)er_batch_tokens(&r->b) * er_model_config(m)->hidden_size * sizeof *h);
    float *out = malloc(*n * sizeof *out);
    ck_assert_msg(er_forward(m, x, &r->b, h, out, &e) == ER_OK, "%s", e.msg);
    free(h);
    er_ctx_free(x);
    return out;
}

/* Whether p is one of the model's own converted or merged copies. */
static bool owned_copy(const er_model *m, const float *p) {
    for (int i = 0; p && i < m->n_owned; i++)
        if (m->owned[i] == p) return true;
    return false;
}

/* The masked-LM (SPLADE) head: transform and decoder narrow, the decoder
 * the word-embedding table itself when tied, packed in blocks. */
static void check_mlm_narrow(const er_model *m, const char *name) {
    const er_lin *dec = &m->heads.mlm_decoder, *tr = &m->heads.mlm_transform;
    if (m->cfg.head != ER_HEAD_SPARSE_EMBEDDING) return;
    ck_assert_msg(!dec->w && dec->narrow && !tr->w && tr->narrow && tr->packed,
                  "%s: a widened masked-LM head", name);
    ck_assert_msg(!m->cfg.tie_word_embeddings || dec->narrow == m->word_emb_narrow ||
                  strstr(dec->narrow->name, "decoder") || strstr(dec->narrow->name, "projector"),
                  "%s: the tied decoder is not the word-embedding table", name);
    ck_assert_int_eq(m->heads.n_mlm_blocks, (dec->out + ER_MLM_COLS - 1) / ER_MLM_COLS);
    for (int i = 0; i < m->heads.n_mlm_blocks; i++)
        ck_assert_msg(m->heads.mlm_blocks[i].packed && !m->heads.mlm_blocks[i].w,
                      "%s: decoder block %d not packed from the narrow rows", name, i);
}

/* No widened fp32 copy of a layer weight (the fused rows' views included:
 * the gate, ModernBERT's and the gated families' q/k/v), of DeBERTa's
 * position projections, of the word-embedding table, nor of the heads (an
 * adapter's own F32 head lies in its file's mmap) stays with the model. */
static void check_layers_narrow(const er_model *m, const char *name) {
    for (int i = 0; i < m->cfg.num_layers; i++) {
        const er_layer_w *L = &m->layers[i];
        const er_lin *lins[] = {&L->q, &L->k, &L->v, &L->o, &L->ffn_in, &L->ffn_out, &L->gate};
        for (int j = 0; j < 7; j++) {
            if (j == 6 && !L->gate.w && !L->gate.narrow) continue; /* no gate in this family */
            const bool fused = j < 3 && L->qkv.packed;
            ck_assert_msg(!lins[j]->w && lins[j]->narrow && (lins[j]->packed || fused),
                          "%s layer %d weight %d kept a widened copy", name, i, j);
        }
        if (m->deberta && m->deberta->layers) {
            const er_deberta_layer *D = &m->deberta->layers[i];
            ck_assert_msg(!D->pos_k.w && !D->pos_q.w, "%s layer %d: a widened position projection",
                          name, i);
        }
    }
    ck_assert_msg(!m->word_emb && m->word_emb_narrow, "%s: widened word embeddings", name);
    const er_lin *head[] = {&m->head_dense, &m->head_out}; /* the embedding head has none */
    for (int j = 0; j < 2; j++)
        ck_assert_msg(!owned_copy(m, head[j]->w) && (!head[j]->narrow || head[j]->packed),
                      "%s: head Linear %d kept a widened copy", name, j);
    check_mlm_narrow(m, name);
}

/* Where the model packs, no layer weight of the F32 model is a copy of its
 * own: a merged LoRA pair is added where the weight is widened to be
 * packed, not into a model-owned fp32 matrix.  Returns the merged pairs. */
static int check_no_layer_copies(const er_model *m, const char *name) {
    int merged = 0;
    for (int i = 0; i < m->cfg.num_layers; i++) {
        const er_layer_w *L = &m->layers[i];
        const er_lin *lins[] = {&L->q, &L->k, &L->v, &L->o, &L->ffn_in, &L->ffn_out, &L->gate};
        for (int j = 0; j < 7; j++) {
            ck_assert_msg(!owned_copy(m, lins[j]->w), "%s layer %d weight %d: an fp32 copy",
                          name, i, j);
            merged += lins[j]->merge_a != NULL;
        }
    }
    return merged;
}

/* Loads the narrow and the widened directory in `mode` (with p's base_dir:
 * an adapter over each); outputs and lower hash equal bit for bit.  Returns
 * whether the narrow one kept its layers narrow, its family in *arch, and
 * in *merged (when not NULL) the merged LoRA pairs the narrow one carries
 * beside its weights (the same count as the widened one). */
static bool compare_with(const char *narrow, const char *wide, const char *name, er_compute mode,
                         const er_model_params *pa, const er_model_params *pb, er_arch *arch,
                         int *merged) {
    er_model *a, *b;
    er_err e;
    ck_assert_msg(er_model_load(narrow, pa, &a, &e) == ER_OK, "%s", e.msg);
    ck_assert_msg(er_model_load(wide, pb, &b, &e) == ER_OK, "%s", e.msg);
    *arch = er_model_config(a)->arch;
    rbatch r;
    unsigned seed = 7u;
    for (const char *c = name; *c; c++) seed = seed * 31u + (unsigned char)*c;
    random_batch(a, seed, &r);
    size_t na, nb;
    float *ya = run(a, &r, &na), *yb = run(b, &r, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(ya, yb, na * sizeof *ya) == 0, "%s (%s): outputs differ", name,
                  er_compute_name(mode));
    ck_assert_msg(lower_hash(a) == lower_hash(b), "%s: lower-stack tensors differ", name);
    const bool kept = er_model_keeps_narrow(a);
    if (kept) check_layers_narrow(a, name);
    if (er_model_packs(b)) {
        const int n = check_no_layer_copies(b, name);
        ck_assert_int_eq(check_no_layer_copies(a, name), n);
        if (merged) *merged = n;
    }
    free(ya);
    free(yb);
    er_model_free(a);
    er_model_free(b);
    return kept;
}

static bool compare_dirs(const char *narrow, const char *wide, const char *name, er_compute mode,
                         er_arch *arch) {
    er_model_params p = er_model_default_params();
    p.compute = mode;
    return compare_with(narrow, wide, name, mode, &p, &p, arch, NULL);
}

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Every model directory with one model.safetensors and no adapter, written
 * as dt and as its widening, compared in every mode this host runs. */
static void every_golden(er_dtype dt) {
    const er_compute modes[] = {ER_COMPUTE_FP32, ER_COMPUTE_BF16, ER_COMPUTE_INT8};
    const er_gemm_kind kinds[] = {ER_GEMM_F32, ER_GEMM_BF16, ER_GEMM_INT8};
    DIR *d = opendir("tests/fixtures/models");
    ck_assert_ptr_nonnull(d);
    int models = 0, kept = 0, kept_by_arch[ER_ARCH_COUNT] = {0}, sparse = 0;
    for (const struct dirent *de; (de = readdir(d));) {
        char src[512], ad[512], tmp[64], nd[128], wd[128];
        snprintf(src, sizeof src, "tests/fixtures/models/%s/model.safetensors", de->d_name);
        snprintf(ad, sizeof ad, "tests/fixtures/models/%s/adapter_config.json", de->d_name);
        if (de->d_name[0] == '.' || !is_file(src) || is_file(ad)) continue;
        er_test_mkdtemp(tmp, sizeof tmp, "narrow");
        write_pair(de->d_name, dt, tmp, nd, wd, sizeof nd);
        for (int i = 0; i < 3; i++) {
            if (!er_gemm_supports(kinds[i], NULL) && modes[i] != ER_COMPUTE_FP32) continue;
            er_arch arch;
            const bool k = compare_dirs(nd, wd, de->d_name, modes[i], &arch);
            kept += k;
            kept_by_arch[arch] += k;
            sparse += k && (strstr(de->d_name, "splade") || strstr(de->d_name, "mlm"));
        }
        models++;
        er_test_rmtree(tmp);
    }
    closedir(d);
    fprintf(stderr, "  %s: %d models identical to their widening; %d loads kept the layer "
            "weights narrow\n", er_dtype_name(dt), models, kept);
    ck_assert_int_gt(models, 30);
    if (!er_gemm_supports(ER_GEMM_F32, NULL)) return; /* OpenBLAS: nothing packed, all widened */
    ck_assert_int_gt(kept, 20);
    ck_assert_msg(sparse >= 3, "only %d SPLADE loads kept their decoder narrow", sparse);
    const er_arch every[] = {ER_ARCH_BERT, ER_ARCH_DEBERTA, ER_ARCH_MODERNBERT, ER_ARCH_NOMIC_BERT,
                             ER_ARCH_GTE, ER_ARCH_MPNET};
    for (size_t i = 0; i < sizeof every / sizeof *every; i++)
        ck_assert_msg(kept_by_arch[every[i]] > 0, "no %s golden kept its layers narrow",
                      er_arch_get(every[i])->name);
}

START_TEST(f16_equals_its_widening) { every_golden(ER_DTYPE_FP16); }
END_TEST

START_TEST(bf16_equals_its_widening) { every_golden(ER_DTYPE_BF16); }
END_TEST

/* Every family keeps its F16 layer weights narrow exactly when its backend
 * packs them, and its word embeddings narrow always (they are read a row at
 * a time on any backend). */
START_TEST(narrow_only_where_packed) {
    static const char *const models[] = {"bert-seqcls", "deberta-v3-seqcls", "deberta-v2-seqcls",
                                         "modernbert-seqcls", "nomic-embed", "gte-seqcls"};
    const bool packs = er_gemm_supports(ER_GEMM_F32, NULL);
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        char tmp[64], nd[128], wd[128];
        er_test_mkdtemp(tmp, sizeof tmp, "narrow");
        write_pair(models[i], ER_DTYPE_FP16, tmp, nd, wd, sizeof nd);
        er_model *m;
        er_err e;
        er_model_params p = er_model_default_params();
        ck_assert_msg(er_model_load(nd, &p, &m, &e) == ER_OK, "%s", e.msg);
        ck_assert_int_eq(er_model_keeps_narrow(m), packs);
        ck_assert_msg(packs ? m->layers[0].ffn_in.w == NULL : m->layers[0].ffn_in.w != NULL,
                      "%s", models[i]);
        ck_assert_msg(m->word_emb == NULL && m->word_emb_narrow != NULL, "%s", models[i]);
        /* the fingerprint follows the numbers: the F32 golden the F16 copy
         * was rounded from is another model (its widening is the same one) */
        er_model *orig;
        char od[256];
        snprintf(od, sizeof od, "tests/fixtures/models/%s", models[i]);
        ck_assert_msg(er_model_load(od, &p, &orig, &e) == ER_OK, "%s", e.msg);
        ck_assert_msg(lower_hash(m) != lower_hash(orig), "%s: rounding kept the fingerprint",
                      models[i]);
        er_model_free(orig);
        er_model_free(m);
        er_test_rmtree(tmp);
    }
}
END_TEST

/* A LoRA adapter over a BF16 base (DeBERTa with share_att_key: the merge
 * changes query_proj / key_proj and so the relative tables; ModernBERT: the
 * fused Wqkv / Wi rows; GTE: the fused Wqkv and up_gate_proj) computes what
 * it computes over the base's F32 widening, merged and unmerged, in every
 * mode this host runs; where the backend packs, the base stays narrow under
 * it (no fp32 copy of a base layer weight), and a merged pair is added only
 * where the weight is widened to be packed (no fp32 copy over the F32 base
 * either). */
START_TEST(lora_over_a_narrow_base) {
    static const char *const pairs[][2] = {{"lora-deberta-v3-seqcls", "deberta-v3-seqcls"},
                                           {"lora-modernbert-seqcls", "modernbert-seqcls"},
                                           {"lora-gte-seqcls", "gte-seqcls"},
                                           {"lora-bert-seqcls", "bert-seqcls"}};
    const er_compute modes[] = {ER_COMPUTE_FP32, ER_COMPUTE_BF16, ER_COMPUTE_INT8};
    const er_gemm_kind kinds[] = {ER_GEMM_F32, ER_GEMM_BF16, ER_GEMM_INT8};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char tmp[64], nd[128], wd[128], ad[256];
        er_test_mkdtemp(tmp, sizeof tmp, "narrow");
        write_pair(pairs[i][1], ER_DTYPE_BF16, tmp, nd, wd, sizeof nd);
        snprintf(ad, sizeof ad, "tests/fixtures/models/%s", pairs[i][0]);
        for (int mode = 0; mode < 3; mode++) {
            const bool packs = er_gemm_supports(kinds[mode], NULL);
            if (!packs && modes[mode] != ER_COMPUTE_FP32) continue;
            for (int merge = 0; merge < 2; merge++) {
                er_model_params pa = er_model_default_params(), pb = pa;
                pa.compute = pb.compute = modes[mode];
                pa.lora_merge = pb.lora_merge = merge;
                pa.base_dir = nd;
                pb.base_dir = wd;
                er_arch arch;
                int merged = 0;
                ck_assert_int_eq(compare_with(ad, ad, pairs[i][0], modes[mode], &pa, &pb, &arch,
                                              &merged), packs);
                if (packs) /* every adapted layer Linear carries its pair */
                    ck_assert_msg(merge ? merged > 0 : merged == 0, "%s: %d merged pairs",
                                  pairs[i][0], merged);
            }
        }
        er_test_rmtree(tmp);
    }
}
END_TEST

/* Tasks over one BF16 base share its packed weights: an unmerged LoRA task
 * and the base hold the same packed copy of every layer weight, a merged
 * one its own packing of each matrix a pair merges into and the base's of
 * the others; two tasks over one checkpoint share the fused q/k/v (whose
 * bias each model widened into its own copy) and the SPLADE decoder. */
START_TEST(adapter_tasks_share_a_narrow_base) {
    if (!er_gemm_supports(ER_GEMM_F32, NULL)) {
        ER_SKIP("nothing is packed on the OpenBLAS backend");
    }
    char tmp[64], nd[128], wd[128];
    er_test_mkdtemp(tmp, sizeof tmp, "narrow");
    write_pair("bert-seqcls", ER_DTYPE_BF16, tmp, nd, wd, sizeof nd);
    er_model *base, *ad[2];
    er_err e;
    er_model_params p = er_model_default_params();
    ck_assert_msg(er_model_load(nd, &p, &base, &e) == ER_OK, "%s", e.msg);
    for (int merge = 0; merge < 2; merge++) {
        p.base_dir = nd;
        p.lora_merge = merge;
        ck_assert_msg(er_model_load("tests/fixtures/models/lora-bert-seqcls", &p, &ad[merge],
                                    &e) == ER_OK, "%s", e.msg);
    }
    int own = 0;
    for (int i = 0; i < base->cfg.num_layers; i++) {
        const er_layer_w *B = &base->layers[i], *U = &ad[0]->layers[i], *M = &ad[1]->layers[i];
        const er_lin *bl[] = {&B->qkv, &B->q, &B->k, &B->v, &B->o, &B->ffn_in, &B->ffn_out};
        const er_lin *ul[] = {&U->qkv, &U->q, &U->k, &U->v, &U->o, &U->ffn_in, &U->ffn_out};
        const er_lin *ml[] = {&M->qkv, &M->q, &M->k, &M->v, &M->o, &M->ffn_in, &M->ffn_out};
        const bool qkv_merged = M->q.merge_a || M->k.merge_a || M->v.merge_a;
        for (int j = 0; j < 7; j++) {
            ck_assert_ptr_eq(ul[j]->packed, bl[j]->packed);
            const bool merged = j == 0 ? qkv_merged && B->qkv.packed : ml[j]->merge_a != NULL;
            ck_assert_msg((ml[j]->packed != bl[j]->packed) == merged, "layer %d Linear %d: %s", i,
                          j, merged ? "merged over the base's packing" : "not the base's packing");
            own += merged;
        }
    }
    ck_assert_int_gt(own, 0);
    er_model_free(ad[0]);
    er_model_free(ad[1]);
    er_model_free(base);
    er_test_rmtree(tmp);
    /* two tasks over one BF16 SPLADE checkpoint (hidden 32: q/k/v fused):
     * one fused packing per layer, one packed decoder */
    er_test_mkdtemp(tmp, sizeof tmp, "narrow");
    write_pair("bert-splade", ER_DTYPE_BF16, tmp, nd, wd, sizeof nd);
    er_model *two[2];
    p = er_model_default_params();
    for (int k = 0; k < 2; k++)
        ck_assert_msg(er_model_load(nd, &p, &two[k], &e) == ER_OK, "%s", e.msg);
    for (int i = 0; i < two[0]->cfg.num_layers; i++) {
        ck_assert_ptr_nonnull(two[0]->layers[i].qkv.packed);
        ck_assert_ptr_eq(two[0]->layers[i].qkv.packed, two[1]->layers[i].qkv.packed);
    }
    ck_assert_int_gt(two[0]->heads.n_mlm_blocks, 1);
    for (int i = 0; i < two[0]->heads.n_mlm_blocks; i++)
        ck_assert_ptr_eq(two[0]->heads.mlm_blocks[i].packed, two[1]->heads.mlm_blocks[i].packed);
    er_model_free(two[0]);
    er_model_free(two[1]);
    er_test_rmtree(tmp);
}
END_TEST

/* A bottleneck adapter (Pfeiffer over BERT with its own head, Houlsby over
 * RoBERTa, DistilBERT with adapter_norm_after, an embedding model) over a
 * BF16 base equals the same over its F32 widening in every mode this host
 * runs, its base narrow under it where the backend packs: the adapter's
 * blocks run beside the base's packed GEMMs and never read its weights. */
START_TEST(bottleneck_over_a_narrow_base) {
    static const char *const pairs[][2] = {{"bn-bert-pfeiffer", "bert-seqcls"},
                                           {"bn-roberta-houlsby", "roberta-seqcls"},
                                           {"bn-distilbert-lnafter", "distilbert-seqcls"},
                                           {"bn-minilm-embed", "minilm-embed"}};
    const er_compute modes[] = {ER_COMPUTE_FP32, ER_COMPUTE_BF16, ER_COMPUTE_INT8};
    const er_gemm_kind kinds[] = {ER_GEMM_F32, ER_GEMM_BF16, ER_GEMM_INT8};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char tmp[64], nd[128], wd[128], ad[256];
        er_test_mkdtemp(tmp, sizeof tmp, "narrow");
        write_pair(pairs[i][1], ER_DTYPE_BF16, tmp, nd, wd, sizeof nd);
        snprintf(ad, sizeof ad, "tests/fixtures/models/%s", pairs[i][0]);
        for (int mode = 0; mode < 3; mode++) {
            const bool packs = er_gemm_supports(kinds[mode], NULL);
            if (!packs && modes[mode] != ER_COMPUTE_FP32) continue;
            er_model_params pa = er_model_default_params(), pb = pa;
            pa.compute = pb.compute = modes[mode];
            pa.base_dir = nd;
            pb.base_dir = wd;
            er_arch arch;
            ck_assert_int_eq(compare_with(ad, ad, pairs[i][0], modes[mode], &pa, &pb, &arch,
                                          NULL), packs);
        }
        er_test_rmtree(tmp);
    }
}
END_TEST

static Suite *narrow_suite(void) {
    Suite *s = suite_create("narrow");
    TCase *tc = tcase_create("narrow");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, f16_equals_its_widening);
    tcase_add_test(tc, bf16_equals_its_widening);
    tcase_add_test(tc, narrow_only_where_packed);
    tcase_add_test(tc, lora_over_a_narrow_base);
    tcase_add_test(tc, adapter_tasks_share_a_narrow_base);
    tcase_add_test(tc, bottleneck_over_a_narrow_base);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(narrow_suite)
