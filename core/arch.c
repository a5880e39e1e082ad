/* The architecture table (see arch.h): one entry per ER_ARCHITECTURES line. */
#include "arch.h"

#include <stdio.h>
#include <string.h>

#define ER_ARCH_ENTRY_(id, desc) [id] = &desc,
static const er_arch_desc *const ARCHS[ER_ARCH_COUNT] = {ER_ARCHITECTURES(ER_ARCH_ENTRY_)};
#undef ER_ARCH_ENTRY_

const er_arch_desc *er_arch_get(er_arch a) { return ARCHS[a]; }

const char *er_arch_name(er_arch a) {
    return (unsigned)a < ER_ARCH_COUNT ? ARCHS[a]->name : "unknown";
}

const er_arch_class *er_arch_find_class(const char *name, er_arch *arch) {
    for (int a = 0; a < ER_ARCH_COUNT; a++)
        for (const er_arch_class *c = ARCHS[a]->classes; c->name; c++)
            if (strcmp(c->name, name) == 0) {
                *arch = (er_arch)a;
                return c;
            }
    return NULL;
}

const char *er_arch_base_class(const char *model_type) {
    for (int a = 0; a < ER_ARCH_COUNT; a++)
        for (const er_arch_model_type *t = ARCHS[a]->model_types; t->model_type; t++)
            if (strcmp(t->model_type, model_type) == 0) return t->base_class;
    return NULL;
}

void er_arch_list_model_types(char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    for (int a = 0; a < ER_ARCH_COUNT; a++)
        for (const er_arch_model_type *t = ARCHS[a]->model_types; t->model_type && at < cap; t++)
            at += (size_t)snprintf(buf + at, cap - at, "%s%s", at ? ", " : "", t->model_type);
}
