/* er_taskset's layout, shared by recycle.c (loading) and recycle_run.c
 * (the forward pass).  Not a public header. */
#ifndef ER_RECYCLE_INTERNAL_H
#define ER_RECYCLE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "gemm.h"
#include "recycle.h"

/* Slots for tasks (and stacks) a set holds over its life, added ones
 * included: the arrays never move, so a task pointer stays valid. */
#define ER_TASKSET_MIN_SLOTS 256

typedef struct {
    char name[48];
    uint8_t hash[16];
} er_fp_tensor;

typedef struct {
    uint8_t fp[32];
    const er_model *model; /* the owner task's model: runs embeddings and layers below cut */
    int owner;             /* task index */
    er_fp_tensor *tensors; /* [n_tensors] per-tensor hashes, for the "cannot share" warning */
    int n_tensors;
    int cut;               /* the store cut of this stack: the set's, or lower for an adapter */
    bool dead;             /* its model was freed (every task on it removed): never matched */
} er_stack;

struct er_task {
    char name[65];
    er_model *model; /* owned; loaded with skip_below_layer = run_from unless it owns its stack */
    int cut;         /* declared cut, >= the set's */
    int run_from;    /* layers [set cut, run_from) run from the stack's model, the rest here */
    int stack;
    uint8_t fp[32];  /* the stack's fingerprint: the store namespace */
    const er_tokenizer *tok; /* one of the set's tokenizers, or NULL */
    /* Run-time removal (recycle_tasks.c), under the set's mutex: a removed
     * task is no longer found by name; its weights are released once no
     * call holds it (refs) and no live task runs on its lower stack. */
    atomic_bool removed;
    int refs;
    bool unloaded; /* removed and its weights released (er_model_unload) */
};

struct er_taskset {
    er_task *tasks; /* [cap], the first n used (removed ones included) */
    atomic_int n;   /* published after the slot is complete: readers need no lock */
    er_stack *stacks; /* [cap], the first n_stacks used */
    atomic_int n_stacks;
    int cap;
    int cut;
    er_store *store;
    er_tier *tier;       /* borrowed; NULL = none */
    er_tokenizer **toks; /* [cap + 1] distinct loaded tokenizers, owned */
    char **tok_paths;    /* [cap + 1] the path each was loaded from */
    int n_toks;
    /* Run-time changes (recycle_tasks.c) */
    pthread_mutex_t *mu;       /* serialises add, remove, acquire, release */
    er_taskset_params p;       /* as loaded; the strings below are owned copies */
    char *model_root, *tokenizer;
    int max_hidden, max_inter, max_emb; /* what workers were sized for */
};

/* recycle_tokenizer.c: loads every task's tokenizer (one task's: _one);
 * frees them. */
er_status er_taskset_load_tokenizers(er_taskset *ts, const er_task_spec *specs,
                                     const char *fallback, er_err *err);
er_status er_taskset_load_tokenizer_one(er_taskset *ts, int i, const er_task_spec *spec,
                                        const char *fallback, er_err *err);

/* recycle_tasks.c: the slots and mutex of a new set (n tasks to load);
 * records the sizes workers are built for; frees the run-time state. */
er_status er_taskset_init_dynamic(er_taskset *ts, int n, const er_taskset_params *p, er_err *err);
void er_taskset_note_sizes(er_taskset *ts);
void er_taskset_free_dynamic(er_taskset *ts);

/* recycle.c: loads spec into ts->tasks[i] (fingerprint, share or own a
 * stack); on failure the slot may hold a model to free. */
er_status er_taskset_load_task(er_taskset *ts, int i, const er_task_spec *sp,
                               const er_taskset_params *p, er_err *err);
void er_taskset_free_tokenizers(er_taskset *ts);

/* BLAKE2b-256 over the lower-stack config fields, cut, and the tensors of
 * embeddings and layers [0, cut).  With tensors != NULL, also returns the
 * per-tensor hashes (caller frees).  Needs a fully loaded model. */
er_status er_fingerprint(const er_model *m, int cut, uint8_t fp[32], er_fp_tensor **tensors,
                         int *n_tensors, er_err *err);

/* The "numerics class" of a lower stack of config c run on GEMM backend b,
 * as the text the fingerprint hashes (buf, n bytes, always terminated):
 * empty for erserve's own kernels (AVX-512 and AVX2 give the same bits, so
 * hosts of either kind share a store or a memcached tier), OpenBLAS's
 * kernel set and version where OpenBLAS computes any of it (the OpenBLAS
 * backend; DeBERTa's relative-position terms on any backend), oneDNN's
 * version, kernel and ISA on the oneDNN backend.  A store hit
 * is thus served only to a process that would compute the same bits. */
void er_numerics_class(er_gemm_backend b, const er_config *c, char *buf, size_t n);

/* er_fingerprint (without the per-tensor hashes) as a process on backend b
 * would compute it: the key a host of another kind uses (tests). */
er_status er_fingerprint_on(const er_model *m, int cut, er_gemm_backend b, uint8_t fp[32],
                            er_err *err);

#endif
