/* sentence-transformers prompts: the `prompts` map and `default_prompt_name`
 * of a model directory's config_sentence_transformers.json.  A prompt is a
 * text prepended to every input before tokenization ("query: " for e5,
 * "Represent this sentence for searching relevant passages: " for bge), as
 * SentenceTransformer.encode(prompt_name=...) does.
 *
 * Ownership: er_prompts_load_dir / er_prompts_parse fill a caller-owned
 * er_prompts released by er_prompts_free.  Immutable afterwards; any thread. */
#ifndef ER_ST_PROMPTS_H
#define ER_ST_PROMPTS_H

#include <stddef.h>

#include "er_error.h"

#define ER_MAX_PROMPTS 256
#define ER_MAX_PROMPT_BYTES 4096

typedef struct {
    int n;
    char **names;       /* [n] */
    char **texts;       /* [n] */
    char *default_name; /* default_prompt_name, or NULL (absent or null) */
} er_prompts;

/* Parses config_sentence_transformers.json text.  `prompts` must map names
 * to strings and `default_prompt_name` (when not null) must name one of
 * them: otherwise ER_ERR_FORMAT naming the field.  Other keys are ignored.
 * On failure *p holds nothing to free. */
er_status er_prompts_parse(const char *json, size_t len, er_prompts *p, er_err *err);

/* dir/config_sentence_transformers.json; a directory without one has no
 * prompts (ER_OK, n = 0).  Errors name the file. */
er_status er_prompts_load_dir(const char *dir, er_prompts *p, er_err *err);

/* The text of prompt `name`, or NULL when there is none by that name. */
const char *er_prompts_get(const er_prompts *p, const char *name);

void er_prompts_free(er_prompts *p); /* NULL and zeroed accepted */

#endif
