/* The adapter plumbing shared by PEFT LoRA (lora.c) and AdapterHub
 * bottleneck adapters (adapter_bn.c): the er_adapter a task's model carries,
 * base resolution and the task's config.  Not a public header: the model's
 * loader (model.c) sees adapters only through model_internal.h. */
#ifndef ER_ADAPTER_INTERNAL_H
#define ER_ADAPTER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "model_internal.h"

typedef struct er_bn_adapter er_bn_adapter;

struct er_adapter {
    er_st_file *file; /* LoRA: adapter_model.safetensors; NULL for a bottleneck adapter */
    char dir[4096];
    char base[4096];  /* the base model's directory, resolved */
    int r;
    float scale;
    bool merge;
    int lowest;       /* lowest adapted layer; num_layers when none */
    bool layer_listed[ER_MAX_LAYERS]; /* layers_to_transform (all when absent) */
    int n_adapted;    /* adapted modules (LoRA: nn.Linear; bottleneck: adapter blocks) */
    json_t *config;   /* LoRA: adapter_config.json, until er_adapter_apply */
    er_bn_adapter *bn; /* a bottleneck adapter's own state (adapter_bn.c), or NULL */
};

/* Where the adapter's base model (`name`, as its config gives it) lies,
 * written to out[n] as a real path: p->base_dir when set, else `name` when
 * absolute, else under p->model_root, else beside the adapter's directory
 * `dir`.  A model root, when set, must contain it.  ER_ERR_NOT_FOUND,
 * ER_ERR_INVALID_ARG (outside the root). */
er_status er_adapter_resolve_base(const char *name, const char *dir, const er_model_params *p,
                                  char *out, size_t n, er_err *err);

/* m->cfg from the base's config.json made into the task's: class <Family>
 * + the suffix of PEFT task type `task_type` ("SEQ_CLS", "TOKEN_CLS",
 * "QUESTION_ANS"; NULL or "FEATURE_EXTRACTION": the base's config as is),
 * `labels` output rows (0: the base's), and `id2label` (a JSON object
 * {"0": name, ...}, borrowed; NULL keeps the base's when its size agrees). */
er_status er_adapter_task_config(er_model *m, const char *base_dir, const char *task_type,
                                 int labels, const json_t *id2label, er_err *err);

/* True when adapter_config.json's object `c` is the AdapterHub `adapters`
 * library's (a "config" object, no PEFT "peft_type"). */
bool er_bn_config_is_adapterhub(const json_t *c);

/* Reads an AdapterHub adapter directory (its parsed adapter_config.json `c`,
 * borrowed): the bottleneck config (everything it does not implement refused
 * by name), adapter.safetensors, head_config.json + model_head.safetensors
 * when present; resolves the base into a->base and fills m->cfg / m->arch.
 * a->bn holds what it read (freed by er_bn_adapter_free). */
er_status er_bn_open(er_model *m, er_adapter *a, const json_t *c, const char *dir,
                     const er_model_params *p, er_err *err);

/* After the base's layers are loaded: checks every saved tensor's name and
 * shape, attaches each layer's adapters (er_layer_w.bn_att / bn_out) and
 * sets a->lowest and a->n_adapted. */
er_status er_bn_apply(er_model *m, er_adapter *a, er_err *err);

/* The prediction head from head_config.json into m->head_dense / head_act /
 * head_out; *own false when the adapter has none (the base's head serves). */
er_status er_bn_load_head(er_model *m, er_adapter *a, bool *own, er_err *err);

/* A static head's saved tensor `name` (the class's own name for it), or
 * NULL: it replaces the base checkpoint's (er_adapter_find). */
const er_st_tensor *er_bn_find(const er_adapter *a, const char *name);

/* Parses text[len] as an AdapterHub adapter_config.json (head false) or
 * head_config.json (head true) with every check er_bn_open makes of it, and
 * forgets the result: for the fuzz target (tests/fuzz/fuzz_adapter.c). */
er_status er_bn_parse_config(const char *text, size_t len, bool head, er_err *err);

void er_bn_adapter_free(er_bn_adapter *b);

#endif
