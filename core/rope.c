/* Rotary position embeddings (encoder_internal.h): the cos/sin table is
 * computed once at load, in double and rounded once, and applied to q and k
 * in place in the "rotate half" layout every Hugging Face encoder with RoPE
 * uses (ModernBERT, NomicBERT, GTE v1.5): for i < half,
 *
 *   x'[i]        = x[i] cos(p f_i) - x[i + half] sin(p f_i)
 *   x'[i + half] = x[i + half] cos(p f_i) + x[i] sin(p f_i)
 *
 * with f_i = theta^(-2i / rot_dim), half = rot_dim / 2. */
#include "encoder_internal.h"

#include <math.h>

er_status er_rope_table_init(er_model *m, double theta, int rot_dim, int max_pos,
                             er_rope_table *t, er_err *err) {
    return er_rope_table_init_scaled(m, theta, 1.0, rot_dim, max_pos, t, err);
}

er_status er_rope_table_init_scaled(er_model *m, double theta, double freq_scale, int rot_dim,
                                    int max_pos, er_rope_table *t, er_err *err) {
    if (rot_dim < 2 || rot_dim % 2 != 0 || max_pos < 1 || !(theta > 1.0) ||
        !(freq_scale > 0.0))
        return er_set(err, ER_ERR_FORMAT, "rotary embedding: dimension %d, theta %g and %d "
                      "positions are not usable", rot_dim, theta, max_pos);
    const int half = rot_dim / 2;
    float *cs = NULL;
    er_status st = er_model_alloc_floats(m, 2 * (size_t)max_pos * half, &cs, err);
    if (st != ER_OK) return st;
    float *sn = cs + (size_t)max_pos * half;
    for (int i = 0; i < half; i++) {
        double f = freq_scale / pow(theta, (2.0 * i) / rot_dim);
        for (int p = 0; p < max_pos; p++) {
            cs[(size_t)p * half + i] = (float)cos(p * f); // [max_pos, half]
            sn[(size_t)p * half + i] = (float)sin(p * f); // [max_pos, half]
        }
    }
    *t = (er_rope_table){.cos = cs, .sin = sn, .max_pos = max_pos, .half = half};
    return ER_OK;
}

void er_rope_apply(const er_rope_table *t, float *x, int ld, int n_tokens, int n_heads,
                   int head_dim, const int32_t *positions) {
    const int half = t->half;
    for (int tok = 0; tok < n_tokens; tok++) {
        const float *c = t->cos + (size_t)positions[tok] * half; // [half]
        const float *s = t->sin + (size_t)positions[tok] * half; // [half]
        for (int h = 0; h < n_heads; h++) {
            float *a = x + (size_t)tok * ld + (size_t)h * head_dim; // [head_dim]
            float *b = a + half;
            for (int i = 0; i < half; i++) {
                float x1 = a[i], x2 = b[i];
                a[i] = x1 * c[i] - x2 * s[i];
                b[i] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}
