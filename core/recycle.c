/* Task sets: loading, lower-stack fingerprints and sharing.  The forward
 * pass with the store is in recycle_run.c. */
#include <cblas.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "er_log.h"
#include "er_util.h"
#include "gemm.h"
#include "gemm_dnnl.h"
#include "recycle_internal.h"

er_taskset_params er_taskset_default_params(void) {
    er_taskset_params p = {.cut = -1, .store_path = NULL, .store = er_store_default_params()};
    return p;
}

/* ---- fingerprints ---- */

typedef struct {
    crypto_generichash_state all;
    er_fp_tensor *t; /* per-tensor hashes: to say which tensor differs */
    int n, cap;
    int failed;
} fp_ctx;

static int fp_visit(void *user, const char *name, const float *data, size_t n) {
    fp_ctx *f = user;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 64;
        er_fp_tensor *t = realloc(f->t, (size_t)cap * sizeof *t);
        if (!t) return f->failed = 1;
        f->t = t;
        f->cap = cap;
    }
    er_fp_tensor *e = &f->t[f->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    uint64_t n64 = n;
    crypto_generichash_state one;
    crypto_generichash_init(&one, NULL, 0, sizeof e->hash);
    crypto_generichash_update(&one, (const uint8_t *)&n64, 8);
    /* float bytes as stored in memory: fingerprints are per host byte order */
    crypto_generichash_update(&one, (const uint8_t *)data, (unsigned long long)(n * sizeof *data));
    crypto_generichash_final(&one, e->hash, sizeof e->hash);
    crypto_generichash_update(&f->all, (const uint8_t *)name, strlen(name) + 1);
    crypto_generichash_update(&f->all, e->hash, sizeof e->hash);
    return 0;
}

/* The config fields that change what embeddings and layers [0, cut) compute. */
static void config_bytes(const er_config *c, int cut, char *buf, size_t n) {
    snprintf(buf, n, "erserve-lower-v1 arch=%s vocab=%d hidden=%d emb=%d heads=%d inter=%d pos=%d "
             "types=%d pad=%d eps=%.9g act=%d cut=%d",
             er_arch_name(c->arch), c->vocab_size, c->hidden_size, c->embedding_size, c->num_heads,
             c->intermediate_size, c->max_positions, c->type_vocab_size, c->pad_token_id,
             (double)c->layer_norm_eps, (int)c->act, cut);
    const er_arch_desc *a = er_arch_get(c->arch);
    size_t used = strlen(buf);
    if (a->lower_config && used + 1 < n) a->lower_config(c, buf + used, n - used);
}

/* Whether the family's lower layers make OpenBLAS calls of their own
 * whatever the GEMM backend: DeBERTa's relative-position projections
 * (c2p / p2c scores) and its convolution run on cblas_sgemm
 * (deberta_attention.c), so their bits follow OpenBLAS's kernel choice. */
static bool lower_calls_openblas(const er_config *c) { return c->arch == ER_ARCH_DEBERTA; }

void er_numerics_class(er_gemm_backend b, const er_config *c, char *buf, size_t n) {
    const bool family_blas = lower_calls_openblas(c);
    const char *name = NULL; /* NULL: the own kernels alone, which add nothing */
    bool blas = family_blas; /* does some of the lower stack run on OpenBLAS? */
    /* No default: a new backend does not compile until it names its class. */
    switch (b) {
    case ER_GEMM_AVX512: /* one FMA chain per element in k order, the same */
    case ER_GEMM_AVX2:   /* reduction blocks: bit for bit equal (test_gemm) */
        if (family_blas) name = "own";
        break;
    case ER_GEMM_ONEDNN: /* its JIT kernels sum in their own order, by version and ISA */
        name = "onednn";
        blas = family_blas || er_gemm_attention_kernels() == ER_ATT_ON_OPENBLAS;
        break;
    case ER_GEMM_OPENBLAS:
        name = "openblas";
        blas = true;
        break;
    }
    buf[0] = '\0';
    if (!name) return; /* fingerprints of the own kernels are those of before */
    int used = snprintf(buf, n, " numerics=%s", name);
    if (b == ER_GEMM_ONEDNN && used >= 0 && (size_t)used < n)
        used += snprintf(buf + used, n - (size_t)used, " dnnl=%s", er_dnnl_describe());
    if (!blas || used < 0 || (size_t)used >= n) return;
    /* OpenBLAS's sums depend on the kernel set it picked (CPU model or
     * OPENBLAS_CORETYPE) and on its version: "OpenBLAS 0.3.21 ..." is the
     * start of its run-time configuration line */
    const char *cfg = openblas_get_config(), *ver = strchr(cfg, ' ');
    const int vlen = ver ? (int)strcspn(ver + 1, " ") : 0;
    snprintf(buf + used, n - (size_t)used, " openblas=%s/%.*s", openblas_get_corename(), vlen,
             ver ? ver + 1 : "");
}

/* config_bytes plus the compute mode (bf16 activations differ from fp32
 * ones; fp32 adds nothing) and the numerics class of backend b
 * (er_numerics_class), so fp32 fingerprints on the own kernels are those of
 * before. */
static void lower_bytes(const er_model *m, int cut, er_gemm_backend b, char *buf, size_t n) {
    config_bytes(er_model_config(m), cut, buf, n);
    size_t used = strlen(buf);
    if (er_model_compute(m) != ER_COMPUTE_FP32 && used + 1 < n)
        snprintf(buf + used, n - used, " compute=%s", er_compute_name(er_model_compute(m)));
    used = strlen(buf);
    if (used + 1 < n) er_numerics_class(b, er_model_config(m), buf + used, n - used);
}

static er_status fingerprint_on(const er_model *m, int cut, er_gemm_backend b, uint8_t fp[32],
                                er_fp_tensor **tensors, int *n_tensors, er_err *err) {
    fp_ctx f = {0};
    char cfg[1024];
    lower_bytes(m, cut, b, cfg, sizeof cfg);
    crypto_generichash_init(&f.all, NULL, 0, 32);
    crypto_generichash_update(&f.all, (const uint8_t *)cfg, strlen(cfg));
    er_status st = er_model_visit_lower(m, cut, fp_visit, &f, err);
    if (st == ER_OK && f.failed) st = er_set(err, ER_ERR_NOMEM, "out of memory");
    if (st != ER_OK) {
        free(f.t);
        return st;
    }
    crypto_generichash_final(&f.all, fp, 32);
    if (tensors) {
        *tensors = f.t;
        *n_tensors = f.n;
    } else {
        free(f.t);
    }
    return ER_OK;
}

er_status er_fingerprint(const er_model *m, int cut, uint8_t fp[32], er_fp_tensor **tensors,
                         int *n_tensors, er_err *err) {
    return fingerprint_on(m, cut, er_gemm_backend_get(), fp, tensors, n_tensors, err);
}

er_status er_fingerprint_on(const er_model *m, int cut, er_gemm_backend b, uint8_t fp[32],
                            er_err *err) {
    return fingerprint_on(m, cut, b, fp, NULL, NULL, err);
}

/* Why task t cannot share stack s: the first config field or tensor that differs. */
static void explain(const er_taskset *ts, const er_task *t, const er_fp_tensor *tt, int nt,
                    const er_stack *s) {
    char a[1024], b[1024];
    config_bytes(er_model_config(t->model), ts->cut, a, sizeof a);
    config_bytes(er_model_config(s->model), ts->cut, b, sizeof b);
    const char *why = "its lower layers differ";
    char buf[160];
    if (er_model_compute(t->model) != er_model_compute(s->model)) {
        snprintf(buf, sizeof buf, "it computes in %s, the stack in %s",
                 er_compute_name(er_model_compute(t->model)),
                 er_compute_name(er_model_compute(s->model)));
        why = buf;
    } else if (strcmp(a, b)) {
        why = "its config differs in a field the lower layers depend on";
    } else {
        for (int i = 0; i < nt && i < s->n_tensors; i++)
            if (strcmp(tt[i].name, s->tensors[i].name) ||
                memcmp(tt[i].hash, s->tensors[i].hash, sizeof tt[i].hash)) {
                snprintf(buf, sizeof buf, "tensor %s differs", tt[i].name);
                why = buf;
                break;
            }
    }
    er_log(ER_LOG_WARN, "task %s cannot share the lower stack of task %s (%s): it gets its own "
           "stack and cache namespace", t->name, ts->tasks[s->owner].name, why);
}

/* ---- loading ---- */

/* An adapter below the set's cut: lowers the task's store cut *sc to its
 * lowest adapted layer, so that what is stored never depends on it — unless
 * the cut was fixed explicitly. */
static er_status adapter_cut(const er_taskset *ts, const er_task *t, const er_taskset_params *p,
                             int *sc, er_err *err) {
    int low = er_model_lowest_adapted(t->model);
    if (low >= ts->cut) return ER_OK;
    if (p->cut >= 0)
        return er_set(err, ER_ERR_INVALID_ARG, "task %s: its %s adapter changes layer %d, below "
                      "the cut %d that was fixed explicitly; cut at or below %d, or retrain the "
                      "adapter above the cut", t->name, er_model_adapter_kind(t->model), low,
                      ts->cut, low);
    er_log(ER_LOG_WARN, "task %s: its %s adapter changes layer %d, below the store cut %d: "
           "the task's cut is set to %d (its own lower stack and cache namespace)", t->name,
           er_model_adapter_kind(t->model), low, ts->cut, low);
    *sc = low;
    return ER_OK;
}

er_status er_taskset_load_task(er_taskset *ts, int i, const er_task_spec *sp,
                               const er_taskset_params *p, er_err *err) {
    er_task *t = &ts->tasks[i];
    snprintf(t->name, sizeof t->name, "%s", sp->name);
    er_model_params mp = er_model_default_params();
    mp.model_root = p->model_root;
    mp.lora_merge = p->lora_merge;
    mp.compute = sp->compute;
    mp.raw_embeddings = p->raw_embeddings;
    mp.token_embeddings = p->token_embeddings && p->token_embeddings[i];
    er_status st = er_model_load(sp->dir, &mp, &t->model, err);
    if (st != ER_OK) return st;
    int L = er_model_config(t->model)->num_layers;
    if (i == 0) ts->cut = p->cut < 0 ? L / 2 : p->cut;
    int sc = ts->cut; /* this task's store cut */
    if ((st = adapter_cut(ts, t, p, &sc, err)) != ER_OK) return st;
    t->cut = sp->cut > 0 ? sp->cut : sc;
    if (ts->cut > L || t->cut < sc || t->cut > L)
        return er_set(err, ER_ERR_INVALID_ARG, "task %s: cut %d (store cut %d) is outside [%d, %d]",
                      t->name, t->cut, sc, sc, L);
    er_fp_tensor *tt = NULL;
    int nt = 0;
    if ((st = er_fingerprint(t->model, sc, t->fp, &tt, &nt, err)) != ER_OK) return st;
    er_model_trim(t->model); /* the fingerprint re-read the stored weights */
    int j = 0;
    while (j < ts->n_stacks && (ts->stacks[j].dead || memcmp(ts->stacks[j].fp, t->fp, 32))) j++;
    if (j == ts->n_stacks) { /* a new stack: this task's own model runs its lower layers */
        for (int k = 0; k < ts->n_stacks; k++)
            if (!ts->stacks[k].dead) explain(ts, t, tt, nt, &ts->stacks[k]);
        er_stack *s = &ts->stacks[j];
        memcpy(s->fp, t->fp, 32);
        s->model = t->model;
        s->owner = i;
        s->tensors = tt;
        s->n_tensors = nt;
        s->cut = sc;
        t->stack = j;
        t->run_from = sc;
        ts->n_stacks = j + 1; /* published complete */
        return ER_OK;
    }
    free(tt);
    /* Shares stack j: reload without the lower weights.  Layers between the
     * store's cut and the task's own come from the stack too, if equal. */
    er_stack *s = &ts->stacks[j];
    int skip = sc;
    if (t->cut > sc) {
        uint8_t a[32], b[32];
        if (er_model_config(s->model)->num_layers >= t->cut &&
            er_fingerprint(t->model, t->cut, a, NULL, NULL, NULL) == ER_OK &&
            er_fingerprint(s->model, t->cut, b, NULL, NULL, NULL) == ER_OK && !memcmp(a, b, 32))
            skip = t->cut;
        else
            er_log(ER_LOG_WARN, "task %s declares cut %d but its layers [%d, %d) differ from "
                   "task %s's: it runs its own layers from %d", t->name, t->cut, sc, t->cut,
                   ts->tasks[s->owner].name, sc);
    }
    er_model_free(t->model);
    t->model = NULL;
    mp.skip_below_layer = skip;
    if ((st = er_model_load(sp->dir, &mp, &t->model, err)) != ER_OK) return st;
    t->stack = j;
    t->run_from = skip;
    return ER_OK;
}

/* A value must fit half the store's write queue or it is never cached
 * (store.c, reserve): grow the queue so that the longest input any task
 * accepts fits (at 8192 tokens and hidden 1024, an fp32 value is 32 MiB, as
 * much as the default half).  The buffers' pages are only touched as used. */
static void fit_queue(const er_taskset *ts, er_store_params *sp) {
    size_t need = sp->queue_bytes;
    for (int i = 0; i < ts->n; i++) {
        int H = er_model_config(ts->tasks[i].model)->hidden_size;
        size_t v = er_store_value_size(sp->dtype, er_task_max_input_tokens(&ts->tasks[i], 0), H);
        size_t q = 2 * (v + 64); /* + the queue's record header and key */
        if (q > need) need = q;
    }
    if (need == sp->queue_bytes) return;
    er_log(ER_LOG_INFO, "store write queue grown from %.1f to %.1f MiB so that the longest "
           "input's value fits", (double)sp->queue_bytes / (1 << 20), (double)need / (1 << 20));
    sp->queue_bytes = need;
}

er_status er_taskset_load(const er_task_spec *specs, int n, const er_taskset_params *params,
                          er_taskset **out, er_err *err) {
    *out = NULL;
    er_taskset_params p = params ? *params : er_taskset_default_params();
    if (n < 1 || !specs) return er_set(err, ER_ERR_INVALID_ARG, "no tasks");
    for (int i = 0; i < n; i++) {
        if (!er_task_name_valid(specs[i].name))
            return er_set(err, ER_ERR_INVALID_ARG, "task name \"%s\" must match "
                          "[A-Za-z0-9_.-]{1,64}", specs[i].name ? specs[i].name : "");
        if (!specs[i].dir || specs[i].cut < 0)
            return er_set(err, ER_ERR_INVALID_ARG, "task %s: no directory or negative cut",
                          specs[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(specs[i].name, specs[j].name))
                return er_set(err, ER_ERR_INVALID_ARG, "task name %s given twice", specs[i].name);
    }
    er_taskset *ts = calloc(1, sizeof *ts);
    er_status st = ts ? er_taskset_init_dynamic(ts, n, &p, err)
                      : er_set(err, ER_ERR_NOMEM, "out of memory");
    if (st != ER_OK) {
        er_taskset_free(ts);
        return st;
    }
    for (int i = 0; i < n && st == ER_OK; i++) {
        st = er_taskset_load_task(ts, i, &specs[i], &p, err);
        ts->n = i + 1;
        if (st != ER_OK && err && !strstr(err->msg, specs[i].name)) {
            er_err e = *err;
            er_set(err, st, "task %s: %s", specs[i].name, e.msg);
        }
    }
    if (st == ER_OK) st = er_taskset_load_tokenizers(ts, specs, p.tokenizer, err);
    if (st == ER_OK) er_taskset_note_sizes(ts);
    if (st == ER_OK && p.store_path) {
        fit_queue(ts, &p.store);
        st = er_store_open(p.store_path, &p.store, &ts->store, err);
    }
    if (st == ER_OK && p.tier && (!p.store_path || er_tier_dtype(p.tier) != p.store.dtype))
        st = er_set(err, ER_ERR_INVALID_ARG, "a second tier needs a store, of the tier's dtype");
    ts->tier = p.tier;
    if (st != ER_OK) {
        er_taskset_free(ts);
        return st;
    }
    for (int j = 0; j < ts->n_stacks; j++) {
        char names[768] = "";
        size_t len = 0;
        for (int i = 0; i < ts->n; i++)
            if (ts->tasks[i].stack == j && len < sizeof names - 80)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s(cut %d)",
                                        len ? ", " : "", ts->tasks[i].name, ts->tasks[i].cut);
        er_log(ER_LOG_INFO, "lower stack %d (store cut %d): %s", j, ts->stacks[j].cut, names);
    }
    *out = ts;
    return ER_OK;
}

void er_taskset_free(er_taskset *ts) {
    if (!ts) return;
    er_store_close(ts->store);
    er_taskset_free_tokenizers(ts);
    for (int i = 0; i < ts->n; i++) er_model_free(ts->tasks[i].model);
    for (int j = 0; j < ts->n_stacks; j++) free(ts->stacks[j].tensors);
    free(ts->tasks);
    free(ts->stacks);
    er_taskset_free_dynamic(ts);
    free(ts);
}

int er_taskset_count(const er_taskset *ts) { return ts->n; }
const er_task *er_taskset_at(const er_taskset *ts, int i) {
    return i >= 0 && i < ts->n ? &ts->tasks[i] : NULL;
}
const er_task *er_taskset_find(const er_taskset *ts, const char *name) {
    for (int i = 0; name && i < ts->n; i++)
        if (!ts->tasks[i].removed && !strcmp(ts->tasks[i].name, name)) return &ts->tasks[i];
    return NULL;
}
int er_taskset_cut(const er_taskset *ts) { return ts->cut; }
er_store *er_taskset_store(const er_taskset *ts) { return ts->store; }
er_tier *er_taskset_tier(const er_taskset *ts) { return ts->tier; }
int er_taskset_lower_stacks(const er_taskset *ts) { return ts->n_stacks; }

const char *er_task_name(const er_task *t) { return t->name; }

int er_task_max_input_tokens(const er_task *t, int cap) {
    int n = er_model_max_seq_len(t->model);
    return cap > 0 && cap < n ? cap : n;
}

int er_taskset_longest_input(const er_taskset *ts, int cap) {
    int longest = 1;
    for (int i = 0; i < ts->n; i++) {
        if (ts->tasks[i].removed) continue;
        int n = er_task_max_input_tokens(&ts->tasks[i], cap);
        if (n > longest) longest = n;
    }
    return longest;
}

er_ctx_params er_worker_params(const er_taskset *ts, int batch_tokens, int batch_seqs, int cap) {
    int longest = er_taskset_longest_input(ts, cap);
    er_ctx_params p = er_ctx_default_params();
    p.max_tokens = batch_tokens > longest ? batch_tokens : longest;
    p.max_seqs = batch_seqs;
    p.max_seq_len = longest;
    return p;
}

uint64_t er_key_salt(int max_tokens, bool truncate) {
    return (uint64_t)max_tokens << 1 | (truncate ? 1u : 0u);
}
const er_model *er_task_model(const er_task *t) { return t->model; }
int er_task_cut(const er_task *t) { return t->cut; }
int er_task_lower_stack(const er_task *t) { return t->stack; }
const uint8_t *er_task_fingerprint(const er_task *t) { return t->fp; }
const er_tokenizer *er_task_tokenizer(const er_task *t) { return t->tok; }
