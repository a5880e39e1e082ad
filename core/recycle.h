/* Embedding recycling: named tasks that share a frozen lower stack, and the
 * forward pass that computes the lower layers of a sequence once, keeps the
 * layer-`cut` activations in the store (store.h), and afterwards runs only the
 * task's upper layers and head.
 *
 *   er_taskset  immutable after load; shared by all workers (thread-safe reads)
 *   er_worker   one per compute thread: an er_ctx plus staging buffers, sized
 *               once at init; er_run / er_warm never allocate.
 *
 * Lower-stack sharing: at load each task's lower stack is fingerprinted
 * (BLAKE2b over the config fields that affect layers [0, cut) and the bytes
 * of the embeddings and those layers).  Tasks with equal fingerprints share
 * one loaded copy of those weights and one key namespace in the store; a task
 * whose lower layers differ gets its own, with a warning saying why.  A task
 * may declare a higher cut of its own; it then runs the shared layers between
 * the store's cut and its own cut from the shared stack.
 *
 * Adapter tasks (a PEFT LoRA directory, model.h) load over their base's
 * weights; when all their adapters sit at or above the cut they fingerprint
 * as the base and share its stack and store namespace.  An adapter below the
 * cut lowers that task's store cut to its lowest adapted layer (its own
 * stack and namespace, logged) — or fails the load when the set's cut was
 * given explicitly (params.cut >= 0). */
#ifndef ER_RECYCLE_H
#define ER_RECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "encoder.h"
#include "er_error.h"
#include "model.h"
#include "store.h"
#include "tier.h"
#include "tokenizer.h"

typedef struct er_taskset er_taskset;
typedef struct er_task er_task;
typedef struct er_worker er_worker;

typedef struct {
    const char *name; /* [A-Za-z0-9_.-]{1,64} */
    const char *dir;  /* Hugging Face model directory with a head */
    int cut;          /* this task's own cut; 0 = the set's cut */
    /* Weight-GEMM number format (model.h; zero = fp32).  Part of the
     * lower-stack fingerprint, so tasks in different modes never share a
     * stack or store keys. */
    er_compute compute;
} er_task_spec;

typedef struct {
    int cut;                  /* store cut layer; -1 = half the layers (default) */
    const char *store_path;   /* LMDB directory; NULL = no store, always compute */
    er_store_params store;    /* budget, dtype, ... (store.h) */
    const char *tokenizer;    /* fallback for tasks whose directory has no tokenizer; may be NULL */
    bool raw_embeddings;      /* embedding heads skip Normalize (er_model_params) */
    /* NULL, or one flag per spec: load that task's embedding model unpooled,
     * every token's last hidden state (er_model_params.token_embeddings) */
    const bool *token_embeddings;
    er_tier *tier;            /* optional shared second tier (tier.h), asked on a store miss
                                 and written with every computed value; borrowed (outlives
                                 the set); needs a store, and the store's dtype */
    const char *model_root;   /* where adapters' base_model_name_or_path are looked up; may be NULL */
    bool lora_merge;          /* merge LoRA pairs into copies of their weights (model.h) */
} er_taskset_params;

er_taskset_params er_taskset_default_params(void);

/* Loads every task, fingerprints and shares lower stacks, opens the store,
 * and loads each task's tokenizer: its directory's tokenizer.json or
 * vocab.txt, else the set's fallback (p->tokenizer); tasks with the same
 * path share one loaded tokenizer, owned by the set.  Logs (er_log.h) a
 * warning for each task that cannot share a stack or its declared cut, and
 * one info line per lower stack naming its tasks.
 * Errors name the task: ER_ERR_INVALID_ARG (bad or duplicate name, cut out of
 * range), any er_model_load or er_tokenizer_load error, ER_ERR_STORE. */
er_status er_taskset_load(const er_task_spec *specs, int n, const er_taskset_params *p,
                          er_taskset **out, er_err *err);
void er_taskset_free(er_taskset *ts); /* NULL and half-built accepted */

/* Slots, in load order: removed tasks keep their slot (er_task_live says
 * false; their model's config stays readable, its weights may be gone). */
int er_taskset_count(const er_taskset *ts);
const er_task *er_taskset_at(const er_taskset *ts, int i);
const er_task *er_taskset_find(const er_taskset *ts, const char *name); /* live; NULL if absent */

/* ---- tasks added and removed while serving (recycle_tasks.c) ----
 * Thread-safe against each other and against running workers.
 *
 * er_taskset_add loads spec with the set's load parameters (cut, model
 * root, LoRA merge), fingerprints it and shares a lower stack as at load —
 * so a task whose lower stack equals a served one hits the store at once.
 * Refused: a name already served (ER_ERR_INVALID_ARG), sizes beyond what
 * the workers were built for (ER_ERR_UNSUPPORTED), no free slot
 * (ER_ERR_CAPACITY), any load error.
 *
 * er_taskset_remove: the task is no longer found by name (ER_ERR_NOT_FOUND
 * when it was not); calls that acquired it finish first — its weights are
 * released at the last er_task_release (kept while live tasks run on its
 * lower stack; its config stays readable). */
er_status er_taskset_add(er_taskset *ts, const er_task_spec *spec, er_err *err);
er_status er_taskset_remove(er_taskset *ts, const char *name, er_err *err);
/* A call's hold on a task for as long as it uses it: false when it was
 * removed (then nothing to release). */
bool er_task_acquire(const er_taskset *ts, const er_task *t);
void er_task_release(const er_taskset *ts, const er_task *t);
bool er_task_live(const er_task *t);
/* Whether worker w (built before t was added) can run t: its scratch fits
 * t's sizes and family. */
bool er_worker_fits(const er_worker *w, const er_task *t);
int er_taskset_cut(const er_taskset *ts);
er_store *er_taskset_store(const er_taskset *ts); /* NULL when running without a store */
er_tier *er_taskset_tier(const er_taskset *ts);   /* NULL when there is no second tier */
int er_taskset_lower_stacks(const er_taskset *ts); /* distinct shared lower stacks */

const char *er_task_name(const er_task *t);
const er_model *er_task_model(const er_task *t); /* its config and head; see model.h */
int er_task_cut(const er_task *t);
int er_task_lower_stack(const er_task *t);       /* index of its shared stack */
const uint8_t *er_task_fingerprint(const er_task *t); /* 32 bytes */
/* The task's tokenizer (owned by the set; thread-safe to use), or NULL when
 * its directory has none and the set has no fallback. */
const er_tokenizer *er_task_tokenizer(const er_task *t);

/* Per-call timings and counts, for metrics (nanoseconds). */
typedef struct {
    uint64_t lower_ns, store_read_ns, store_write_ns, upper_ns, head_ns;
    int hits, misses;
    int tier_hits; /* of the hits: found in the second tier (after a store miss) */
} er_run_stats;

/* The longest input, in tokens, that the server and erserve-cache accept for
 * task t: its model's positions (er_model_max_seq_len; RoBERTa's reserved
 * padding positions excluded), lowered to cap when cap > 0.  It does not
 * depend on the batching budget: an input longer than a batch's token
 * budget runs as a batch of its own (er_worker_params).  It is what
 * truncation cuts to, and so part of the store key (er_key_salt): both
 * programs take it from here so that a store warmed by one is hit by the
 * other. */
int er_task_max_input_tokens(const er_task *t, int cap);

/* The largest er_task_max_input_tokens(t, cap) over the set's tasks: the
 * longest sequence one worker must be able to run alone. */
int er_taskset_longest_input(const er_taskset *ts, int cap);

/* Worker scratch for batches of up to batch_tokens tokens and batch_seqs
 * sequences, and for any one input of the set alone (up to
 * er_taskset_longest_input(ts, cap) tokens): max_tokens is the larger of the
 * two.  The scratch is allocated once (er_worker_init) for that many tokens:
 * er_worker_bytes says how much. */
er_ctx_params er_worker_params(const er_taskset *ts, int batch_tokens, int batch_seqs, int cap);

/* The store-key salt of a request: the settings that change what a list of
 * ids means for the stored activations (the token cap that truncated it, and
 * whether truncation was on).  The server's routes, /v1/cache/warm and
 * erserve-cache all key with this one function, so a store warmed by one is
 * hit by the others. */
uint64_t er_key_salt(int max_tokens, bool truncate);

/* p NULL: er_worker_params(ts, 4096, 64, 0), batches as er_ctx_default_params
 * and every task's whole positions. */
er_status er_worker_init(const er_taskset *ts, const er_ctx_params *p, er_worker **out,
                         er_err *err);
void er_worker_free(er_worker *w); /* NULL accepted */

/* Bytes of scratch w holds (its ctx, er_ctx_bytes, and its staging
 * buffers): per token of max_tokens, the ctx's plus 2 * hidden floats and 2
 * ids. */
size_t er_worker_bytes(const er_worker *w);

/* Runs task t on a packed batch (encoder.h).  For each sequence the store is
 * consulted with key = BLAKE2b(fingerprint, cut, ids, type ids, key_salt);
 * misses run their lower layers together and are written back (a store
 * failure never fails the call: the result is just not cached).  Then all
 * sequences run layers [cut, L) and the head together.
 *   out:       er_head_out_size(er_task_model(t), b) floats
 *   cache_hit: [n_seqs] 1 = served from the store, or NULL
 *   key_salt:  folds request settings that change ids' meaning (truncation)
 * With fp32 storage the result is bit-identical to er_forward. */
er_status er_run(er_worker *w, const er_task *t, const er_batch *b, uint64_t key_salt, float *out,
                 uint8_t *cache_hit, er_run_stats *stats, er_err *err);

/* Lower layers only: fills the store for b (cache_hit as above). */
er_status er_warm(er_worker *w, const er_task *t, const er_batch *b, uint64_t key_salt,
                  uint8_t *cache_hit, er_run_stats *stats, er_err *err);

#endif
