/* Shared by the server suites: generated demo-like models (tiny preset, one
 * lower-stack seed, four heads) under a scratch directory. */
#ifndef ER_SERVER_TEST_UTIL_H
#define ER_SERVER_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOKENIZER_JSON "tests/tokenizer/data/all-MiniLM-L6-v2.tokenizer.json"

static char g_models[256];

/* Generates tiny models once per suite process; returns 0 on success. */
static int gen_models(const char *bin_dir) {
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

#endif
