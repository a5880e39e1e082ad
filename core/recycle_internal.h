/* er_taskset's layout, shared by recycle.c (loading) and recycle_run.c
 * (the forward pass).  Not a public header. */
#ifndef ER_RECYCLE_INTERNAL_H
#define ER_RECYCLE_INTERNAL_H

#include "recycle.h"

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
} er_stack;

struct er_task {
    char name[65];
    er_model *model; /* owned; loaded with skip_below_layer = run_from unless it owns its stack */
    int cut;         /* declared cut, >= the set's */
    int run_from;    /* layers [set cut, run_from) run from the stack's model, the rest here */
    int stack;
    uint8_t fp[32];  /* the stack's fingerprint: the store namespace */
    const er_tokenizer *tok; /* one of the set's tokenizers, or NULL */
};

struct er_taskset {
    er_task *tasks; /* [n] */
    int n;
    er_stack *stacks; /* [n_stacks] */
    int n_stacks;
    int cut;
    er_store *store;
    er_tier *tier;       /* borrowed; NULL = none */
    er_tokenizer **toks; /* [n_toks] distinct loaded tokenizers, owned */
    char **tok_paths;    /* [n_toks] the path each was loaded from */
    int n_toks;
};

/* recycle_tokenizer.c: loads every task's tokenizer; frees them. */
er_status er_taskset_load_tokenizers(er_taskset *ts, const er_task_spec *specs,
                                     const char *fallback, er_err *err);
void er_taskset_free_tokenizers(er_taskset *ts);

/* BLAKE2b-256 over the lower-stack config fields, cut, and the tensors of
 * embeddings and layers [0, cut).  With tensors != NULL, also returns the
 * per-tensor hashes (caller frees).  Needs a fully loaded model. */
er_status er_fingerprint(const er_model *m, int cut, uint8_t fp[32], er_fp_tensor **tensors,
                         int *n_tensors, er_err *err);

#endif
