#include "model_internal.h"

#include "arch.h"
#include "er_io.h"
#include "heads.h"

#include <cblas.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

er_model_params er_model_default_params(void) {
    er_model_params p = {.skip_below_layer = 0, .raw_embeddings = false, .token_embeddings = false,
                         .base_dir = NULL, .model_root = NULL, .lora_merge = false};
    return p;
}

const er_config *er_model_config(const er_model *m) { return &m->cfg; }

er_compute er_model_compute(const er_model *m) { return m->compute; }

bool er_compute_parse(const char *s, er_compute *out) {
    if (s && strcmp(s, "fp32") == 0) *out = ER_COMPUTE_FP32;
    else if (s && strcmp(s, "bf16") == 0) *out = ER_COMPUTE_BF16;
    else if (s && strcmp(s, "int8") == 0) *out = ER_COMPUTE_INT8;
    else return false;
    return true;
}

const char *er_compute_name(er_compute c) {
    return c == ER_COMPUTE_BF16 ? "bf16" : c == ER_COMPUTE_INT8 ? "int8" : "fp32";
}

int er_model_max_seq_len(const er_model *m) { return m->arch->max_seq_len(&m->cfg); }

int er_model_head_width(const er_model *m) {
    switch (m->cfg.head) {
    case ER_HEAD_EMBEDDING: /* the last Dense module's width, else the pooled hidden row */
        return m->cfg.st.n_dense ? m->cfg.st.dense[m->cfg.st.n_dense - 1].out_features
                                 : m->cfg.hidden_size;
    case ER_HEAD_SPARSE_EMBEDDING: return m->cfg.vocab_size;
    case ER_HEAD_TOKEN_EMBEDDING: return m->cfg.hidden_size;
    case ER_HEAD_QUESTION_ANSWERING: return 2;
    default: return m->cfg.num_labels;
    }
}

/* ---- weight files shared between models ----
 * Models loading the same file (tasks over one base, adapters, a task and a
 * stack sharing its checkpoint) map it once: the registry hands out one
 * er_st_file per real path, counted, so its pages are resident once. */

typedef struct shared_file {
    char path[PATH_MAX];
    er_st_file *f;
    int refs;
    struct shared_file *next;
} shared_file;

static shared_file *g_files;
static pthread_mutex_t g_files_mu = PTHREAD_MUTEX_INITIALIZER;

static er_status shared_open(const char *path, er_st_file **out, er_err *err) {
    char real[PATH_MAX];
    if (!realpath(path, real)) return er_st_open(path, out, err); /* reports the error */
    pthread_mutex_lock(&g_files_mu);
    shared_file *s = g_files;
    while (s && strcmp(s->path, real)) s = s->next;
    er_status st = ER_OK;
    if (!s && !(s = calloc(1, sizeof *s))) st = er_set(err, ER_ERR_NOMEM, "out of memory");
    if (st == ER_OK && !s->f) {
        snprintf(s->path, sizeof s->path, "%s", real);
        st = er_st_open(real, &s->f, err);
        if (st == ER_OK) {
            s->next = g_files;
            g_files = s;
        } else {
            free(s);
        }
    }
    if (st == ER_OK) {
        s->refs++;
        *out = s->f;
    }
    pthread_mutex_unlock(&g_files_mu);
    return st;
}

static void shared_release(er_st_file *f) {
    pthread_mutex_lock(&g_files_mu);
    shared_file **p = &g_files;
    while (*p && (*p)->f != f) p = &(*p)->next;
    shared_file *s = *p;
    if (s && --s->refs == 0) {
        *p = s->next;
        er_st_free(s->f);
        free(s);
    } else if (!s) {
        er_st_free(f); /* opened outside the registry */
    }
    pthread_mutex_unlock(&g_files_mu);
}

void er_model_unload(er_model *m) {
    if (!m) return;
    er_model_unpack(m); /* first: its entries are keyed by the weights freed below */
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    m->owned = NULL;
    m->n_owned = m->cap_owned = 0;
    for (int i = 0; i < m->n_files; i++) shared_release(m->files[i]);
    m->n_files = 0;
    for (int i = 0; i < ER_MAX_DENSE; i++) er_st_free(m->heads.files[i]);
    memset(m->heads.files, 0, sizeof m->heads.files);
    free(m->heads.mlm_blocks);
    m->heads.mlm_blocks = NULL;
    m->heads.n_mlm_blocks = 0;
    er_adapter_free(m->adapter);
    m->adapter = NULL;
    free(m->layers);
    m->layers = NULL;
}

void er_model_free(er_model *m) {
    if (!m) return;
    er_model_unload(m);
    er_config_free(&m->cfg);
    free(m);
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static const er_st_tensor *find_tensor(const er_model *m, const char *name) {
    const er_st_tensor *saved = er_adapter_find(m, name); /* an adapter's head wins */
    if (saved) return saved;
    for (int i = 0; i < m->n_files; i++) {
        const er_st_tensor *t = er_st_find(m->files[i], name);
        if (t) return t;
    }
    return NULL;
}

/* Opens the shards listed in model.safetensors.index.json's weight_map. */
static er_status open_sharded(er_model *m, const char *dir, const char *index_path, er_err *err) {
    char *text;
    size_t len;
    er_status st = er_read_file(index_path, 64u << 20, &text, &len, err);
    if (st != ER_OK) return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return er_set(err, ER_ERR_FORMAT, "%s: invalid JSON: %s", index_path, jerr.text);
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        json_decref(root);
        return er_set(err, ER_ERR_FORMAT, "%s: missing object 'weight_map'", index_path);
    }
    const char *name;
    json_t *file;
    const char *opened[ER_MAX_SHARDS];
    json_object_foreach(map, name, file) {
        const char *fn = json_string_value(file);
        if (!fn || strchr(fn, '/') || strcmp(fn, "..") == 0 || !fn[0]) {
            st = er_set(err, ER_ERR_FORMAT, "%s: weight_map entry for '%.128s' is not a file name "
                        "in the model directory", index_path, name);
            break;
        }
        int seen = 0;
        for (int i = 0; i < m->n_files && !seen; i++) seen = strcmp(opened[i], fn) == 0;
        if (seen) continue;
        if (m->n_files == ER_MAX_SHARDS) {
            st = er_set(err, ER_ERR_CAPACITY, "%s: more than %d shards", index_path, ER_MAX_SHARDS);
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, fn);
        st = shared_open(path, &m->files[m->n_files], err);
        if (st != ER_OK) break;
        opened[m->n_files++] = fn;
    }
    json_decref(root); /* `opened` pointed into it; done with them */
    return st;
}

er_status er_refuse_pickle(const char *dir, er_err *err) {
    return er_set(err, ER_ERR_NOT_FOUND,
                  "%s holds pytorch_model.bin but no model.safetensors; erserve reads only "
                  "safetensors (pickle files can run code). Convert once with: python3 -c "
                  "\"import torch, safetensors.torch as s; d=torch.load('%s/pytorch_model.bin', "
                  "map_location='cpu'); s.save_file({k: v.clone().contiguous() for k, v in "
                  "d.items()}, '%s/model.safetensors', metadata={'format': 'pt'})\"",
                  dir, dir, dir);
}

static er_status open_weights(er_model *m, const char *dir, er_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (file_exists(path)) {
        er_status st = shared_open(path, &m->files[0], err);
        if (st == ER_OK) m->n_files = 1;
        return st;
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (file_exists(path)) return open_sharded(m, dir, path, err);
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    if (file_exists(path)) return er_refuse_pickle(dir, err);
    return er_set(err, ER_ERR_NOT_FOUND, "%s: no model.safetensors or "
                  "model.safetensors.index.json", dir);
}

static er_status keep_owned(er_model *m, float *buf, er_err *err) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        float **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) {
            free(buf);
            return er_set(err, ER_ERR_NOMEM, "out of memory");
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = buf;
    return ER_OK;
}

er_status er_model_alloc_floats(er_model *m, size_t n, float **out, er_err *err) {
    *out = NULL;
    float *buf = calloc(n ? n : 1, sizeof *buf);
    if (!buf) return er_set(err, ER_ERR_NOMEM, "out of memory for %zu model floats", n);
    er_status st = keep_owned(m, buf, err); /* frees buf on failure */
    if (st == ER_OK) *out = buf;
    return st;
}

bool er_has_tensor(const er_model *m, const char *prefix, const char *name) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return find_tensor(m, key) != NULL;
}

/* Checks t (named key; NULL: missing) is exactly [d0] or [d0, d1] (d1 = 0
 * for rank 1) of a dtype erserve computes with. */
static er_status check_found(const er_st_tensor *t, const char *key, int64_t d0, int64_t d1,
                             er_err *err) {
    if (!t) return er_set(err, ER_ERR_NOT_FOUND, "tensor '%s' is missing from the checkpoint", key);
    int rank = d1 ? 2 : 1;
    if (t->ndim != rank || t->shape[0] != d0 || (rank == 2 && t->shape[1] != d1))
        return er_set(err, ER_ERR_MISMATCH, "tensor '%s' has shape [%lld%s%lld] but the config "
                      "implies [%lld%s%lld]", key, (long long)t->shape[0],
                      t->ndim > 1 ? ", " : "", t->ndim > 1 ? (long long)t->shape[1] : 0LL,
                      (long long)d0, rank == 2 ? ", " : "", rank == 2 ? (long long)d1 : 0LL);
    if (t->dtype == ER_DTYPE_OTHER)
        return er_set(err, ER_ERR_MISMATCH, "tensor '%s' has dtype %s; expected F32, F16 or BF16",
                      key, t->dtype_name);
    return ER_OK;
}

/* check_found, then float32 values: the mmap itself for an aligned F32
 * matrix, else an owned converted copy.  Vectors (biases, LayerNorm
 * parameters: ~0.5 MiB at bert-base) are always copied: the forward reads
 * them every layer, and a fault on one maps the whole page-cache folio
 * around it (Linux maps large folios whole: measured 55 MiB of the
 * neighbouring, already packed weights back in a bf16 bert-base process
 * after one forward), so RSS would depend on the page cache's history. */
static er_status load_found(er_model *m, const er_st_tensor *t, const char *key, int64_t d0,
                            int64_t d1, const float **out, er_err *err) {
    er_status st = check_found(t, key, d0, d1, err);
    if (st != ER_OK) return st;
    if (t->dtype == ER_DTYPE_FP32 && ((uintptr_t)t->data % sizeof(float)) == 0 && d1 != 0) {
        *out = t->data;
        return ER_OK;
    }
    float *buf = malloc((size_t)t->numel * sizeof *buf);
    if (!buf) return er_set(err, ER_ERR_NOMEM, "out of memory converting '%s'", key);
    st = er_st_to_f32(t, buf, err);
    if (st != ER_OK) {
        free(buf);
        return st;
    }
    if ((st = keep_owned(m, buf, err)) != ER_OK) return st;
    *out = buf;
    return ER_OK;
}

er_status er_load_tensor(er_model *m, const char *prefix, const char *name, int64_t d0, int64_t d1,
                         const float **out, er_err *err) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return load_found(m, find_tensor(m, key), key, d0, d1, out, err);
}

er_status er_load_table(er_model *m, const char *prefix, const char *name, int64_t d0, int64_t d1,
                        const float **out, const er_st_tensor **narrow, er_err *err) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const er_st_tensor *t = find_tensor(m, key);
    *out = NULL;
    *narrow = NULL;
    if (!t || (t->dtype != ER_DTYPE_FP16 && t->dtype != ER_DTYPE_BF16))
        return load_found(m, t, key, d0, d1, out, err);
    er_status st = check_found(t, key, d0, d1, err);
    if (st == ER_OK) *narrow = t;
    return st;
}

er_status er_load_tensor_in(er_model *m, const er_st_file *f, const char *name, int64_t d0,
                            int64_t d1, const float **out, er_err *err) {
    return load_found(m, er_st_find(f, name), name, d0, d1, out, err);
}

/* Records the module a head Linear was loaded from: LoRA names head
 * targets so (lora.c). */
static void name_head(er_model *m, const char *prefix, const char *name, const er_lin *l) {
    if (l == &m->head_dense || l == &m->head_out)
        snprintf(m->head_names[l == &m->head_out], sizeof m->head_names[0], "%s%s", prefix, name);
}

er_status er_load_lin(er_model *m, const char *prefix, const char *name, int out, int in,
                      bool bias, er_lin *l, er_err *err) {
    char key[512];
    snprintf(key, sizeof key, "%s%s.weight", prefix, name);
    er_status st = er_load_tensor(m, "", key, out, in, &l->w, err);
    if (st != ER_OK) return st;
    l->b = NULL;
    if (bias) {
        snprintf(key, sizeof key, "%s%s.bias", prefix, name);
        if ((st = er_load_tensor(m, "", key, out, 0, &l->b, err)) != ER_OK) return st;
    }
    l->out = out;
    l->in = in;
    name_head(m, prefix, name, l);
    return ER_OK;
}

bool er_model_keeps_narrow(const er_model *m) {
    return m->arch && m->arch->narrow_layers && er_model_packs(m);
}

bool er_lin_is_float(const er_lin *l) { return l->w && !l->merge_a; }

/* dst [out, in] += merge_scale * B A: peft's merge (get_delta_weight), the
 * one sgemm an F32 weight's merged copy was made with. */
static void add_merged_pair(const er_lin *l, float *dst) {
    if (!l->merge_a) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->out, l->in, l->merge_r,
                l->merge_scale, l->merge_b, l->merge_r, l->merge_a, l->in, 1.0f, dst, l->in);
}

er_status er_lin_widen(const er_lin *l, float *dst, er_err *err) {
    const int64_t n = (int64_t)l->out * l->in;
    if (l->w) {
        memcpy(dst, l->w, (size_t)n * sizeof *dst);
        add_merged_pair(l, dst);
        return ER_OK;
    }
    if (!l->narrow) return er_set(err, ER_ERR_INTERNAL, "a Linear with no weight");
    if (l->narrow->dtype != ER_DTYPE_FP16 && l->narrow->dtype != ER_DTYPE_BF16)
        return er_set(err, ER_ERR_UNSUPPORTED, "tensor '%s': a narrow weight must be F16 or BF16",
                      l->narrow->name);
    if (l->narrow_row < 0 || (l->narrow_row + l->out) * l->in > l->narrow->numel)
        return er_set(err, ER_ERR_INTERNAL, "tensor '%s': rows [%lld, %lld) outside it",
                      l->narrow->name, (long long)l->narrow_row,
                      (long long)(l->narrow_row + l->out));
    er_st_range_to_f32(l->narrow, l->narrow_row * l->in, n, dst);
    add_merged_pair(l, dst);
    return ER_OK;
}

er_lin er_lin_rows(const er_lin *whole, int row0, int rows) {
    const size_t off = (size_t)row0 * (size_t)whole->in;
    return (er_lin){.w = whole->w ? whole->w + off : NULL,
                    .b = whole->b ? whole->b + row0 : NULL,
                    .out = rows, .in = whole->in,
                    .narrow = whole->w ? NULL : whole->narrow,
                    .narrow_row = whole->w ? 0 : whole->narrow_row + row0};
}

int er_visit_lin_weight(er_tensor_visit_fn fn, void *user, const char *key, const er_lin *l) {
    const size_t n = (size_t)l->out * (size_t)l->in;
    if (er_lin_is_float(l)) return fn(user, key, l->w, n);
    if (!l->w && !l->narrow) return 0; /* a slot the family does not use */
    float *w = er_transient_alloc(n); // [out, in]
    int r = w && er_lin_widen(l, w, NULL) == ER_OK ? fn(user, key, w, n) : -1;
    er_transient_free(w, n);
    return r;
}

er_status er_load_lin_narrow(er_model *m, const char *prefix, const char *name, int out, int in,
                             bool bias, bool keep, er_lin *l, er_err *err) {
    char key[512];
    snprintf(key, sizeof key, "%s%s.weight", prefix, name);
    const er_st_tensor *t = find_tensor(m, key);
    if (!keep || !t || (t->dtype != ER_DTYPE_FP16 && t->dtype != ER_DTYPE_BF16))
        return er_load_lin(m, prefix, name, out, in, bias, l, err);
    er_status st = check_found(t, key, out, in, err);
    if (st != ER_OK) return st;
    l->b = NULL;
    snprintf(key, sizeof key, "%s%s.bias", prefix, name);
    if (bias && (st = er_load_tensor(m, "", key, out, 0, &l->b, err)) != ER_OK) return st;
    l->w = NULL;
    l->narrow = t;
    l->narrow_row = 0;
    l->out = out;
    l->in = in;
    name_head(m, prefix, name, l);
    return ER_OK;
}

/* er_load_lin_narrow for a post-LN layer's weight (with bias), narrow when
 * the model keeps its layers narrow. */
static er_status load_layer_lin(er_model *m, const char *prefix, const char *name, int out,
                                int in, er_lin *l, er_err *err) {
    return er_load_lin_narrow(m, prefix, name, out, in, true, er_model_keeps_narrow(m), l, err);
}

/* A LayerNorm's weight and bias are stored as a Linear's would be with no
 * input dimension. */
er_status er_load_ln(er_model *m, const char *prefix, const char *name, int d, er_ln *ln,
                     er_err *err) {
    er_lin l = {0};
    er_status st = er_load_lin(m, prefix, name, d, 0, true, &l, err);
    ln->gamma = l.w;
    ln->beta = l.b;
    return st;
}

er_status er_load_post_ln_layer(er_model *m, const char *prefix, int i, const er_layer_names *n,
                                er_err *err) {
    const int h = m->cfg.hidden_size, f = m->cfg.intermediate_size;
    er_layer_w *L = &m->layers[i];
    char p[256];
    snprintf(p, sizeof p, "%s%s.%d.", prefix, n->layers, i);
    er_status st = load_layer_lin(m, p, n->q, h, h, &L->q, err);
    if (st == ER_OK) st = load_layer_lin(m, p, n->k, h, h, &L->k, err);
    if (st == ER_OK) st = load_layer_lin(m, p, n->v, h, h, &L->v, err);
    if (st == ER_OK) st = load_layer_lin(m, p, n->o, h, h, &L->o, err);
    if (st == ER_OK) st = er_load_ln(m, p, n->attn_ln, h, &L->attn_ln, err);
    if (st == ER_OK) st = load_layer_lin(m, p, n->ffn_in, f, h, &L->ffn_in, err);
    if (st == ER_OK) st = load_layer_lin(m, p, n->ffn_out, h, f, &L->ffn_out, err);
    if (st == ER_OK) st = er_load_ln(m, p, n->out_ln, h, &L->out_ln, err);
    return st;
}

er_status er_load_dense_head(er_model *m, const char *dense, er_head_act act, const char *out,
                             er_err *err) {
    const int h = m->cfg.hidden_size;
    const bool keep = er_model_keeps_narrow(m); /* heads run on packed weights too */
    m->head_act = act;
    er_status st = er_load_lin_narrow(m, "", dense, h, h, true, keep, &m->head_dense, err);
    if (st != ER_OK) return st;
    return er_load_lin_narrow(m, "", out, m->cfg.num_labels, h, true, keep, &m->head_out, err);
}

er_status er_load_token_head(er_model *m, const char *prefix, er_err *err) {
    (void)prefix; /* the head sits outside the base model */
    return er_load_lin_narrow(m, "", "classifier", m->cfg.num_labels, m->cfg.hidden_size, true,
                              er_model_keeps_narrow(m), &m->head_out, err);
}

er_status er_load_qa_head(er_model *m, const char *prefix, er_err *err) {
    (void)prefix;
    return er_load_lin_narrow(m, "", "qa_outputs", 2, m->cfg.hidden_size, true,
                              er_model_keeps_narrow(m), &m->head_out, err);
}

/* The base-model prefix: "bert." etc. in *For* checkpoints, "" in a saved
 * base model (sentence-transformers); decided by whether any tensor name
 * starts with it. */
static const char *base_prefix(const er_model *m) {
    const char *p = m->arch->prefix;
    for (int i = 0; i < m->n_files; i++)
        for (size_t j = 0; j < er_st_count(m->files[i]); j++)
            if (strncmp(er_st_at(m->files[i], j)->name, p, strlen(p)) == 0) return p;
    return "";
}

/* Embeddings (unless skipped), layers [skip_below, num_layers) and the head,
 * each by the architecture's tensor names. */
static er_status load_tensors(er_model *m, er_err *err) {
    const er_arch_desc *a = m->arch;
    const char *pre = base_prefix(m);
    er_status st = ER_OK;
    if (m->skip_below == 0) st = a->load_embeddings(m, pre, err);
    for (int i = m->skip_below; i < m->cfg.num_layers && st == ER_OK; i++)
        st = a->load_layer(m, pre, i, err);
    er_arch arch;
    const er_arch_class *cls = er_arch_find_class(m->cfg.architecture, &arch);
    if (st == ER_OK && !cls)
        st = er_set(err, ER_ERR_INTERNAL, "no class '%s' in the architecture table",
                    m->cfg.architecture);
    bool own = false; /* a bottleneck adapter's head_config.json head replaces the class's */
    if (st == ER_OK && m->adapter) st = er_adapter_load_head(m, &own, err);
    if (st == ER_OK && !own && cls->load_head) st = cls->load_head(m, pre, err);
    return st;
}

er_status er_model_load(const char *dir, const er_model_params *params, er_model **out,
                        er_err *err) {
    *out = NULL;
    er_model_params p = params ? *params : er_model_default_params();
    er_model *m = calloc(1, sizeof *m);
    if (!m) return er_set(err, ER_ERR_NOMEM, "out of memory");
    const bool adapter = er_adapter_dir(dir);
    er_status st = adapter ? er_adapter_open(m, dir, &p, err) : er_config_load_dir(dir, &m->cfg, err);
    if (st != ER_OK) goto fail;
    if (p.skip_below_layer < 0 || p.skip_below_layer > m->cfg.num_layers) {
        st = er_set(err, ER_ERR_INVALID_ARG, "skip_below_layer %d outside [0, %d]",
                    p.skip_below_layer, m->cfg.num_layers);
        goto fail;
    }
    m->skip_below = p.skip_below_layer;
    const char *missing;
    if (p.compute != ER_COMPUTE_FP32 && p.compute != ER_COMPUTE_BF16 &&
        p.compute != ER_COMPUTE_INT8) {
        st = er_set(err, ER_ERR_INVALID_ARG, "compute mode %d (fp32, bf16 or int8)", (int)p.compute);
        goto fail;
    }
    er_gemm_kind kind = p.compute == ER_COMPUTE_BF16   ? ER_GEMM_BF16
                        : p.compute == ER_COMPUTE_INT8 ? ER_GEMM_INT8 : ER_GEMM_F32;
    if (p.compute != ER_COMPUTE_FP32 && !er_gemm_supports(kind, &missing)) {
        st = er_set(err, ER_ERR_UNSUPPORTED, "compute %s needs %s", er_compute_name(p.compute),
                    missing);
        goto fail;
    }
    m->compute = p.compute;
    m->raw_embeddings = p.raw_embeddings;
    m->arch = er_arch_get(m->cfg.arch);
    if ((st = open_weights(m, adapter ? er_adapter_base(m->adapter) : dir, err)) != ER_OK) goto fail;
    m->layers = calloc((size_t)m->cfg.num_layers, sizeof *m->layers);
    if (!m->layers) {
        st = er_set(err, ER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = load_tensors(m, err)) != ER_OK) goto fail;
    if (adapter && (st = er_adapter_apply(m, err)) != ER_OK) goto fail;
    /* an adapter's sentence-transformers modules are its base's */
    if ((st = er_load_st_dense(m, adapter ? er_adapter_base(m->adapter) : dir, err)) != ER_OK)
        goto fail;
    if ((st = er_model_pack(m, err)) != ER_OK) goto fail;
    if (p.token_embeddings && m->cfg.head != ER_HEAD_EMBEDDING) {
        st = er_set(err, ER_ERR_INVALID_ARG, "token embeddings need an embedding model, not a %s head",
                    er_head_type_name(m->cfg.head));
        goto fail;
    }
    if (p.token_embeddings) m->cfg.head = ER_HEAD_TOKEN_EMBEDDING; /* after the head's tensors: it has none */
    *out = m;
    return ER_OK;
fail:
    if (err && st != ER_OK && strncmp(err->msg, dir, strlen(dir)) != 0) {
        char inner[ER_ERR_MSG_MAX];
        memcpy(inner, err->msg, sizeof inner);
        er_set(err, st, "%s: %s", dir, inner);
    }
    er_model_free(m);
    return st;
}

/* fn on a narrow tensor widened into a transient buffer (the fingerprint
 * hashes the same floats as for the widened checkpoint); -1 when out of
 * memory. */
static int visit_narrow(er_tensor_visit_fn fn, void *user, const char *key,
                        const er_st_tensor *t) {
    float *w = malloc((size_t)t->numel * sizeof *w); // [numel]
    int r = -1;
    if (w && er_st_to_f32(t, w, NULL) == ER_OK) r = fn(user, key, w, (size_t)t->numel);
    free(w);
    return r;
}

static int visit_lin(er_tensor_visit_fn fn, void *user, const char *name, const er_lin *l) {
    char key[128];
    if (!l->w && !l->narrow) return 0; /* a slot the family does not use */
    snprintf(key, sizeof key, "%s.weight", name);
    int r = er_visit_lin_weight(fn, user, key, l);
    if (r || !l->b) return r;
    snprintf(key, sizeof key, "%s.bias", name);
    if ((r = fn(user, key, l->b, (size_t)l->out)) || !l->lora_a) return r;
    /* an unmerged LoRA pair changes the layer as much as its weight does */
    snprintf(key, sizeof key, "%s.lora_A", name);
    if ((r = fn(user, key, l->lora_a, (size_t)l->lora_r * (size_t)l->in))) return r;
    snprintf(key, sizeof key, "%s.lora_B", name);
    if ((r = fn(user, key, l->lora_b, (size_t)l->out * (size_t)l->lora_r))) return r;
    snprintf(key, sizeof key, "%s.lora_scale", name);
    return fn(user, key, &l->lora_scale, 1);
}

static int visit_ln(er_tensor_visit_fn fn, void *user, const char *name, const er_ln *ln, int d) {
    char key[128];
    if (!ln->gamma) return 0; /* a slot the family does not use */
    snprintf(key, sizeof key, "%s.gamma", name);
    int r = fn(user, key, ln->gamma, (size_t)d);
    if (r || !ln->beta) return r; /* LayerNorm without bias (ModernBERT, NomicBERT) */
    snprintf(key, sizeof key, "%s.beta", name);
    return fn(user, key, ln->beta, (size_t)d);
}

/* A bottleneck adapter changes its layer as much as the layer's weights do:
 * its projections and every setting of its math. */
static int visit_bn(er_tensor_visit_fn fn, void *user, const char *name, const er_bn *a) {
    char key[128];
    if (!a) return 0;
    const float how[] = {(float)a->act, (float)a->residual, a->scaling,
                         (float)a->original_ln_before, (float)a->original_ln_after,
                         (float)a->adapter_residual_before_ln};
    snprintf(key, sizeof key, "%s.down", name);
    int r = visit_lin(fn, user, key, &a->down);
    snprintf(key, sizeof key, "%s.up", name);
    if (!r) r = visit_lin(fn, user, key, &a->up);
    snprintf(key, sizeof key, "%s.ln_after", name);
    if (!r) r = visit_ln(fn, user, key, &a->ln_after, a->up.out);
    snprintf(key, sizeof key, "%s.how", name);
    return r ? r : fn(user, key, how, sizeof how / sizeof *how);
}

er_status er_model_visit_lower(const er_model *m, int cut, er_tensor_visit_fn fn, void *user,
                               er_err *err) {
    const er_config *c = &m->cfg;
    if (m->skip_below != 0 || cut < 0 || cut > c->num_layers)
        return er_set(err, ER_ERR_INVALID_ARG, "cannot visit layers [0, %d) of this model", cut);
    size_t e = (size_t)c->embedding_size;
    int r = m->word_emb ? fn(user, "embeddings.word", m->word_emb, (size_t)c->vocab_size * e)
                        : visit_narrow(fn, user, "embeddings.word", m->word_emb_narrow);
    if (!r && m->pos_emb) /* rotary families have no position table */
        r = fn(user, "embeddings.position", m->pos_emb, (size_t)c->max_positions * e);
    if (!r && m->type_emb) r = fn(user, "embeddings.type", m->type_emb, (size_t)c->type_vocab_size * e);
    if (!r) r = visit_ln(fn, user, "embeddings.ln", &m->emb_ln, (int)e);
    if (!r && m->emb_project.w) r = visit_lin(fn, user, "embeddings.project", &m->emb_project);
    for (int i = 0; i < cut && !r; i++) {
        const er_layer_w *L = &m->layers[i];
        char p[64];
        int h = c->hidden_size;
#define V(field, call) \
        if (!r) { snprintf(p, sizeof p, "layer.%d.%s", i, field); r = call; }
        V("q", visit_lin(fn, user, p, &L->q));
        V("k", visit_lin(fn, user, p, &L->k));
        V("v", visit_lin(fn, user, p, &L->v));
        V("o", visit_lin(fn, user, p, &L->o));
        V("attn_ln", visit_ln(fn, user, p, &L->attn_ln, h));
        V("ffn_in", visit_lin(fn, user, p, &L->ffn_in));
        V("ffn_out", visit_lin(fn, user, p, &L->ffn_out));
        V("out_ln", visit_ln(fn, user, p, &L->out_ln, h));
        V("bn_att", visit_bn(fn, user, p, L->bn_att));
        V("bn_out", visit_bn(fn, user, p, L->bn_out));
#undef V
    }
    if (!r && m->arch->visit_lower) r = m->arch->visit_lower(m, cut, fn, user);
    return r ? er_set(err, ER_ERR_INTERNAL, "tensor visitor stopped (%d)", r) : ER_OK;
}

/* Prints shape[ndim] as "[a, b, c]" into buf. */
static void shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

er_status er_load_tensor_shape(er_model *m, const char *prefix, const char *name,
                               const int64_t *shape, int ndim, const float **out, er_err *err) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const er_st_tensor *t = find_tensor(m, key);
    if (!t) return er_set(err, ER_ERR_NOT_FOUND, "tensor '%s' is missing from the checkpoint", key);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char have[128], want[128];
        shape_str(t->shape, t->ndim, have, sizeof have);
        shape_str(shape, ndim, want, sizeof want);
        return er_set(err, ER_ERR_MISMATCH, "tensor '%s' has shape %s but the config implies %s",
                      key, have, want);
    }
    if (t->ndim == 1 || t->ndim == 2) /* the same conversions as every other tensor */
        return er_load_tensor(m, prefix, name, t->shape[0], t->ndim == 2 ? t->shape[1] : 0, out,
                              err);
    if (t->dtype == ER_DTYPE_OTHER)
        return er_set(err, ER_ERR_MISMATCH, "tensor '%s' has dtype %s; expected F32, F16 or BF16",
                      key, t->dtype_name);
    float *buf = malloc((size_t)t->numel * sizeof *buf); /* always a copy: callers rearrange */
    if (!buf) return er_set(err, ER_ERR_NOMEM, "out of memory converting '%s'", key);
    er_status st = er_st_to_f32(t, buf, err);
    if (st != ER_OK) {
        free(buf);
        return st;
    }
    if ((st = keep_owned(m, buf, err)) != ER_OK) return st;
    *out = buf;
    return ER_OK;
}
