/* config_sentence_transformers.json prompts (see st_prompts.h). */
#include "st_prompts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "er_io.h"

void er_prompts_free(er_prompts *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->names[i]);
        free(p->texts[i]);
    }
    free(p->names);
    free(p->texts);
    free(p->default_name);
    memset(p, 0, sizeof *p);
}

const char *er_prompts_get(const er_prompts *p, const char *name) {
    for (int i = 0; p && name && i < p->n; i++)
        if (strcmp(p->names[i], name) == 0) return p->texts[i];
    return NULL;
}

static er_status parse_map(json_t *m, er_prompts *p, er_err *err) {
    if (!json_is_object(m)) return er_set(err, ER_ERR_FORMAT, "`prompts` must be an object of strings");
    size_t n = json_object_size(m);
    if (n > ER_MAX_PROMPTS) return er_set(err, ER_ERR_FORMAT, "`prompts` has %zu entries, more than %d", n, ER_MAX_PROMPTS);
    p->names = calloc(n ? n : 1, sizeof *p->names);
    p->texts = calloc(n ? n : 1, sizeof *p->texts);
    if (!p->names || !p->texts) return er_set(err, ER_ERR_NOMEM, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!json_is_string(v)) return er_set(err, ER_ERR_FORMAT, "`prompts.%.64s` must be a string", k);
        if (json_string_length(v) > ER_MAX_PROMPT_BYTES)
            return er_set(err, ER_ERR_FORMAT, "`prompts.%.64s` is longer than %d bytes", k, ER_MAX_PROMPT_BYTES);
        p->names[p->n] = strdup(k);
        p->texts[p->n] = strdup(json_string_value(v));
        p->n++;
        if (!p->names[p->n - 1] || !p->texts[p->n - 1]) return er_set(err, ER_ERR_NOMEM, "out of memory");
    }
    return ER_OK;
}

er_status er_prompts_parse(const char *json, size_t len, er_prompts *p, er_err *err) {
    memset(p, 0, sizeof *p);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return er_set(err, ER_ERR_FORMAT, "invalid JSON at line %d: %s", je.line, je.text);
    er_status st = ER_OK;
    json_t *m = json_object_get(root, "prompts"), *d = json_object_get(root, "default_prompt_name");
    if (!json_is_object(root)) st = er_set(err, ER_ERR_FORMAT, "not a JSON object");
    else if (m && !json_is_null(m)) st = parse_map(m, p, err);
    if (st == ER_OK && d && !json_is_null(d)) {
        if (!json_is_string(d)) st = er_set(err, ER_ERR_FORMAT, "`default_prompt_name` must be a string");
        else if (!er_prompts_get(p, json_string_value(d)))
            st = er_set(err, ER_ERR_FORMAT, "`default_prompt_name` `%.64s` is not a key of `prompts`",
                        json_string_value(d));
        else if (!(p->default_name = strdup(json_string_value(d))))
            st = er_set(err, ER_ERR_NOMEM, "out of memory");
    }
    json_decref(root);
    if (st != ER_OK) er_prompts_free(p);
    return st;
}

er_status er_prompts_load_dir(const char *dir, er_prompts *p, er_err *err) {
    memset(p, 0, sizeof *p);
    char path[4096];
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", dir);
    char *text = NULL;
    size_t len = 0;
    er_status st = er_read_file(path, ER_MAX_CONFIG_BYTES, &text, &len, err);
    if (st == ER_ERR_NOT_FOUND) return er_clear(err), ER_OK;
    if (st != ER_OK) return st;
    st = er_prompts_parse(text, len, p, err);
    free(text);
    if (st != ER_OK) {
        er_err inner = *err;
        er_set(err, st, "%s: %s", path, inner.msg);
    }
    return st;
}
