/* PEFT LoRA adapters (model_internal.h, "adapters"): a directory holding
 * adapter_config.json + adapter_model.safetensors as peft's save_pretrained
 * writes them, applied to a base checkpoint without copying it.
 *
 * Followed: peft 0.13 (src/peft/tuners/lora/layer.py Linear.forward and
 * get_delta_weight; utils/save_and_load.py get_peft_model_state_dict).
 *   y = base(x) + lora_B(lora_A(x)) * scaling
 *   scaling = lora_alpha / r   (use_rslora: lora_alpha / sqrt(r))
 * Saved names drop the adapter name: "base_model.model.<module>.lora_A.weight"
 * [r, in] and ".lora_B.weight" [out, r]; modules_to_save (the head) are saved
 * under "base_model.model.<module>.<param>".
 *
 * The base's weights stay where they are (its mmap); an adapted nn.Linear
 * either carries its A and B beside the base GEMM (er_lin's lora_* fields,
 * applied by er_lin_apply) or, with merge, gets a model-owned copy
 * W + scaling * B A of just that matrix.  Targets are every family's layer
 * modules by their real names (er_layer_names), fused ones (Wqkv, Wi,
 * up_gate_proj) split by rows over the er_lins made from them at load, and
 * the served head's Linears by the names they were loaded from. */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "adapter_internal.h"
#include "arch.h"
#include "er_io.h"
#include "er_log.h"
#include "model_internal.h"

#define PEFT_PREFIX "base_model.model."

const char *er_adapter_base(const er_adapter *a) { return a->base; }

bool er_adapter_dir(const char *dir) {
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/adapter_config.json", dir);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

void er_adapter_free(er_adapter *a) {
    if (!a) return;
    json_decref(a->config);
    er_st_free(a->file);
    er_bn_adapter_free(a->bn);
    free(a);
}

int er_model_lowest_adapted(const er_model *m) {
    return m->adapter ? m->adapter->lowest : m->cfg.num_layers;
}

int er_model_adapted_modules(const er_model *m) { return m->adapter ? m->adapter->n_adapted : 0; }

const char *er_model_adapter_kind(const er_model *m) {
    return !m->adapter ? NULL : m->adapter->bn ? "bottleneck" : "LoRA";
}

const char *er_model_base_dir(const er_model *m) { return m->adapter ? m->adapter->base : NULL; }

er_status er_adapter_resolve_base(const char *name, const char *dir, const er_model_params *p,
                                  char *out, size_t n, er_err *err) {
    char joined[4096];
    const char *slash = strrchr(dir, '/');
    if (p->base_dir) snprintf(joined, sizeof joined, "%s", p->base_dir);
    else if (name[0] == '/') snprintf(joined, sizeof joined, "%s", name);
    else if (p->model_root) snprintf(joined, sizeof joined, "%s/%s", p->model_root, name);
    else if (slash) snprintf(joined, sizeof joined, "%.*s/%s", (int)(slash - dir), dir, name);
    else snprintf(joined, sizeof joined, "%s", name);
    char real[PATH_MAX], root[PATH_MAX];
    if (!realpath(joined, real))
        return er_set(err, ER_ERR_NOT_FOUND, "adapter_config.json: base model '%.200s' not found "
                      "(looked at %.200s; set the model root or give the task's base)", name,
                      joined);
    if (p->model_root && !p->base_dir) {
        size_t k = realpath(p->model_root, root) ? strlen(root) : 0;
        if (!k || strncmp(real, root, k) != 0 || (real[k] != '/' && real[k] != '\0'))
            return er_set(err, ER_ERR_INVALID_ARG, "adapter_config.json: base model '%.200s' lies "
                          "outside the model root %.200s", name, p->model_root);
    }
    snprintf(out, n, "%s", real);
    return ER_OK;
}

/* The *For* class stem of the base's family: "Bert", "XLMRoberta", ... */
static const char *class_for(const json_t *base, const char *task_type, char *buf, size_t n,
                             er_err *err, er_status *st) {
    const char *mt = json_string_value(json_object_get(base, "model_type"));
    const char *bc = mt ? er_arch_base_class(mt) : NULL;
    *st = ER_OK;
    if (!bc) {
        *st = er_set(err, ER_ERR_UNSUPPORTED, "base config.json: model_type '%.40s' is not "
                     "supported", mt ? mt : "(none)");
        return NULL;
    }
    const char *suffix = NULL;
    if (!strcmp(task_type, "SEQ_CLS")) suffix = "ForSequenceClassification";
    else if (!strcmp(task_type, "TOKEN_CLS")) suffix = "ForTokenClassification";
    else if (!strcmp(task_type, "QUESTION_ANS")) suffix = "ForQuestionAnswering";
    else if (!strcmp(task_type, "FEATURE_EXTRACTION")) return NULL; /* the base as it is */
    else {
        *st = er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: task_type '%.40s' is not "
                     "supported (SEQ_CLS, TOKEN_CLS, QUESTION_ANS, FEATURE_EXTRACTION are)",
                     task_type);
        return NULL;
    }
    size_t stem = strlen(bc) - (strlen(bc) > 5 ? 5 : 0); /* drop "Model" */
    snprintf(buf, n, "%.*s%s", (int)stem, bc, suffix);
    return buf;
}

/* Rows of the saved classifier output: the task's number of labels. */
static int saved_labels(const er_st_file *f) {
    static const char *const NAMES[] = {PEFT_PREFIX "classifier.weight",
                                        PEFT_PREFIX "classifier.out_proj.weight"};
    for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++) {
        const er_st_tensor *t = er_st_find(f, NAMES[i]);
        if (t && t->ndim == 2) return (int)t->shape[0];
    }
    return 0;
}

er_status er_adapter_task_config(er_model *m, const char *base_dir, const char *task_type,
                                 int labels, const json_t *id2label, er_err *err) {
    if (!task_type) return er_config_load_dir(base_dir, &m->cfg, err);
    char path[4096], *text = NULL, cls[96];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config.json", base_dir);
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st != ER_OK) return st;
    json_t *root = json_loadb(text, len, 0, NULL);
    free(text);
    if (!json_is_object(root)) {
        json_decref(root);
        return er_set(err, ER_ERR_FORMAT, "%s: invalid JSON", path);
    }
    const char *name = class_for(root, task_type, cls, sizeof cls, err, &st);
    if (st == ER_OK && !name) {
        json_decref(root);
        return er_config_load_dir(base_dir, &m->cfg, err);
    }
    if (st == ER_OK) {
        json_object_set_new(root, "architectures", json_pack("[s]", name));
        const json_t *have = json_object_get(root, "id2label");
        if (id2label) {
            json_object_del(root, "label2id");
            json_object_set_new(root, "id2label", json_deep_copy(id2label));
            json_object_set_new(root, "num_labels", json_integer(labels));
        } else if (labels > 0 && (!have || (int)json_object_size(have) != labels)) {
            json_object_del(root, "id2label");
            json_object_del(root, "label2id");
            json_object_set_new(root, "num_labels", json_integer(labels));
        }
        char *out = json_dumps(root, JSON_COMPACT);
        st = out ? er_config_parse(out, strlen(out), &m->cfg, err)
                 : er_set(err, ER_ERR_NOMEM, "out of memory");
        free(out);
    }
    json_decref(root);
    return st;
}

/* adapter_config.json's LoRA fields; everything that would change the math
 * beyond what is implemented is refused by name. */
static er_status read_lora_fields(const json_t *c, er_adapter *a, er_err *err) {
    const char *pt = json_string_value(json_object_get(c, "peft_type"));
    if (!pt || strcmp(pt, "LORA"))
        return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: peft_type '%.40s' is not "
                      "supported (LORA is; AdapterHub adapters have a 'config' object)",
                      pt ? pt : "(none)");
    const json_t *r = json_object_get(c, "r"), *alpha = json_object_get(c, "lora_alpha");
    if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 4096)
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: 'r' must be an integer in "
                      "[1, 4096]");
    a->r = (int)json_integer_value(r);
    double al = alpha ? json_number_value(alpha) : 8.0; /* peft's default lora_alpha */
    if (alpha && !json_is_number(alpha))
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: 'lora_alpha' must be a number");
    bool rs = json_is_true(json_object_get(c, "use_rslora"));
    a->scale = (float)(rs ? al / sqrt((double)a->r) : al / a->r);
    const char *bias = json_string_value(json_object_get(c, "bias"));
    if (bias && strcmp(bias, "none"))
        return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: bias '%.40s' is not "
                      "supported (only 'none')", bias);
    /* layers_to_transform: one index or a list of them; absent = all */
    const json_t *lt = json_object_get(c, "layers_to_transform");
    for (int l = 0; l < ER_MAX_LAYERS; l++) a->layer_listed[l] = !lt || json_is_null(lt);
    bool bad = lt && !json_is_null(lt) && !json_is_array(lt) && !json_is_integer(lt);
    if (json_is_integer(lt)) {
        long long v = json_integer_value(lt);
        if (v < 0 || v >= ER_MAX_LAYERS) bad = true;
        else a->layer_listed[v] = true;
    }
    for (size_t k = 0; json_is_array(lt) && k < json_array_size(lt); k++) {
        const json_t *e = json_array_get(lt, k);
        long long v = json_is_integer(e) ? json_integer_value(e) : -1;
        if (v < 0 || v >= ER_MAX_LAYERS) bad = true;
        else a->layer_listed[v] = true;
    }
    if (bad)
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: 'layers_to_transform' must be a "
                      "layer index or a list of them");
    static const char *const REFUSED[] = {"fan_in_fan_out", "use_dora", "rank_pattern",
                                          "alpha_pattern", "layer_replication"};
    for (size_t i = 0; i < sizeof REFUSED / sizeof *REFUSED; i++) {
        const json_t *v = json_object_get(c, REFUSED[i]);
        if (v && !json_is_null(v) && !json_is_false(v) &&
            !(json_is_object(v) && json_object_size(v) == 0))
            return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: '%s' is not supported",
                          REFUSED[i]);
    }
    return ER_OK;
}

/* Same rule as peft's check_target_module_exists for a plain key: the
 * module's name is the key or ends with "." + key. */
static bool peft_key_matches(const char *module, const char *key) {
    size_t m = strlen(module), k = strlen(key);
    return m == k ? !strcmp(module, key)
                  : m > k && module[m - k - 1] == '.' && !strcmp(module + m - k, key);
}

/* One nn.Linear module a LoRA adapter may target, by its name under the
 * layer (or the model, for a head), and the er_lins its output rows are in
 * row order: one, or the views of a fused matrix (q/k/v of Wqkv; the GLU
 * input and gate of Wi).  A fused module has ONE lora_A [r, in] and ONE
 * lora_B [sum of views' out, r]: each view gets A and its rows of B. */
typedef struct {
    const char *name;
    er_lin *views[3];
    int n_views;
} lora_module;

#define MAX_LAYER_MODULES 9

/* Layer i's modules (all of them when L is NULL: names only). */
static int layer_modules(const er_layer_names *n, er_layer_w *L, lora_module *out) {
    er_layer_w none = {0};
    if (!L) L = &none;
    const lora_module all[MAX_LAYER_MODULES] = {
        {n->q, {&L->q}, 1}, {n->k, {&L->k}, 1}, {n->v, {&L->v}, 1},
        {n->qkv, {&L->q, &L->k, &L->v}, 3}, {n->o, {&L->o}, 1},
        {n->ffn_in, {&L->ffn_in}, 1}, {n->gate, {&L->gate}, 1},
        {n->ffn_in_gate, {&L->ffn_in, &L->gate}, 2}, {n->ffn_out, {&L->ffn_out}, 1},
    };
    int k = 0;
    for (int j = 0; j < MAX_LAYER_MODULES; j++)
        if (all[j].name) out[k++] = all[j];
    return k;
}

/* name without the family's base-model prefix ("bert."), when it has it. */
static const char *unprefixed(const er_model *m, const char *name) {
    size_t k = strlen(m->arch->prefix);
    return strncmp(name, m->arch->prefix, k) ? name : name + k;
}

/* The served model's head Linear modules (as loaded: "bert.pooler.dense",
 * "classifier.dense", "head.dense", "classifier", ...), prefix dropped. */
static int head_modules(er_model *m, lora_module *out) {
    er_lin *lins[2] = {&m->head_dense, &m->head_out};
    int k = 0;
    for (int j = 0; j < 2; j++)
        if ((lins[j]->w || lins[j]->narrow) && m->head_names[j][0])
            out[k++] = (lora_module){unprefixed(m, m->head_names[j]), {lins[j]}, 1};
    return k;
}

/* Whether `key` matches the base checkpoint's pooler.dense when the task
 * does not compute it (an embedding task over a *Model with a pooler): peft
 * wraps that Linear too, and its pair is ignored (apply).  Other modules
 * the task does not serve (embeddings: peft's lora.Embedding) stay refused. */
static bool checkpoint_module(const er_model *m, const char *key) {
    for (int f = 0; f < m->n_files; f++)
        for (size_t i = 0; i < er_st_count(m->files[f]); i++) {
            const er_st_tensor *t = er_st_at(m->files[f], i);
            size_t len = strlen(t->name), w = strlen(".weight");
            char module[512];
            if (t->ndim != 2 || len <= w || len - w >= sizeof module ||
                strcmp(t->name + len - w, ".weight"))
                continue;
            snprintf(module, sizeof module, "%.*s", (int)(len - w), t->name);
            if (peft_key_matches(module, "pooler.dense") && peft_key_matches(module, key))
                return true;
        }
    return false;
}

/* Whether `key` names, by peft's rule, one of the modules mods[0..n) of a
 * layer under its full name ("[prefix]<layers>.<i>.<name>"): a key may be
 * a suffix ("query", "attention.self.query") or a whole module name. */
static bool layer_key_matches(const er_model *m, const lora_module *mods, int n,
                              const char *key) {
    const er_layer_names *ln = m->arch->layer_names;
    for (int i = 0; i < m->cfg.num_layers; i++)
        for (int j = 0; j < n; j++) {
            char full[512];
            snprintf(full, sizeof full, "%s%s.%d.%s", m->arch->prefix, ln->layers, i,
                     mods[j].name);
            size_t pl = strlen(m->arch->prefix);
            if (peft_key_matches(full, key) || peft_key_matches(full + pl, key)) return true;
        }
    return false;
}

/* Each target_modules entry must name a Linear module of the layers or of
 * the served head (peft's suffix rule: "dense" also matches the pooler's or
 * the classification head's dense, as peft wraps them). */
static er_status check_targets(er_model *m, const json_t *c, er_err *err) {
    const json_t *t = json_object_get(c, "target_modules");
    const er_layer_names *n = m->arch->layer_names;
    if (json_is_string(t)) return ER_OK; /* a regex: the saved tensors decide (apply checks them) */
    if (!json_is_array(t))
        return er_set(err, ER_ERR_FORMAT, "adapter_config.json: 'target_modules' must be a list "
                      "or a string");
    lora_module mods[MAX_LAYER_MODULES + 2];
    int nl = layer_modules(n, NULL, mods);
    int nm = nl + head_modules(m, mods + nl);
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) {
        const char *key = json_string_value(e);
        bool ok = key && layer_key_matches(m, mods, nl, key);
        for (int j = nl; key && j < nm && !ok; j++) /* heads: their loaded (full) names */
            ok = peft_key_matches(m->head_names[mods[j].views[0] == &m->head_out], key) ||
                 peft_key_matches(mods[j].name, key);
        if (!ok && key && checkpoint_module(m, key)) continue; /* not computed: ignored */
        if (!ok) {
            char list[512];
            size_t len = 0;
            for (int j = 0; j < nm && len < sizeof list; j++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "",
                                        mods[j].name);
            return er_set(err, ER_ERR_UNSUPPORTED, "adapter_config.json: target_modules entry "
                          "'%.64s' is not one of the %s model's linear modules (%s)",
                          key ? key : "(not a string)", m->arch->name, list);
        }
    }
    return ER_OK;
}

er_status er_adapter_open(er_model *m, const char *dir, const er_model_params *p, er_err *err) {
    er_adapter *a = m->adapter = calloc(1, sizeof *a);
    if (!a) return er_set(err, ER_ERR_NOMEM, "out of memory");
    snprintf(a->dir, sizeof a->dir, "%s", dir);
    a->merge = p->lora_merge;
    char path[4096], *text = NULL, base[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st != ER_OK) return st;
    json_t *c = json_loadb(text, len, 0, NULL);
    free(text);
    if (!json_is_object(c)) {
        json_decref(c);
        return er_set(err, ER_ERR_FORMAT, "%s: invalid JSON", path);
    }
    if (er_bn_config_is_adapterhub(c)) { /* the `adapters` library's, not peft's */
        st = er_bn_open(m, a, c, dir, p, err);
        json_decref(c);
        return st;
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if ((st = er_st_open(path, &a->file, err)) != ER_OK) {
        json_decref(c);
        return st;
    }
    const char *bn = json_string_value(json_object_get(c, "base_model_name_or_path"));
    st = read_lora_fields(c, a, err);
    if (st == ER_OK && !bn && !p->base_dir)
        st = er_set(err, ER_ERR_FORMAT, "adapter_config.json: no 'base_model_name_or_path' and "
                    "no base given");
    if (st == ER_OK) st = er_adapter_resolve_base(bn ? bn : "", dir, p, base, sizeof base, err);
    if (st == ER_OK)
        st = er_adapter_task_config(m, base, json_string_value(json_object_get(c, "task_type")),
                                    saved_labels(a->file), NULL, err);
    if (st == ER_OK) {
        m->arch = er_arch_get(m->cfg.arch);
        if (!m->arch->layer_names)
            st = er_set(err, ER_ERR_UNSUPPORTED, "LoRA adapters are not supported for "
                        "architecture %s", m->arch->name);
    }
    a->config = c; /* target_modules are checked against the loaded model (apply) */
    if (st == ER_OK) snprintf(a->base, sizeof a->base, "%s", base);
    return st;
}

/* The saved tensor "base_model.model." + name, or + prefix + name. */
static const er_st_tensor *saved(const er_model *m, const char *name) {
    char key[600];
    snprintf(key, sizeof key, PEFT_PREFIX "%s", name);
    const er_st_tensor *t = er_st_find(m->adapter->file, key);
    size_t pl = strlen(m->arch->prefix);
    if (!t && strncmp(name, m->arch->prefix, pl)) { /* base saved bare, peft's model has the prefix */
        snprintf(key, sizeof key, PEFT_PREFIX "%s%s", m->arch->prefix, name);
        t = er_st_find(m->adapter->file, key);
    }
    return t;
}

const er_st_tensor *er_adapter_find(const er_model *m, const char *name) {
    if (!m->adapter) return NULL;
    if (m->adapter->bn) return er_bn_find(m->adapter, name); /* a static head's tensors */
    const er_st_tensor *t = saved(m, name);
    const char *dot = strrchr(name, '.');
    if (t || !dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias"))) return t;
    /* A LoRA-wrapped Linear inside a modules_to_save module (peft 0.13: the
     * classifier's dense when target_modules matched it before the
     * classifier was wrapped) is saved as <module>.base_layer.<param>. */
    char alt[600];
    snprintf(alt, sizeof alt, "%.*s.base_layer%s", (int)(dot - name), name, dot);
    return saved(m, alt);
}

/* A saved tensor as model-owned float32 of exactly [d0, d1]. */
static er_status adapter_floats(er_model *m, const char *name, int64_t d0, int64_t d1,
                                const float **out, er_err *err) {
    const er_st_tensor *t = er_st_find(m->adapter->file, name);
    if (!t) return er_set(err, ER_ERR_NOT_FOUND, "adapter tensor '%s' is missing", name);
    if (t->ndim != 2 || t->shape[0] != d0 || t->shape[1] != d1 || t->dtype == ER_DTYPE_OTHER)
        return er_set(err, ER_ERR_MISMATCH, "adapter tensor '%s' must be F32/F16/BF16 of shape "
                      "[%lld, %lld]", name, (long long)d0, (long long)d1);
    float *buf;
    er_status st = er_model_alloc_floats(m, (size_t)t->numel, &buf, err);
    if (st == ER_OK) st = er_st_to_f32(t, buf, err);
    *out = buf;
    return st;
}

/* The module "<layers>.<i>.<name>" (the arch prefix stripped) into *out
 * with *layer = i, or a head module (*layer = -1); false when the served
 * model has no such Linear. */
static bool find_module(er_model *m, const char *module, lora_module *out, int *layer) {
    const er_layer_names *n = m->arch->layer_names;
    lora_module mods[MAX_LAYER_MODULES + 2];
    size_t k = strlen(n->layers);
    *layer = -1;
    if (!strncmp(module, n->layers, k) && module[k] == '.') {
        char *end;
        long i = strtol(module + k + 1, &end, 10);
        if (end == module + k + 1 || *end != '.' || i < 0 || i >= m->cfg.num_layers) return false;
        *layer = (int)i;
        int nm = layer_modules(n, &m->layers[i], mods);
        for (int j = 0; j < nm; j++)
            if (!strcmp(end + 1, mods[j].name)) return *out = mods[j], true;
        return false;
    }
    int nh = head_modules(m, mods);
    for (int j = 0; j < nh; j++)
        if (!strcmp(module, mods[j].name)) return *out = mods[j], true;
    return false;
}

/* One view of a module: A [r, in] shared, B its rows of the module's B
 * ([l->out, r] at B); beside the base GEMM, or merged (W + scale * B A, as
 * peft's merge).  Where the model packs, a merged pair stays beside the
 * base's weight (er_lin.merge_a: added where the weight is widened to be
 * packed), so neither an fp32 copy of the merged weight nor a widening of
 * a narrow base stays; elsewhere (OpenBLAS) the view gets a model-owned
 * merged copy, which its forward reads. */
static er_status attach_view(er_model *m, er_lin *l, const float *A, const float *B, er_err *err) {
    er_adapter *a = m->adapter;
    if (!a->merge) {
        l->lora_a = A;
        l->lora_b = B;
        l->lora_r = a->r;
        l->lora_scale = a->scale;
        return ER_OK;
    }
    l->merge_a = A;
    l->merge_b = B;
    l->merge_r = a->r;
    l->merge_scale = a->scale;
    if (er_model_packs(m)) return ER_OK;
    float *w; // [out, in]
    er_status st = er_model_alloc_floats(m, (size_t)l->out * l->in, &w, err);
    if (st == ER_OK) st = er_lin_widen(l, w, err); /* the stored weight + the pair */
    if (st != ER_OK) return st;
    l->w = w;
    l->narrow = NULL;
    l->merge_a = l->merge_b = NULL;
    return ER_OK;
}

/* A LoRA pair on a module the base checkpoint has but the task does not
 * compute (the pooler of an embedding task): ignored, as it changes nothing. */
static bool unused_module(er_model *m, const char *pre, const char *module, int layer) {
    char w[600];
    snprintf(w, sizeof w, "%s%s.weight", pre, module);
    if (layer >= 0 || !(er_has_tensor(m, "", w) || er_has_tensor(m, m->arch->prefix, w)))
        return false;
    er_log(ER_LOG_INFO, "adapter %s: LoRA on '%s', which this task does not compute, ignored",
           m->adapter->dir, module);
    return true;
}

/* One lora_A tensor (its module's name given): attach A and B to the
 * module's er_lin(s), or merge them into copies of their weights. */
static er_status attach(er_model *m, const char *pre, const char *module, er_err *err) {
    er_adapter *a = m->adapter;
    int layer;
    lora_module mod;
    if (!find_module(m, module, &mod, &layer))
        return unused_module(m, pre, module, layer)
                   ? ER_OK
                   : er_set(err, ER_ERR_UNSUPPORTED, "adapter: LoRA on module '%.200s' is not "
                            "supported (not a linear module of the %s layers or of the served "
                            "head)", module, m->arch->name);
    if (layer >= 0 && !a->layer_listed[layer])
        return er_set(err, ER_ERR_FORMAT, "adapter: LoRA tensors for layer %d (%.200s), which "
                      "layers_to_transform leaves out", layer, module);
    if (layer >= 0 && layer < a->lowest) a->lowest = layer;
    a->n_adapted++;
    if (layer >= 0 && layer < m->skip_below) return ER_OK; /* runs from a shared stack below */
    int in = mod.views[0]->in, total = 0;
    for (int v = 0; v < mod.n_views; v++) total += mod.views[v]->out;
    char an[600], bn[600];
    snprintf(an, sizeof an, PEFT_PREFIX "%s%s.lora_A.weight", pre, module);
    snprintf(bn, sizeof bn, PEFT_PREFIX "%s%s.lora_B.weight", pre, module);
    const float *A, *B;
    er_status st = adapter_floats(m, an, a->r, in, &A, err); // [r, in]
    if (st == ER_OK) st = adapter_floats(m, bn, total, a->r, &B, err); // [total, r]
    for (int v = 0, row = 0; v < mod.n_views && st == ER_OK; row += mod.views[v++]->out)
        st = attach_view(m, mod.views[v], A, B + (size_t)row * a->r, err); // view v's rows of B
    return st;
}

/* Names a saved tensor that is neither LoRA on a layer nor part of the head. */
static bool head_tensor(const char *name) {
    static const char *const HEADS[] = {"classifier.", "qa_outputs.", "pooler.", "pre_classifier.",
                                        "head."};
    for (size_t i = 0; i < sizeof HEADS / sizeof *HEADS; i++)
        if (!strncmp(name, HEADS[i], strlen(HEADS[i]))) return true;
    return false;
}

er_status er_adapter_load_head(er_model *m, bool *own, er_err *err) {
    *own = false;
    return m->adapter && m->adapter->bn ? er_bn_load_head(m, m->adapter, own, err) : ER_OK;
}

/* Every saved tensor: LoRA pairs attached (or merged), head tensors left
 * to the head loader (er_adapter_find), anything else refused by name. */
static er_status apply_tensors(er_model *m, er_err *err) {
    er_adapter *a = m->adapter;
    const size_t pl = strlen(PEFT_PREFIX), ap = strlen(m->arch->prefix);
    for (size_t i = 0; i < er_st_count(a->file); i++) {
        const char *name = er_st_at(a->file, i)->name;
        if (strncmp(name, PEFT_PREFIX, pl))
            return er_set(err, ER_ERR_FORMAT, "adapter tensor '%.200s' is not under '"
                          PEFT_PREFIX "'", name);
        /* peft 0.13 also saves the LoRA of a modules_to_save module's
         * untouched original (its forward runs the saved copy): unused */
        if (strstr(name, ".original_module.")) continue;
        const char *mod = name + pl;
        const char *pre = "";
        if (!strncmp(mod, m->arch->prefix, ap)) {
            mod += ap;
            pre = m->arch->prefix;
        }
        char module[512];
        size_t len = strlen(mod), sa = strlen(".lora_A.weight");
        if (len > sa && !strcmp(mod + len - sa, ".lora_A.weight")) {
            snprintf(module, sizeof module, "%.*s", (int)(len - sa), mod);
            er_status st = attach(m, pre, module, err);
            if (st != ER_OK) return st;
        } else if (strstr(mod, "lora_") || !head_tensor(mod)) {
            if (strstr(mod, ".lora_B.weight")) continue; /* read with its lora_A */
            return er_set(err, ER_ERR_UNSUPPORTED, "adapter tensor '%.200s' is not supported "
                          "(LoRA A/B on the encoder layers and a saved head are)", name);
        }
    }
    return ER_OK;
}

er_status er_adapter_apply(er_model *m, er_err *err) {
    er_adapter *a = m->adapter;
    a->lowest = m->cfg.num_layers;
    if (a->bn) return er_bn_apply(m, a, err);
    er_status st = check_targets(m, a->config, err);
    if (st == ER_OK) st = apply_tensors(m, err);
    if (st == ER_OK && a->n_adapted && m->arch->adapted) st = m->arch->adapted(m, err);
    json_decref(a->config);
    a->config = NULL;
    if (st != ER_OK) return st;
    if (a->n_adapted)
        er_log(ER_LOG_INFO, "adapter %s: LoRA r=%d scale %g on %d modules from layer %d (%s) over "
               "base %s", a->dir, a->r, (double)a->scale, a->n_adapted, a->lowest,
               a->merge ? "merged" : "unmerged", a->base);
    return ER_OK;
}
