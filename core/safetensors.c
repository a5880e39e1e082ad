#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct er_st_file {
    void *map;           /* non-NULL when we own an mmap */
    size_t map_len;
    er_st_tensor *tensors;
    size_t n_tensors;
    char *names;         /* all tensor names, NUL-separated */
};

typedef struct {
    const char *name;
    size_t elem_size;
    er_dtype dtype;
} dtype_desc;

/* The safetensors spellings; the widths of the dtypes erserve does not
 * compute with are still needed to validate their byte sizes. */
static const dtype_desc DTYPES[] = {
    {"F32", 4, ER_DTYPE_FP32},    {"F16", 2, ER_DTYPE_FP16},       {"BF16", 2, ER_DTYPE_BF16},
    {"F64", 8, ER_DTYPE_OTHER},   {"I64", 8, ER_DTYPE_OTHER},      {"I32", 4, ER_DTYPE_OTHER},
    {"I16", 2, ER_DTYPE_OTHER},   {"I8", 1, ER_DTYPE_OTHER},       {"U8", 1, ER_DTYPE_OTHER},
    {"U16", 2, ER_DTYPE_OTHER},   {"U32", 4, ER_DTYPE_OTHER},      {"U64", 8, ER_DTYPE_OTHER},
    {"BOOL", 1, ER_DTYPE_OTHER},  {"F8_E4M3", 1, ER_DTYPE_OTHER},  {"F8_E5M2", 1, ER_DTYPE_OTHER},
};

static const dtype_desc *find_dtype(const char *s) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, s) == 0) return &DTYPES[i];
    return NULL;
}

bool er_st_in_map(const er_st_file *f, const void *p, size_t n) {
    const char *b = f->map, *q = p;
    return b && q >= b && q + n <= b + f->map_len;
}

void er_st_free(er_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    free(f->tensors);
    free(f->names);
    free(f);
}

size_t er_st_count(const er_st_file *f) { return f ? f->n_tensors : 0; }

const er_st_tensor *er_st_at(const er_st_file *f, size_t i) {
    return (f && i < f->n_tensors) ? &f->tensors[i] : NULL;
}

const er_st_tensor *er_st_find(const er_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

/* Reads a JSON integer in [0, max] (no reals, no negatives). */
static int get_uint(const json_t *v, uint64_t max, uint64_t *out) {
    if (!json_is_integer(v)) return 0;
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max) return 0;
    *out = (uint64_t)x;
    return 1;
}

static er_status parse_tensor(const char *name, const json_t *desc, size_t data_len,
                              er_st_tensor *t, uint64_t *begin, uint64_t *end, er_err *err) {
    if (!json_is_object(desc))
        return er_set(err, ER_ERR_FORMAT, "safetensors: tensor '%s': entry is not an object", name);
    const json_t *jd = json_object_get(desc, "dtype");
    const json_t *js = json_object_get(desc, "shape");
    const json_t *jo = json_object_get(desc, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2)
        return er_set(err, ER_ERR_FORMAT,
                      "safetensors: tensor '%s': needs string dtype, array shape, "
                      "and data_offsets [begin, end]", name);
    const dtype_desc *dt = find_dtype(json_string_value(jd));
    if (!dt)
        return er_set(err, ER_ERR_FORMAT, "safetensors: tensor '%s': unknown dtype '%.32s'", name,
                      json_string_value(jd));
    size_t ndim = json_array_size(js);
    if (ndim > ER_ST_MAX_DIMS)
        return er_set(err, ER_ERR_FORMAT, "safetensors: tensor '%s': rank %zu exceeds %d", name,
                      ndim, ER_ST_MAX_DIMS);
    uint64_t numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        uint64_t dim;
        if (!get_uint(json_array_get(js, d), (uint64_t)INT64_MAX, &dim))
            return er_set(err, ER_ERR_FORMAT,
                          "safetensors: tensor '%s': shape[%zu] is not a non-negative integer",
                          name, d);
        if (dim != 0 && numel > (uint64_t)INT64_MAX / dim)
            return er_set(err, ER_ERR_FORMAT, "safetensors: tensor '%s': element count overflows",
                          name);
        numel *= dim;
        t->shape[d] = (int64_t)dim;
    }
    if (!get_uint(json_array_get(jo, 0), data_len, begin) ||
        !get_uint(json_array_get(jo, 1), data_len, end) || *begin > *end)
        return er_set(err, ER_ERR_FORMAT,
                      "safetensors: tensor '%s': data_offsets outside the %zu-byte data section "
                      "or reversed", name, data_len);
    if (numel > (uint64_t)SIZE_MAX / dt->elem_size || *end - *begin != numel * dt->elem_size)
        return er_set(err, ER_ERR_FORMAT,
                      "safetensors: tensor '%s': %llu bytes at offsets, but dtype %s x shape "
                      "needs %llu", name, (unsigned long long)(*end - *begin), dt->name,
                      (unsigned long long)(numel * dt->elem_size));
    t->dtype = dt->dtype;
    t->dtype_name = dt->name;
    t->ndim = (int)ndim;
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)(*end - *begin);
    return ER_OK;
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

/* The header length of a safetensors image, checked against the bound and
 * the image's size. */
static er_status header_length(const unsigned char *bytes, size_t len, uint64_t *hlen,
                               er_err *err) {
    if (len < 8)
        return er_set(err, ER_ERR_FORMAT, "safetensors: file of %zu bytes is shorter than its "
                      "8-byte header length", len);
    *hlen = 0;
    for (int i = 7; i >= 0; i--) *hlen = (*hlen << 8) | bytes[i];
    if (*hlen > ER_ST_MAX_HEADER)
        return er_set(err, ER_ERR_CAPACITY, "safetensors: header length %llu exceeds the %u-byte "
                      "bound", (unsigned long long)*hlen, ER_ST_MAX_HEADER);
    if (*hlen > len - 8)
        return er_set(err, ER_ERR_FORMAT, "safetensors: header length %llu runs past the end of "
                      "the %zu-byte file (truncated?)", (unsigned long long)*hlen, len);
    return ER_OK;
}

/* Allocates f's tensor table and name buffer, and spans, for the header's
 * entries (all but __metadata__). */
static er_status alloc_table(er_st_file *f, json_t *root, span **spans, er_err *err) {
    size_t n = json_object_size(root);
    if (json_object_get(root, "__metadata__")) n--;
    if (n > ER_ST_MAX_TENSORS)
        return er_set(err, ER_ERR_CAPACITY, "safetensors: %zu tensors exceed the bound of %d", n,
                      ER_ST_MAX_TENSORS);
    size_t names_len = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) names_len += strlen(key) + 1;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->names = malloc(names_len ? names_len : 1);
    *spans = calloc(n ? n : 1, sizeof **spans);
    if (!f->tensors || !f->names || !*spans)
        return er_set(err, ER_ERR_NOMEM, "safetensors: out of memory for %zu tensors", n);
    return ER_OK;
}

/* Parses every tensor entry into f (names copied, data pointing into the
 * data section) and records its byte span. */
static er_status parse_tensors(er_st_file *f, json_t *root, const unsigned char *data,
                               size_t data_len, span *spans, er_err *err) {
    char *name_at = f->names;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val))
                return er_set(err, ER_ERR_FORMAT, "safetensors: __metadata__ is not an object");
            continue;
        }
        er_st_tensor *t = &f->tensors[f->n_tensors];
        span *sp = &spans[f->n_tensors];
        er_status st = parse_tensor(key, val, data_len, t, &sp->begin, &sp->end, err);
        if (st != ER_OK) return st;
        size_t kl = strlen(key) + 1;
        memcpy(name_at, key, kl);
        t->name = name_at;
        name_at += kl;
        t->data = data + sp->begin;
        sp->index = f->n_tensors++;
    }
    return ER_OK;
}

/* No two non-empty tensors may share bytes (sorts spans). */
static er_status check_overlaps(const er_st_file *f, span *spans, er_err *err) {
    qsort(spans, f->n_tensors, sizeof *spans, span_cmp);
    /* Sorted by begin: each non-empty span must start at or after the end of
     * the previous non-empty one.  Empty tensors occupy no bytes. */
    const span *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        if (spans[i].begin == spans[i].end) continue;
        if (prev && spans[i].begin < prev->end)
            return er_set(err, ER_ERR_FORMAT, "safetensors: tensors '%s' and '%s' overlap",
                          f->tensors[prev->index].name, f->tensors[spans[i].index].name);
        prev = &spans[i];
    }
    return ER_OK;
}

er_status er_st_parse(const void *buf, size_t len, er_st_file **out, er_err *err) {
    *out = NULL;
    const unsigned char *bytes = buf;
    uint64_t hlen = 0;
    er_status st = header_length(bytes, len, &hlen, err);
    if (st != ER_OK) return st;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)bytes + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return er_set(err, ER_ERR_FORMAT, "safetensors: header is not valid JSON: %s (at byte %d)",
                      jerr.text, jerr.position);
    er_st_file *f = calloc(1, sizeof *f);
    span *spans = NULL;
    if (!f)
        st = er_set(err, ER_ERR_NOMEM, "safetensors: out of memory");
    else if (!json_is_object(root))
        st = er_set(err, ER_ERR_FORMAT, "safetensors: header is not a JSON object");
    else if ((st = alloc_table(f, root, &spans, err)) == ER_OK &&
             (st = parse_tensors(f, root, bytes + 8 + hlen, len - 8 - (size_t)hlen, spans, err)) == ER_OK)
        st = check_overlaps(f, spans, err);
    free(spans);
    json_decref(root);
    if (st != ER_OK) {
        er_st_free(f);
        return st;
    }
    *out = f;
    return ER_OK;
}

er_status er_st_open(const char *path, er_st_file **out, er_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return er_set(err, ER_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return er_set(err, ER_ERR_IO, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size < 8) {
        close(fd);
        return er_set(err, ER_ERR_FORMAT, "%s: not a safetensors file (%lld bytes)", path,
                      (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return er_set(err, ER_ERR_IO, "cannot mmap %s: %s", path, strerror(e));
    er_status st = er_st_parse(map, len, out, err);
    if (st != ER_OK) {
        munmap(map, len);
        if (err) {
            char inner[ER_ERR_MSG_MAX];
            memcpy(inner, err->msg, sizeof inner);
            er_set(err, st, "%s: %s", path, inner);
        }
        return st;
    }
    (*out)->map = map;
    (*out)->map_len = len;
    return ER_OK;
}

float er_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float er_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void er_st_range_to_f32(const er_st_tensor *t, int64_t first, int64_t n, float *dst) {
    const unsigned char *src = t->data;
    if (t->dtype == ER_DTYPE_FP32) {
        memcpy(dst, src + (size_t)first * sizeof(float), (size_t)n * sizeof(float));
        return;
    }
    src += (size_t)first * 2;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
        dst[i] = t->dtype == ER_DTYPE_FP16 ? er_f16_to_f32(h) : er_bf16_to_f32(h);
    }
}

er_status er_st_to_f32(const er_st_tensor *t, float *dst, er_err *err) {
    switch (t->dtype) {
    case ER_DTYPE_FP32:
    case ER_DTYPE_FP16:
    case ER_DTYPE_BF16:
        er_st_range_to_f32(t, 0, t->numel, dst);
        return ER_OK;
    case ER_DTYPE_INT8: /* never parsed from a safetensors header */
    case ER_DTYPE_OTHER:
        break;
    }
    return er_set(err, ER_ERR_UNSUPPORTED, "tensor '%s' has dtype %s; erserve computes with F32, "
                  "F16 or BF16 weights", t->name, t->dtype_name);
}
