/* er_model: an encoder checkpoint loaded from a Hugging Face model directory.
 *
 * Loading reads config.json (see config.h) and the weights from
 * model.safetensors or the shards named in model.safetensors.index.json.
 * Every tensor the architecture needs is looked up by its Hugging Face name
 * and its dtype and shape are checked against the config.  F32 tensors are
 * used in place from the read-only mmap (when 4-byte aligned); F16 and BF16
 * tensors are converted once, at load, into owned float buffers.
 *
 * Ownership and thread-safety: an er_model is immutable after
 * er_model_load and may be shared by any number of threads and er_ctx
 * (encoder.h); er_model_free must come after every er_ctx using it is gone. */
#ifndef ER_MODEL_H
#define ER_MODEL_H

#include <stdbool.h>

#include "config.h"
#include "er_error.h"

typedef struct er_model er_model;

/* The number format of the weight GEMMs (gemm.h): fp32 (default), bf16
 * weights with fp32 sums (AVX512-BF16), or int8 weights per output channel
 * with int8 activations per token and int32 sums (AVX512-VNNI).  LayerNorm,
 * softmax, activations and attention stay fp32 in every mode. */
typedef enum { ER_COMPUTE_FP32 = 0, ER_COMPUTE_BF16 = 1, ER_COMPUTE_INT8 = 2 } er_compute;

/* "fp32" / "bf16" / "int8" -> *out; false for anything else. */
bool er_compute_parse(const char *s, er_compute *out);
const char *er_compute_name(er_compute c);

typedef struct {
    /* Embeddings and layers [0, skip_below_layer) are not loaded (not even
     * faulted in or converted): the model can then only run layers at or
     * above it.  Lets several tasks share one copy of a common lower stack. */
    int skip_below_layer;
    /* The weight GEMMs' number format.  bf16 and int8 are refused
     * (ER_ERR_UNSUPPORTED, naming the missing CPU feature) where the host
     * cannot run them. */
    er_compute compute;
    /* An embedding head leaves out the sentence-transformers Normalize
     * module (er_config.normalize still says whether the model has one): the
     * caller normalises, so that a client may ask for the raw pooled vector
     * (TEI's `normalize: false`) or shorten it before normalising
     * (Matryoshka `dimensions`).  Default false: the head normalises. */
    bool raw_embeddings;
    /* An embedding model's head returns every token's last hidden state
     * instead of pooling (head ER_HEAD_TOKEN_EMBEDDING, one row per token,
     * TEI's /embed_all).  ER_ERR_INVALID_ARG for a model with another head. */
    bool token_embeddings;
    /* For an adapter directory (adapter_config.json): the base model's
     * directory (NULL: adapter_config.json's base_model_name_or_path, or an
     * AdapterHub adapter's model_name, under
     * model_root when relative, else beside the adapter directory; with a
     * model_root it must lie inside), and
     * whether to merge each LoRA pair into a copy of its weight (W + s B A)
     * instead of applying it beside the base GEMM. */
    const char *base_dir;
    const char *model_root;
    bool lora_merge;
} er_model_params;

er_model_params er_model_default_params(void);

/* Loads the model in directory `dir` (or an adapter directory over its base:
 * PEFT LoRA or AdapterHub bottleneck, see er_model_params).  Returns ER_OK and *out, or:
 *   ER_ERR_NOT_FOUND   no config.json, or no safetensors weights (the message
 *                      says how to convert a pytorch_model.bin), or a missing
 *                      tensor (named)
 *   ER_ERR_UNSUPPORTED architecture or option refused by name
 *   ER_ERR_FORMAT / ER_ERR_MISMATCH  malformed files, dtype or shape that
 *                      disagrees with the config (tensor named)
 *   ER_ERR_IO, ER_ERR_NOMEM, ER_ERR_CAPACITY */
er_status er_model_load(const char *dir, const er_model_params *params, er_model **out,
                        er_err *err);

void er_model_free(er_model *m); /* NULL and half-built models accepted */
/* Releases the weights (mappings, converted and adapter tensors) but keeps
 * the config: readers of a task removed at run time still see what it was;
 * it can no longer run.  er_model_free afterwards. */
void er_model_unload(er_model *m);

er_compute er_model_compute(const er_model *m);

/* Drops the resident pages of stored (mmapped) weights that the forward
 * reads from packed copies (gemm.h); reading them again (the fingerprint)
 * re-faults them from the file.  Called at the end of er_model_load and by
 * the task set after fingerprinting; RSS only, results are unchanged. */
void er_model_trim(const er_model *m);

/* The validated configuration (valid until er_model_free). */
const er_config *er_model_config(const er_model *m);

/* Floats one sequence-or-token row of the head output holds: n_labels for
 * classification, 2 for QA (start, end), for embeddings hidden_size or the
 * last sentence-transformers Dense module's out_features, vocab_size for
 * sparse embeddings. */
int er_model_head_width(const er_model *m);

/* The longest sequence (tokens, specials included) the model's position
 * table allows: max_position_embeddings, less what the architecture reserves
 * (RoBERTa/XLM-R: padding_idx + 1). */
int er_model_max_seq_len(const er_model *m);

/* Calls fn for each tensor that determines the output of embeddings and
 * layers [0, cut), in a fixed order, with its Hugging Face name (without the
 * architecture prefix) and its float32 values.  Used to fingerprint a lower
 * stack.  Requires skip_below_layer == 0.  Returns ER_OK or fn's first
 * non-zero return as ER_ERR_INTERNAL. */
typedef int (*er_tensor_visit_fn)(void *user, const char *name, const float *data, size_t n);
/* The lowest layer an adapter changes (num_layers for a checkpoint without
 * one), and how many modules it adapts (LoRA: linear modules; bottleneck:
 * adapter blocks, up to two a layer). */
int er_model_lowest_adapted(const er_model *m);
int er_model_adapted_modules(const er_model *m);
/* "LoRA" or "bottleneck" for an adapter task, NULL for a plain checkpoint
 * (a static string). */
const char *er_model_adapter_kind(const er_model *m);
/* An adapter's resolved base model directory; NULL for a plain checkpoint. */
const char *er_model_base_dir(const er_model *m);

er_status er_model_visit_lower(const er_model *m, int cut, er_tensor_visit_fn fn, void *user,
                               er_err *err);

#endif
