/* libFuzzer target: request validation for every route.  The first byte picks
 * the route; the rest is the body.  Checks that a parse either fails with a
 * documented status or yields inputs that respect the limits, that the
 * error body is always valid JSON, and runs the reply builders on what
 * parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "reply.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    pr_route route = (pr_route)(data[0] % (PR_ROUTE_HF + 1));
    pr_limits lim = pr_default_limits();
    lim.max_inputs = 8;
    lim.max_ids = 16;
    lim.max_text = 256;
    pr_req r;
    er_err e = {0};
    er_status st = pr_parse(route, (const char *)data + 1, size - 1, &lim, &r, &e);
    if (st == ER_OK) {
        if (r.n_inputs < 1 || r.n_inputs > lim.max_inputs) abort();
        for (int i = 0; i < r.n_inputs; i++) {
            const pr_input *in = &r.inputs[i];
            if (in->kind == PR_IDS && (in->n_ids < 1 || in->n_ids > lim.max_ids)) abort();
            if (in->kind != PR_IDS && (in->text_len < 1 || in->text_len > lim.max_text)) abort();
        }
        /* Exercise the result builders on ids-derived logits. */
        const pr_input *in = &r.inputs[0];
        if (in->kind == PR_IDS) {
            static const char *const labels[] = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};
            float logits[16 * 5];
            pp_token tok[16];
            for (int i = 0; i < in->n_ids; i++) {
                for (int j = 0; j < 5; j++) logits[i * 5 + j] = (float)((in->ids[i] >> j) % 7);
                tok[i] = (pp_token){.token = (in->ids[i] & 1) ? "##x" : "x",
                                    .special = (in->ids[i] % 5) == 0};
            }
            json_decref(pr_tokcls_result(logits, in->n_ids, 5, labels, tok, false, "",
                                         r.aggregation, 1));
            json_decref(pr_seqcls_result(logits, 5, labels, r.top_k & 1, r.top_k, 0));
        }
        /* Every reply shape over n_inputs rows of 5 floats. */
        float rows[8 * 5];
        uint8_t hit[8];
        for (int i = 0; i < 8 * 5; i++) rows[i] = (float)((i * 7 + (int)size) % 11) - 5;
        for (int i = 0; i < 8; i++) hit[i] = (uint8_t)(i & 1);
        static const char *const lab5[] = {"a", "b", "c", "d", "e"};
        if (r.dimensions <= 5) /* the server refuses more than the hidden size */
            json_decref(pr_openai_embeddings(&r, rows, 5, 5, "t", 3));
        if (r.dimensions <= 5) json_decref(pr_tei_embed(&r, rows, 5, 5, r.top_k & 1));
        json_decref(pr_tei_embed_sparse(&r, rows, 5, 5));
        json_decref(pr_similarity(rows, 5, 5, r.n_inputs));
        json_decref(pr_tei_predict(&r, rows, 5, 5, lab5, r.top_k & 1));
        json_decref(pr_rerank(&r, rows, 5, 1 + r.top_k % 5));
        json_decref(pr_warm_reply("t", r.n_inputs, 3, hit));
        pr_req_free(&r);
    } else {
        int status = pr_status_of(st);
        if (status != 400 && status != 413 && status != 422 && status != 500) abort();
        if (!e.msg[0]) abort();
        size_t n;
        for (int api = PR_API_ERSERVE; api <= PR_API_TEI; api++) {
            int s2 = pr_error_status((pr_api)api, status, r.fault);
            char *body = pr_error_body((pr_api)api, s2, r.fault, e.msg, NULL, &n);
            json_t *j = body ? json_loads(body, 0, NULL) : NULL;
            if (!j) abort();
            json_decref(j);
            free(body);
        }
    }
    return 0;
}
