/* Shared by the server suites: generated demo-like models (tiny preset, one
 * lower-stack seed, four heads) under a scratch directory. */
#ifndef ER_SERVER_TEST_UTIL_H
#define ER_SERVER_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKENIZER_JSON "tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json"

static char g_models[256];

/* Generates tiny models once per suite process; returns 0 on success. */
static inline int gen_models(const char *bin_dir) {
    snprintf(g_models, sizeof g_models, "%s/test-models", bin_dir);
    static const char *heads[] = {"seqcls", "tokcls", "embedding", "qa"};
    char cmd[1024];
    mkdir(g_models, 0755);
    for (int i = 0; i < 4; i++) {
        struct stat st;
        snprintf(cmd, sizeof cmd, "%s/%s/model.safetensors", g_models, heads[i]);
        if (stat(cmd, &st) == 0) continue;
        snprintf(cmd, sizeof cmd,
                 "%s/bin/erserve-genmodel --out %s/%s --preset tiny --head %s --seed 7 >/dev/null",
                 bin_dir, g_models, heads[i], heads[i]);
        if (system(cmd) != 0) return -1;
    }
    return 0;
}

/* Models that fit a real tokenizer (tests/tokenizer/data/), one directory
 * each with that tokenizer as its tokenizer.json, under a scratch directory
 * made once per suite process and removed when that process exits (libcheck's
 * forked test processes exit too: only the maker removes it). */
static char g_tok_models[64];
static pid_t g_tok_owner;

static inline void remove_tok_models(void) {
    if (getpid() != g_tok_owner || !g_tok_models[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tok_models);
    (void)system(cmd);
}

/* g_tok_models/name: `erserve-genmodel --preset tiny --seed 7 ARGS` and the
 * tokenizer file copied in.  Returns 0 on success. */
static inline int gen_tok_model(const char *bin_dir, const char *name, const char *args,
                         const char *tokenizer) {
    if (!g_tok_models[0]) {
        snprintf(g_tok_models, sizeof g_tok_models, "/tmp/erserve-tokm-XXXXXX");
        if (!mkdtemp(g_tok_models)) return -1;
        g_tok_owner = getpid();
        atexit(remove_tok_models);
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s/bin/erserve-genmodel --out %s/%s --preset tiny --seed 7 %s >/dev/null && "
             "cp %s %s/%s/tokenizer.json", bin_dir, g_tok_models, name, args, tokenizer,
             g_tok_models, name);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
