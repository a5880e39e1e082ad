/* erserve-cache: fill, inspect, check and empty an activation store.
 *
 *   erserve-cache --store PATH [--model DIR] [--cut K] [--dtype fp32|fp16|int8]
 *                 [--budget BYTES[K|M|G]] [--tokenizer PATH] [--max-tokens N]
 *                 [--salt N] COMMAND
 *   warm [FILE]   JSONL (FILE or stdin): {"id":..., "text": "..."} or
 *                 {"input_ids": [...], "token_type_ids"?: [...]}; computes the
 *                 lower layers of every document not yet cached (resumable),
 *                 with a progress bar on a terminal and documents/s
 *   stats         the store's counters
 *   verify        checks every value's header and checksum and the indexes;
 *                 exit status 1 when any is bad.  --repair (store closed
 *                 elsewhere) deletes bad values, rebuilds indexes that
 *                 disagree, and salvages a damaged or truncated file: every
 *                 readable value copied into a fresh store that replaces it
 *   purge         deletes every value
 * warm needs --model (the same directory and cut the server uses, so the keys
 * match); text needs a tokenizer (--tokenizer, default the model directory).
 * Documents are truncated to --max-tokens (default 512, capped by the model)
 * and keyed with the salt the server gives requests with truncation on
 * (er_key_salt; --salt overrides), so a warmed store serves the server's
 * default requests as hits when both use the same --max-tokens.
 * Diagnostics go through er_log ("erserve-cache: error: ..."); the progress
 * bar and the summary line of warm go to stderr, the other commands' output
 * to stdout. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "er_log.h"
#include "er_util.h"
#include "recycle.h"
#include "tokenizer.h"

#define BATCH_SEQS 16
#define BATCH_TOKENS 4096 /* budget of one batch; a longer document runs alone */

typedef struct {
    const char *store, *model, *tokenizer, *cmd, *file;
    int cut, max_tokens;
    long long salt; /* -1: derived from max_tokens */
    bool repair;
    er_store_params sp;
} opts;

static void usage(FILE *f) {
    fprintf(f, "usage: erserve-cache --store PATH [--model DIR] [--cut K] [--dtype fp32|fp16|int8]\n"
               "                     [--budget BYTES[K|M|G]] [--tokenizer PATH] [--max-tokens N]\n"
               "                     [--salt N] [--repair] [--version]\n"
               "                     warm [FILE] | stats | verify | purge\n"
               "  warm    reads JSONL {\"id\",\"text\"} or {\"input_ids\":[...]} (FILE or stdin) and\n"
               "          stores the lower layers of every document not cached yet (needs --model)\n"
               "  stats   prints the store's counters\n"
               "  verify  checks every value and the indexes; exit 1 if any is bad; --repair (with\n"
               "          erserve stopped) deletes bad values, rebuilds the indexes and salvages\n"
               "          a damaged or truncated store into a fresh one\n"
               "  purge   deletes every value\n"
               "warm truncates to --max-tokens (default 0: the model's positions, as the\n"
               "server's --max-tokens) and keys documents as the server keys truncated\n"
               "requests unless --salt is given.\n");
}

/* Reports a bad command line (main exits 2). */
static int bad_arg(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));
static int bad_arg(const char *fmt, const char *arg) {
    er_log(ER_LOG_ERROR, fmt, arg);
    return -1;
}

static int parse_args(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->cut = -1;
    o->max_tokens = 0; /* the model's positions, as the server */
    o->salt = -1;
    o->sp = er_store_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(a, "--version")) { printf("erserve-cache %s\n", ER_VERSION); exit(0); }
        else if (!strcmp(a, "--repair")) o->repair = true;
        else if (a[0] == '-' && a[1] == '-' && !v) return bad_arg("%s needs a value", a);
        else if (!strcmp(a, "--store")) o->store = argv[++i];
        else if (!strcmp(a, "--model")) o->model = argv[++i];
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = argv[++i];
        else if (!strcmp(a, "--cut")) o->cut = atoi(argv[++i]);
        else if (!strcmp(a, "--max-tokens")) {
            if ((o->max_tokens = atoi(argv[++i])) < 0) return bad_arg("bad --max-tokens %s", argv[i]);
        } else if (!strcmp(a, "--salt")) o->salt = strtoll(argv[++i], NULL, 0);
        else if (!strcmp(a, "--dtype")) {
            int d = er_store_dtype_parse(argv[++i]);
            if (d < 0) return bad_arg("unknown dtype %s", argv[i]);
            o->sp.dtype = (er_dtype)d;
        } else if (!strcmp(a, "--budget")) {
            er_err e;
            if (er_parse_bytes(argv[++i], "--budget", &o->sp.budget_bytes, &e) != ER_OK)
                return bad_arg("%s", e.msg);
            if (o->sp.budget_bytes == 0) return bad_arg("bad --budget %s", argv[i]);
        } else if (a[0] == '-') return bad_arg("unknown option %s", a);
        else if (!o->cmd) o->cmd = a;
        else if (!o->file) o->file = a;
        else return bad_arg("unexpected argument %s", a);
    }
    if (!o->store || !o->cmd) return usage(stderr), -1;
    return 0;
}

static void print_stats(const er_store_counters *c) {
    printf("entries        %llu\nbytes          %llu\nbudget_bytes   %llu\nmap_bytes      %llu\n"
           "hits           %llu\nmisses         %llu\ncorrupt        %llu\ninserts        %llu\n"
           "evictions      %llu\ndropped        %llu\nwrite_errors   %llu\ncommits        %llu\n"
           "no_space       %llu\ndamaged        %llu\n",
           (unsigned long long)c->entries, (unsigned long long)c->bytes,
           (unsigned long long)c->budget_bytes, (unsigned long long)c->map_bytes,
           (unsigned long long)c->hits, (unsigned long long)c->misses,
           (unsigned long long)c->corrupt, (unsigned long long)c->inserts,
           (unsigned long long)c->evictions, (unsigned long long)c->dropped,
           (unsigned long long)c->write_errors, (unsigned long long)c->commits,
           (unsigned long long)c->no_space, (unsigned long long)c->damaged);
    if (c->reads)
        printf("read_us_mean   %.1f\nread_us_max    %.1f\n", c->read_ns_sum / 1e3 / (double)c->reads,
               c->read_ns_max / 1e3);
}

/* ---- warm ---- */

typedef struct {
    er_worker *w;
    const er_task *t;
    er_tokenizer *tok;
    int max_len;
    uint64_t salt;
    int n_seqs, n_tok, seq_len[BATCH_SEQS];
    int cap;                /* max(BATCH_TOKENS, max_len) */
    int32_t *ids, *types;   /* [cap] the batch, packed */
    int32_t *buf, *tbuf;    /* [max_len] one ids document */
    bool has_types;
    long docs, computed, cached, skipped;
    long total; /* lines in the file, for the progress bar; 0 = unknown */
    uint64_t t0_ns, last_draw_ns;
    bool tty;
} warm_state;

static double seconds_since(uint64_t t0_ns) { return (double)(er_now_ns() - t0_ns) * 1e-9; }

static void draw(warm_state *s, bool final) {
    if (!s->tty || (!final && er_now_ns() - s->last_draw_ns < 200000000u)) return;
    s->last_draw_ns = er_now_ns();
    double dt = seconds_since(s->t0_ns);
    double rate = s->docs / (dt > 1e-9 ? dt : 1e-9);
    if (s->total > 0) {
        int w = 30, fill = (int)(w * (double)s->docs / (double)s->total);
        fprintf(stderr, "\r[%.*s%*s] %ld/%ld docs  %.1f docs/s ", fill,
                "##############################", w - fill, "", s->docs, s->total, rate);
    } else {
        fprintf(stderr, "\r%ld docs  %.1f docs/s ", s->docs, rate);
    }
    if (final) fputc('\n', stderr);
}

/* A diagnostic during warm: on its own line, below the progress bar. */
#define warm_error(s, ...)                     \
    do {                                       \
        if ((s)->tty) fputc('\n', stderr);     \
        er_log(ER_LOG_ERROR, __VA_ARGS__);     \
    } while (0)

static int flush_batch(warm_state *s) {
    if (!s->n_seqs) return 0;
    er_batch b = {s->n_seqs, s->seq_len, s->ids, s->has_types ? s->types : NULL};
    uint8_t hit[BATCH_SEQS];
    er_err e;
    if (er_warm(s->w, s->t, &b, s->salt, hit, NULL, &e) != ER_OK) {
        warm_error(s, "warm: %s", e.msg);
        return -1;
    }
    for (int i = 0; i < s->n_seqs; i++) {
        if (hit[i]) s->cached++;
        else s->computed++;
    }
    s->docs += s->n_seqs;
    s->n_seqs = s->n_tok = 0;
    s->has_types = false;
    draw(s, false);
    return 0;
}

/* Appends one document's ids to the batch, flushing first when full. */
static int add_doc(warm_state *s, const int32_t *ids, const int32_t *types, int n) {
    if (n < 1 || n > s->max_len) {
        s->skipped++;
        return 0;
    }
    if (s->n_seqs == BATCH_SEQS || (s->n_seqs > 0 && s->n_tok + n > BATCH_TOKENS))
        if (flush_batch(s)) return -1;
    memcpy(s->ids + s->n_tok, ids, (size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) s->types[s->n_tok + i] = types ? types[i] : 0;
    s->has_types |= types != NULL;
    s->seq_len[s->n_seqs++] = n;
    s->n_tok += n;
    return 0;
}

/* {"input_ids": [...], "token_type_ids"?: [...]}: a document longer than
 * max_len, or with type ids of another length, is skipped. */
static int add_ids_doc(warm_state *s, const json_t *ids, const json_t *tys) {
    int32_t *buf = s->buf, *tbuf = s->tbuf;
    size_t n = json_array_size(ids);
    if (n > (size_t)s->max_len || (tys && json_array_size(tys) != n)) {
        s->skipped++;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        buf[i] = (int32_t)json_integer_value(json_array_get(ids, i));
        tbuf[i] = tys ? (int32_t)json_integer_value(json_array_get(tys, i)) : 0;
    }
    return add_doc(s, buf, tys ? tbuf : NULL, (int)n);
}

/* {"text": "..."}: tokenized and truncated to max_len; a text the tokenizer
 * refuses is skipped. */
static int add_text_doc(warm_state *s, const json_t *text, long lineno) {
    if (!s->tok) {
        warm_error(s, "line %ld: text needs a tokenizer (--tokenizer)", lineno);
        return -1;
    }
    er_tokenize_params tp = er_tokenize_default_params();
    tp.max_length = (size_t)s->max_len;
    er_encoding *enc;
    er_err e;
    if (er_tokenizer_encode(s->tok, json_string_value(text), json_string_length(text), NULL, 0,
                            &tp, &enc, &e) != ER_OK) {
        warm_error(s, "line %ld: %s", lineno, e.msg);
        s->skipped++;
        return 0;
    }
    int rc = add_doc(s, enc->ids, enc->type_ids, (int)enc->n);
    er_encoding_free(enc);
    return rc;
}

static int warm_line(warm_state *s, const char *line, long lineno) {
    json_error_t je;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
    int rc = -1;
    json_t *text = json_object_get(o, "text"), *ids = json_object_get(o, "input_ids");
    if (!json_is_object(o))
        warm_error(s, "line %ld: not a JSON object (%s)", lineno, je.text);
    else if (json_is_array(ids))
        rc = add_ids_doc(s, ids, json_object_get(o, "token_type_ids"));
    else if (json_is_string(text))
        rc = add_text_doc(s, text, lineno);
    else
        warm_error(s, "line %ld: needs \"text\" or \"input_ids\"", lineno);
    json_decref(o);
    return rc;
}

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long n = 0;
    int c, last = '\n';
    while ((c = getc(f)) != EOF) {
        if (c == '\n') n++;
        last = c;
    }
    fclose(f);
    return n + (last != '\n');
}

static void warm_state_free(warm_state *s) {
    if (!s) return;
    er_tokenizer_free(s->tok);
    er_worker_free(s->w);
    free(s->ids);
    free(s->types);
    free(s->buf);
    free(s->tbuf);
    free(s);
}

/* The worker, the task, the token cap and key salt of warm; the tokenizer
 * when there is one (required when --tokenizer names it).  NULL on error
 * (logged). */
static warm_state *warm_state_new(const opts *o, er_taskset *ts) {
    warm_state *s = calloc(1, sizeof *s);
    er_err e;
    if (!s || er_worker_init(ts, NULL, &s->w, &e) != ER_OK) {
        er_log(ER_LOG_ERROR, "%s", s ? e.msg : "out of memory");
        warm_state_free(s);
        return NULL;
    }
    s->t = er_taskset_at(ts, 0);
    s->max_len = er_task_max_input_tokens(s->t, o->max_tokens);
    s->salt = o->salt >= 0 ? (uint64_t)o->salt : er_key_salt(s->max_len, true);
    s->cap = s->max_len > BATCH_TOKENS ? s->max_len : BATCH_TOKENS;
    s->ids = malloc((size_t)s->cap * sizeof *s->ids);
    s->types = malloc((size_t)s->cap * sizeof *s->types);
    s->buf = malloc((size_t)s->max_len * sizeof *s->buf);
    s->tbuf = malloc((size_t)s->max_len * sizeof *s->tbuf);
    if (!s->ids || !s->types || !s->buf || !s->tbuf) {
        er_log(ER_LOG_ERROR, "out of memory");
        warm_state_free(s);
        return NULL;
    }
    const char *tp = o->tokenizer ? o->tokenizer : o->model;
    s->tok = er_tokenizer_load(tp, &e);
    if (!s->tok && o->tokenizer) {
        er_log(ER_LOG_ERROR, "tokenizer %s: %s", tp, e.msg);
        warm_state_free(s);
        return NULL;
    }
    return s;
}

static int warm(const opts *o, er_taskset *ts) {
    warm_state *s = warm_state_new(o, ts);
    if (!s) return 1;
    FILE *in = o->file && strcmp(o->file, "-") ? fopen(o->file, "r") : stdin;
    if (!in) {
        er_log(ER_LOG_ERROR, "%s: %s", o->file, strerror(errno));
        warm_state_free(s);
        return 1;
    }
    s->tty = isatty(2);
    s->total = in != stdin && s->tty ? count_lines(o->file) : 0;
    s->t0_ns = er_now_ns();
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, in) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        rc = warm_line(s, line, lineno);
    }
    if (flush_batch(s)) rc = -1; /* what was read is kept even after a bad line */
    er_store_flush(er_taskset_store(ts));
    draw(s, true);
    double dt = seconds_since(s->t0_ns);
    fprintf(stderr, "warm: %ld docs in %.1f s (%.1f docs/s): %ld computed, %ld already cached, "
            "%ld skipped (empty or longer than %d tokens)\n", s->docs, dt,
            s->docs / (dt > 1e-9 ? dt : 1e-9), s->computed, s->cached, s->skipped, s->max_len);
    free(line);
    if (in != stdin) fclose(in);
    warm_state_free(s);
    return rc ? 1 : 0;
}

static int warm_command(const opts *o) {
    if (!o->model) {
        er_log(ER_LOG_ERROR, "warm needs --model DIR");
        return 2;
    }
    er_task_spec spec = {"cache", o->model, 0, ER_COMPUTE_FP32};
    er_taskset_params p = er_taskset_default_params();
    p.cut = o->cut;
    p.store_path = o->store;
    p.store = o->sp;
    er_taskset *ts;
    er_err e;
    if (er_taskset_load(&spec, 1, &p, &ts, &e) != ER_OK) {
        er_log(ER_LOG_ERROR, "%s", e.msg);
        return 1;
    }
    int rc = warm(o, ts);
    er_taskset_free(ts);
    return rc;
}

/* ---- stats, verify, purge ---- */

static int verify(er_store *s) {
    uint64_t ok = 0, bad = 0;
    er_err e;
    er_status st = er_store_verify(s, false, &ok, &bad, &e);
    printf("values ok      %llu\nvalues bad     %llu\n", (unsigned long long)ok,
           (unsigned long long)bad);
    if (st != ER_OK)
        er_log(ER_LOG_ERROR, "verify: %s; run verify --repair with erserve stopped", e.msg);
    else if (bad)
        er_log(ER_LOG_ERROR, "verify: %llu bad values; verify --repair deletes them",
               (unsigned long long)bad);
    return st != ER_OK || bad ? 1 : 0;
}

/* verify --repair: on the closed store.  Exit 0 when the store is usable
 * (and verifies) afterwards. */
static int repair(const opts *o) {
    er_store_repair_report r;
    er_err e;
    er_status st = er_store_repair(o->store, &o->sp, &r, &e);
    if (r.salvaged) {
        printf("damaged        %s\nleaf pages     %llu\ncopies ok      %llu (stale copies in freed "
               "pages included)\ncopies bad     %llu\nrecovered      %llu values (into a fresh "
               "store)\n", r.why,
               (unsigned long long)r.leaf_pages, (unsigned long long)r.ok,
               (unsigned long long)r.bad, (unsigned long long)r.recovered);
    } else {
        printf("values ok      %llu\nvalues bad     %llu%s\n", (unsigned long long)r.ok,
               (unsigned long long)r.bad, r.bad ? " (deleted)" : "");
        if (r.indexes_rebuilt) printf("indexes        rebuilt from the values\n");
    }
    if (st != ER_OK) {
        er_log(ER_LOG_ERROR, "verify --repair: %s", e.msg);
        return 1;
    }
    return 0;
}

static int purge(er_store *s) {
    er_store_counters c;
    er_store_stats(s, &c);
    er_err e;
    if (er_store_purge(s, &e) != ER_OK) {
        er_log(ER_LOG_ERROR, "purge: %s", e.msg);
        return 1;
    }
    printf("purged %llu values (%llu bytes)\n", (unsigned long long)c.entries,
           (unsigned long long)c.bytes);
    return 0;
}

static int store_command(const opts *o) {
    if (!strcmp(o->cmd, "verify") && o->repair) return repair(o);
    er_store *s;
    er_err e;
    if (er_store_open(o->store, &o->sp, &s, &e) != ER_OK) {
        er_log(ER_LOG_ERROR, "%s", e.msg);
        return 1;
    }
    int rc = 0;
    if (!strcmp(o->cmd, "stats")) {
        er_store_counters c;
        er_store_stats(s, &c);
        print_stats(&c);
    } else if (!strcmp(o->cmd, "verify")) {
        rc = verify(s);
    } else {
        rc = purge(s);
    }
    er_store_close(s);
    return rc;
}

int main(int argc, char **argv) {
    /* warnings only: the task set's start-up summary is the server's business */
    er_log_setup("erserve-cache", ER_LOG_WARN);
    opts o;
    if (parse_args(argc, argv, &o)) return 2;
    if (!strcmp(o.cmd, "warm")) return warm_command(&o);
    if (strcmp(o.cmd, "stats") && strcmp(o.cmd, "verify") && strcmp(o.cmd, "purge")) {
        er_log(ER_LOG_ERROR, "unknown command %s", o.cmd);
        usage(stderr);
        return 2;
    }
    return store_command(&o);
}
