/* The activation store on LMDB: readers, the writer thread and its queue,
 * eviction.  Layout of the environment (four named databases):
 *   "values"  key[32] -> value (store_internal.h)
 *   "atime"   key[32] -> u64 tick of the last recorded access
 *   "lru"     u64 tick, big-endian (so byte order = age order) -> key[32]
 *   "meta"    "state" -> u64 bytes (sum of value sizes), u64 next tick
 * All four change only in the writer's transactions, together, so a crash
 * at any point leaves them consistent (LMDB commits are atomic). */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "er_log.h"
#include "er_util.h"
#include "store_internal.h"

#define TOUCH_MAX 1024
#define MAP_FULL_RETRIES 4

/* The live counters, by their er_store_counters names: declared in er_store
 * and copied out by er_store_stats from this one list. */
#define STORE_COUNTERS(X)                                                                  \
    X(entries) X(bytes) X(hits) X(misses) X(corrupt) X(inserts) X(evictions) X(dropped)    \
    X(write_errors) X(commits) X(map_full) X(reads) X(read_ns_sum) X(read_ns_max)           \
    X(no_space) X(damaged)

/* Not an LMDB code: the lru index ran out while values remain (the indexes
 * disagree, so the budget cannot be kept). */
#define STORE_INDEX_DISAGREE (-30700)

typedef struct {
    uint8_t *data; /* records: u32 record bytes, u32 value bytes, key[32], value */
    size_t used;
    int inflight;  /* producers still encoding into reserved space */
    uint64_t last_seq;
} qbuf;

struct er_store {
    MDB_env *env;
    char *path;                  /* the directory, for log lines */
    _Atomic bool read_only;      /* set on structural damage: no more writes */
    MDB_dbi values, atime, lru, meta;
    er_store_params p;
    uint64_t map_bytes;

    pthread_mutex_t mu;
    pthread_cond_t cv_writer, cv_space, cv_done;
    qbuf q[2];
    int pending;                 /* index of the buffer producers append to */
    size_t qcap;                 /* bytes per buffer */
    uint64_t enq_seq, done_seq;  /* records reserved / committed (or failed) */
    uint8_t (*touch)[32];        /* [TOUCH_MAX] keys whose tick to refresh */
    uint8_t (*touch_w)[32];      /* the writer's copy */
    int n_touch;
    bool stop;
    pthread_t writer;
    bool writer_started;

#define DECLARE_COUNTER(name) _Atomic uint64_t name;
    STORE_COUNTERS(DECLARE_COUNTER)
    _Atomic uint64_t tick, hist[16];
};

struct er_store_reader {
    er_store *s;
    MDB_txn *txn; /* reset between gets; renewed without allocating */
};

er_store_params er_store_default_params(void) {
    er_store_params p = {.dtype = ER_DTYPE_FP16, .budget_bytes = 1ull << 30, .map_bytes = 0,
                         .queue_bytes = 64u << 20, .max_readers = 512};
    return p;
}

static const char *store_strerror(int rc) {
    return rc == STORE_INDEX_DISAGREE ? "the lru index is empty but values remain (indexes disagree)"
                                      : mdb_strerror(rc);
}

static er_status lmdb_err(er_err *err, const char *call, int rc) {
    return er_set(err, ER_ERR_STORE, "%s: %s", call, store_strerror(rc));
}

/* Errors that mean the file's B-tree is damaged, not that an operation
 * failed: the store stops writing (read-only) after the first. */
static bool is_structural(int rc) {
    return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_PANIC ||
           rc == MDB_INVALID || rc == MDB_INCOMPATIBLE || rc == MDB_CURSOR_FULL ||
           rc == MDB_BAD_TXN || rc == STORE_INDEX_DISAGREE;
}

/* Write errors from the file system that making room may cure: a full disk
 * or quota, the file size limit, and LMDB's EIO for a short write (what a
 * write that fills the disk returns). */
static bool is_space(int rc) { return rc == ENOSPC || rc == EDQUOT || rc == EFBIG || rc == EIO; }

/* The first structural error: one error line, the counter, and the store
 * turns read-only (gets go on: every value is checksummed, so a damaged page
 * gives a miss, never a wrong answer). */
static void mark_damaged_why(er_store *s, const char *why) {
    s->damaged++;
    bool was = atomic_exchange(&s->read_only, true);
    if (!was)
        er_log(ER_LOG_ERROR, "store %s is damaged (%s): it is read-only from now on (hits "
               "still checked, nothing new cached); stop erserve and run `erserve-cache --store "
               "%s verify --repair`", s->path, why, s->path);
}

static void mark_damaged(er_store *s, const char *where, int rc) {
    char why[256];
    snprintf(why, sizeof why, "%s: %s", where, store_strerror(rc));
    mark_damaged_why(s, why);
}

/* Any other LMDB failure of a store operation: a rate-limited warning. */
static void log_lmdb(er_store *s, const char *where, int rc) {
    if (is_structural(rc)) mark_damaged(s, where, rc);
    else er_log(ER_LOG_WARN, "store %s: %s: %s", s->path, where, store_strerror(rc));
}

static void be64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i)); }
static uint64_t rd64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* ---- meta ---- */

typedef struct { uint64_t bytes, tick; } meta_state;

static int meta_read(er_store *s, MDB_txn *txn, meta_state *m) {
    MDB_val k = {5, "state"}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) { m->bytes = 0; m->tick = 1; return 0; }
    if (rc) return rc;
    if (v.mv_size != 16) return MDB_CORRUPTED;
    m->bytes = rd64(v.mv_data);
    m->tick = rd64((uint8_t *)v.mv_data + 8);
    return 0;
}

static int meta_write(er_store *s, MDB_txn *txn, const meta_state *m) {
    uint64_t buf[2] = {m->bytes, m->tick};
    MDB_val k = {5, "state"}, v = {16, buf};
    return mdb_put(txn, s->meta, &k, &v, 0);
}

/* ---- the writer's transaction ---- */

/* LMDB's MDB_val is not const-correct, but LMDB never writes through a key
 * it is given: the cast through uintptr_t says so once, here. */
static MDB_val key_val(const uint8_t *key) {
    return (MDB_val){ER_STORE_KEY_BYTES, (void *)(uintptr_t)key};
}

/* Removes key's lru/atime entries (if any). */
static int unindex(er_store *s, MDB_txn *txn, const uint8_t *key) {
    MDB_val k = key_val(key), v;
    int rc = mdb_get(txn, s->atime, &k, &v);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return rc;
    uint8_t t[8];
    be64(t, rd64(v.mv_data));
    MDB_val tk = {8, t};
    rc = mdb_del(txn, s->lru, &tk, NULL);
    if (rc && rc != MDB_NOTFOUND) return rc;
    rc = mdb_del(txn, s->atime, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int index_at(er_store *s, MDB_txn *txn, const uint8_t *key, meta_state *m) {
    uint64_t tick = m->tick++;
    uint8_t t[8];
    be64(t, tick);
    MDB_val tk = {8, t}, kv = key_val(key), tv = {8, &tick};
    int rc = mdb_put(txn, s->lru, &tk, &kv, 0);
    return rc ? rc : mdb_put(txn, s->atime, &kv, &tv, 0);
}

/* Evicts from the oldest end until bytes <= target. */
static int evict_to(er_store *s, MDB_txn *txn, meta_state *m, uint64_t target, uint64_t *evicted) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->lru, &c);
    if (rc) return rc;
    MDB_val tk, kv;
    while (m->bytes > target && !(rc = mdb_cursor_get(c, &tk, &kv, MDB_FIRST))) {
        uint8_t key[32];
        memcpy(key, kv.mv_data, 32);
        if ((rc = mdb_cursor_del(c, 0))) break;
        MDB_val k = {32, key}, v;
        rc = mdb_get(txn, s->values, &k, &v);
        if (rc == 0) {
            m->bytes -= v.mv_size < m->bytes ? v.mv_size : m->bytes;
            rc = mdb_del(txn, s->values, &k, NULL);
            (*evicted)++;
        }
        if (rc && rc != MDB_NOTFOUND) break;
        rc = mdb_del(txn, s->atime, &k, NULL);
        if (rc && rc != MDB_NOTFOUND) break;
        rc = 0;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) { /* index empty: so must the values be */
        MDB_stat st;
        if ((rc = mdb_stat(txn, s->values, &st))) return rc;
        if (st.ms_entries) return STORE_INDEX_DISAGREE;
        m->bytes = 0;
    }
    return rc;
}

typedef struct { uint32_t rec, vlen; } rec_hdr;

/* Refreshes the ticks of the n_touch keys hits queued (skipping evicted ones). */
static int apply_touches(er_store *s, MDB_txn *txn, int n_touch, meta_state *m) {
    for (int i = 0; i < n_touch; i++) {
        MDB_val k = {32, s->touch_w[i]}, v;
        if (mdb_get(txn, s->values, &k, &v)) continue; /* evicted meanwhile */
        int rc = unindex(s, txn, s->touch_w[i]);
        if (rc || (rc = index_at(s, txn, s->touch_w[i], m))) return rc;
    }
    return 0;
}

/* The records of b (NULL: none) to insert under cap bytes: a batch larger
 * than the budget keeps only its newest values.  Sets *first to the offset
 * of the first kept record and counts the left-out ones in *skipped; returns
 * the kept values' bytes. */
static uint64_t fit_batch(const qbuf *b, uint64_t cap, size_t *first, uint64_t *skipped) {
    size_t used = b ? b->used : 0;
    uint64_t incoming = 0;
    for (size_t off = 0; off < used;) {
        rec_hdr h;
        memcpy(&h, b->data + off, sizeof h);
        incoming += h.vlen;
        off += h.rec;
    }
    *first = 0;
    while (incoming > cap && *first < used) {
        rec_hdr h;
        memcpy(&h, b->data + *first, sizeof h);
        incoming -= h.vlen;
        *first += h.rec;
        (*skipped)++;
    }
    return incoming;
}

/* Puts the records of b from offset first on (overwriting a corrupt or raced
 * value), indexed as the newest. */
static int insert_records(er_store *s, MDB_txn *txn, const qbuf *b, size_t first, meta_state *m,
                          uint64_t *ins) {
    for (size_t off = first; b && off < b->used;) {
        rec_hdr h;
        memcpy(&h, b->data + off, sizeof h);
        uint8_t *key = b->data + off + sizeof h;
        off += h.rec;
        MDB_val k = {32, key}, v;
        int rc;
        if (mdb_get(txn, s->values, &k, &v) == 0) {
            m->bytes -= v.mv_size < m->bytes ? v.mv_size : m->bytes;
            if ((rc = unindex(s, txn, key))) return rc;
        }
        v.mv_size = h.vlen;
        v.mv_data = key + 32;
        if ((rc = mdb_put(txn, s->values, &k, &v, 0)) || (rc = index_at(s, txn, key, m))) return rc;
        m->bytes += h.vlen;
        (*ins)++;
    }
    return 0;
}

/* One transaction: touches, evictions until bytes + incoming <= cap, inserts
 * (b may be NULL: evict only).  Returns an LMDB code; counts to *ins, *ev,
 * *skipped (values of a batch larger than the budget that were left out). */
static int write_txn(er_store *s, const qbuf *b, int n_touch, uint64_t cap, uint64_t *ins,
                     uint64_t *ev, uint64_t *skipped) {
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return rc;
    meta_state m;
    size_t first;
    uint64_t incoming = fit_batch(b, cap, &first, skipped);
    MDB_stat st;
    if ((rc = meta_read(s, txn, &m)) || (rc = apply_touches(s, txn, n_touch, &m)) ||
        (m.bytes + incoming > cap && (rc = evict_to(s, txn, &m, cap - incoming, ev))) ||
        (rc = insert_records(s, txn, b, first, &m, ins)) || (rc = meta_write(s, txn, &m)) ||
        (rc = mdb_stat(txn, s->values, &st))) {
        mdb_txn_abort(txn);
        return rc;
    }
    rc = mdb_txn_commit(txn); /* frees txn even when it fails (MDB_MAP_FULL here too) */
    if (rc == 0) {
        s->bytes = m.bytes;
        s->entries = st.ms_entries;
        s->tick = m.tick;
        s->commits++;
    }
    return rc;
}

/* Records in b. */
static uint64_t batch_values(const qbuf *b) {
    uint64_t n = 0;
    for (size_t off = 0; off < b->used;) {
        rec_hdr h;
        memcpy(&h, b->data + off, sizeof h);
        off += h.rec;
        n++;
    }
    return n;
}

static void write_batch(er_store *s, const qbuf *b, int n_touch) {
    if (s->read_only) { /* damaged: LMDB is not written again */
        s->dropped += batch_values(b);
        return;
    }
    uint64_t cap = s->p.budget_bytes, shrink = 8;
    int rc;
    for (int attempt = 0;; attempt++) {
        uint64_t ins = 0, ev = 0, skipped = 0;
        rc = write_txn(s, b, n_touch, cap, &ins, &ev, &skipped);
        if (rc == 0) { /* counted only when committed */
            s->evictions += ev;
            s->inserts += ins;
            s->dropped += skipped;
            return;
        }
        if ((rc != MDB_MAP_FULL && !is_space(rc)) || attempt == MAP_FULL_RETRIES) break;
        /* The map or the disk is full before the budget is.  Pages freed by a
         * transaction are reusable only by later ones, and large values need
         * contiguous pages: evict 1/8 of what is stored (1/4, 1/2 on later
         * tries) plus the batch in a transaction of its own, then retry. */
        if (rc == MDB_MAP_FULL) s->map_full++;
        else s->no_space++;
        uint64_t cur = s->bytes + b->used < cap ? s->bytes + b->used : cap;
        cap = cur - cur / shrink;
        shrink = shrink > 2 ? shrink / 2 : 1;
        ev = 0;
        int erc = write_txn(s, NULL, 0, cap > b->used ? cap - b->used : 0, &ins, &ev, &skipped);
        if (erc == 0) s->evictions += ev;
        else if (erc != MDB_MAP_FULL && !is_space(erc)) { rc = erc; break; }
    }
    s->write_errors++;
    if (is_structural(rc)) {
        mark_damaged(s, "writing", rc);
    } else {
        er_log(ER_LOG_WARN, "store %s: %llu values not cached (%s, after evicting to make room); "
               "stored %llu bytes, budget %llu", s->path, (unsigned long long)batch_values(b),
               store_strerror(rc), (unsigned long long)s->bytes,
               (unsigned long long)s->p.budget_bytes);
    }
}

static void *writer_main(void *arg) {
    er_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        qbuf *b = &s->q[s->pending];
        while (!s->stop && b->used == 0 && s->n_touch == 0) pthread_cond_wait(&s->cv_writer, &s->mu);
        while (b->inflight > 0) pthread_cond_wait(&s->cv_writer, &s->mu);
        if (s->stop && b->used == 0 && s->n_touch == 0) break;
        s->pending ^= 1; /* producers fill the other half while this one commits */
        int n_touch = s->n_touch;
        memcpy(s->touch_w, s->touch, (size_t)n_touch * 32);
        s->n_touch = 0;
        pthread_cond_broadcast(&s->cv_space);
        pthread_mutex_unlock(&s->mu);

        write_batch(s, b, n_touch);

        pthread_mutex_lock(&s->mu);
        b->used = 0;
        if (b->last_seq > s->done_seq) s->done_seq = b->last_seq;
        pthread_cond_broadcast(&s->cv_done);
        pthread_cond_broadcast(&s->cv_space);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- open / close ---- */

static er_status open_dbs(er_store *s, er_err *err) {
    MDB_txn *txn;
    bool ro = s->read_only; /* damaged: nothing written, not even a new database */
    unsigned create = ro ? 0 : MDB_CREATE;
    int rc = mdb_txn_begin(s->env, NULL, ro ? MDB_RDONLY : 0, &txn);
    if (rc) return lmdb_err(err, "mdb_txn_begin", rc);
    if ((rc = mdb_dbi_open(txn, "values", create, &s->values)) ||
        (rc = mdb_dbi_open(txn, "atime", create, &s->atime)) ||
        (rc = mdb_dbi_open(txn, "lru", create, &s->lru)) ||
        (rc = mdb_dbi_open(txn, "meta", create, &s->meta))) {
        mdb_txn_abort(txn);
        return lmdb_err(err, "mdb_dbi_open", rc);
    }
    meta_state m;
    MDB_stat st;
    if ((rc = meta_read(s, txn, &m)) || (rc = mdb_stat(txn, s->values, &st))) {
        mdb_txn_abort(txn);
        return lmdb_err(err, "reading the store's state", rc);
    }
    s->bytes = m.bytes;
    s->tick = m.tick;
    s->entries = st.ms_entries;
    if ((rc = mdb_txn_commit(txn))) return lmdb_err(err, "mdb_txn_commit", rc);
    return ER_OK;
}

/* Creates and opens s->env at path with a map of map_bytes (default four
 * times the budget + 64 MiB), grown to the data file's size.  Four: a value
 * of 2-4 KB (a short document at a small hidden size) fills a whole 4 KiB
 * overflow page, about 2.2x its bytes on disk, and the B-tree and free pages
 * come on top; at twice the budget the map filled before the budget did and
 * eviction ran through MDB_MAP_FULL (found by bench_grow).  The map is only
 * address space: the file is sparse. */
static er_status open_env(er_store *s, const char *path, er_err *err) {
    const char *damaged = NULL;
    uint64_t map = s->p.map_bytes ? s->p.map_bytes : 4 * s->p.budget_bytes + (64ull << 20);
    char data[4096];
    struct stat stt;
    snprintf(data, sizeof data, "%s/data.mdb", path);
    /* before LMDB maps it: a file shorter than its meta page claims would
     * kill the process with SIGBUS on the first read of a missing page */
    er_store_file_info fi;
    er_status fst = er_store_file_check(data, &fi, err);
    if (fst != ER_OK) return fst;
    /* LMDB trusts its pages and crashes writing into a damaged one: when no
     * other process has the store open (and so writes it), check the tree */
    er_err terr;
    if (fi.exists && fi.file_bytes && !er_store_file_in_use(path)) {
        fst = er_store_file_check_tree(data, &terr);
        if (fst == ER_ERR_STORE) damaged = terr.msg;
        else if (fst != ER_OK) return er_set(err, fst, "%s", terr.msg);
    }
    if (stat(data, &stt) == 0 && (uint64_t)stt.st_size > map) map = (uint64_t)stt.st_size;
    int rc = mdb_env_create(&s->env);
    if (!rc) rc = mdb_env_set_maxdbs(s->env, 4);
    if (!rc) rc = mdb_env_set_maxreaders(s->env, (unsigned)s->p.max_readers + 8);
    if (!rc) rc = mdb_env_set_mapsize(s->env, (size_t)map);
    /* NOTLS: read txns belong to er_store_readers, not threads.  NOMETASYNC:
     * an OS crash may lose the last commit but never breaks the store.
     * NORDAHEAD: lookups are random; readahead would evict useful pages. */
    if (!rc) rc = mdb_env_open(s->env, path, MDB_NOTLS | MDB_NOMETASYNC | MDB_NORDAHEAD, 0644);
    if (rc) return lmdb_err(err, "opening the LMDB store", rc);
    int dead;
    mdb_reader_check(s->env, &dead); /* slots left by killed processes */
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_bytes = info.me_mapsize;
    if (damaged) mark_damaged_why(s, damaged);
    return ER_OK;
}

er_status er_store_open(const char *path, const er_store_params *params, er_store **out,
                        er_err *err) {
    *out = NULL;
    er_store_params p = params ? *params : er_store_default_params();
    if (!path || !*path || !er_store_dtype_valid(p.dtype) || p.budget_bytes == 0 ||
        p.queue_bytes < 4096 || p.max_readers < 1)
        return er_set(err, ER_ERR_INVALID_ARG, "bad store parameters (path, dtype, budget, "
                      "queue or readers)");
    if (mkdir(path, 0755) && errno != EEXIST)
        return er_set(err, ER_ERR_IO, "cannot create store directory %s: %s", path, strerror(errno));
    er_store *s = calloc(1, sizeof *s);
    if (!s) return er_set(err, ER_ERR_NOMEM, "out of memory");
    s->p = p;
    s->path = strdup(path);
    s->qcap = p.queue_bytes / 2;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_writer, NULL);
    pthread_cond_init(&s->cv_space, NULL);
    pthread_cond_init(&s->cv_done, NULL);
    s->q[0].data = malloc(s->qcap);
    s->q[1].data = malloc(s->qcap);
    s->touch = malloc(TOUCH_MAX * 32);
    s->touch_w = malloc(TOUCH_MAX * 32);
    if (!s->path || !s->q[0].data || !s->q[1].data || !s->touch || !s->touch_w) {
        er_store_close(s);
        return er_set(err, ER_ERR_NOMEM, "out of memory for the store's write queue");
    }
    er_status st = open_env(s, path, err);
    if (st == ER_OK) st = open_dbs(s, err);
    if (st != ER_OK) {
        er_store_close(s);
        return st;
    }
    if (pthread_create(&s->writer, NULL, writer_main, s)) {
        er_store_close(s);
        return er_set(err, ER_ERR_NOMEM, "cannot start the store's writer thread");
    }
    s->writer_started = true;
    *out = s;
    return ER_OK;
}

void er_store_close(er_store *s) {
    if (!s) return;
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv_writer);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
    }
    if (s->env) mdb_env_close(s->env);
    free(s->q[0].data);
    free(s->q[1].data);
    free(s->touch);
    free(s->touch_w);
    free(s->path);
    pthread_cond_destroy(&s->cv_writer);
    pthread_cond_destroy(&s->cv_space);
    pthread_cond_destroy(&s->cv_done);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- puts ---- */

/* Reserves a record for a value of vlen bytes in the pending buffer; the
 * caller fills it outside the lock, then calls release.  NULL when dropped. */
static uint8_t *reserve(er_store *s, size_t vlen, bool wait, qbuf **qb, er_err *err) {
    size_t rec = (sizeof(rec_hdr) + 32 + vlen + 7) & ~(size_t)7;
    if (rec > s->qcap || vlen > s->p.budget_bytes) {
        s->dropped++;
        er_set(err, ER_ERR_CAPACITY, "a value of %zu bytes exceeds the store's queue or budget",
               vlen);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    qbuf *b = &s->q[s->pending];
    while (b->used + rec > s->qcap) {
        if (!wait || s->stop) {
            pthread_mutex_unlock(&s->mu);
            s->dropped++;
            er_set(err, ER_ERR_CAPACITY, "store write queue full: value not cached");
            return NULL;
        }
        pthread_cond_signal(&s->cv_writer);
        pthread_cond_wait(&s->cv_space, &s->mu);
        b = &s->q[s->pending];
    }
    uint8_t *r = b->data + b->used;
    b->used += rec;
    b->inflight++;
    b->last_seq = ++s->enq_seq;
    pthread_mutex_unlock(&s->mu);
    rec_hdr h = {(uint32_t)rec, (uint32_t)vlen};
    memcpy(r, &h, sizeof h);
    *qb = b;
    return r + sizeof h;
}

static void release(er_store *s, qbuf *b) {
    pthread_mutex_lock(&s->mu);
    b->inflight--;
    pthread_cond_signal(&s->cv_writer);
    pthread_mutex_unlock(&s->mu);
}

er_status er_store_put(er_store *s, const uint8_t key[ER_STORE_KEY_BYTES], int cut, int n_tokens,
                       int hidden, const float *x, bool wait, er_err *err) {
    if (n_tokens < 1 || hidden < 1 || cut < 0)
        return er_set(err, ER_ERR_INVALID_ARG, "bad value shape [%d, %d]", n_tokens, hidden);
    qbuf *b;
    uint8_t *r = reserve(s, er_store_value_size(s->p.dtype, n_tokens, hidden), wait, &b, err);
    if (!r) return ER_ERR_CAPACITY;
    memcpy(r, key, 32);
    er_value_encode(s->p.dtype, cut, n_tokens, hidden, x, r + 32); /* outside the lock */
    er_value_bind_key(r + 32, key);
    release(s, b);
    return ER_OK;
}

void er_store_round(const er_store *s, int n_tokens, int hidden, float *x) {
    er_value_round(s->p.dtype, n_tokens, hidden, x);
}

er_status er_store_put_raw(er_store *s, const uint8_t key[ER_STORE_KEY_BYTES], const void *v,
                           size_t len, er_err *err) {
    qbuf *b;
    uint8_t *r = reserve(s, len, true, &b, err);
    if (!r) return ER_ERR_CAPACITY;
    memcpy(r, key, 32);
    memcpy(r + 32, v, len);
    release(s, b);
    return ER_OK;
}

void er_store_flush(er_store *s) {
    pthread_mutex_lock(&s->mu);
    uint64_t target = s->enq_seq;
    bool touches = s->n_touch > 0;
    pthread_cond_signal(&s->cv_writer);
    while (s->done_seq < target && s->writer_started)
        pthread_cond_wait(&s->cv_done, &s->mu);
    /* touches queued before the flush: wait for the writer to take them */
    while (touches && s->n_touch > 0) {
        pthread_cond_signal(&s->cv_writer);
        pthread_cond_wait(&s->cv_done, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- gets ---- */

er_status er_store_reader_new(er_store *s, er_store_reader **out, er_err *err) {
    *out = NULL;
    er_store_reader *r = calloc(1, sizeof *r);
    if (!r) return er_set(err, ER_ERR_NOMEM, "out of memory");
    r->s = s;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc) {
        free(r);
        return lmdb_err(err, "mdb_txn_begin (reader)", rc);
    }
    mdb_txn_reset(r->txn);
    *out = r;
    return ER_OK;
}

void er_store_reader_free(er_store_reader *r) {
    if (!r) return;
    mdb_txn_abort(r->txn);
    free(r);
}

static void record_latency(er_store *s, uint64_t ns) {
    s->reads++;
    s->read_ns_sum += ns;
    uint64_t mx = s->read_ns_max;
    while (ns > mx && !atomic_compare_exchange_weak(&s->read_ns_max, &mx, ns)) {}
    uint64_t us = ns / 1000;
    int i = 0;
    while (i < 15 && us >= (1ull << i)) i++;
    s->hist[i]++;
}

/* A hit refreshes the entry's tick only once it has aged past 1/8 of the
 * store: bounded index writes for hot entries, LRU order within 1/8. */
static void maybe_touch(er_store *s, MDB_txn *txn, const uint8_t *key) {
    MDB_val k = key_val(key), v;
    if (mdb_get(txn, s->atime, &k, &v) || v.mv_size != 8) return;
    uint64_t age = s->tick - rd64(v.mv_data);
    if (age <= s->entries / 8 + 1) return;
    pthread_mutex_lock(&s->mu);
    if (s->n_touch < TOUCH_MAX) {
        memcpy(s->touch[s->n_touch++], key, 32);
        pthread_cond_signal(&s->cv_writer);
    }
    pthread_mutex_unlock(&s->mu);
}

er_status er_store_get(er_store_reader *r, const uint8_t key[ER_STORE_KEY_BYTES], int cut,
                       int n_tokens, int hidden, float *out, er_err *err) {
    er_store *s = r->s;
    uint64_t t0 = er_now_ns();
    int rc = mdb_txn_renew(r->txn);
    if (rc) {
        log_lmdb(s, "mdb_txn_renew", rc);
        return lmdb_err(err, "mdb_txn_renew", rc);
    }
    MDB_val k = key_val(key), v;
    rc = mdb_get(r->txn, s->values, &k, &v);
    er_status st = ER_OK;
    if (rc == MDB_NOTFOUND) {
        st = er_set(err, ER_ERR_NOT_FOUND, "not in the store");
    } else if (rc) {
        log_lmdb(s, "reading a value", rc);
        st = lmdb_err(err, "mdb_get", rc);
    } else if (er_value_check_header(v.mv_data, v.mv_size, cut, n_tokens, hidden) ||
               er_value_check_key(v.mv_data, key) ||
               (out && er_value_check_sum(v.mv_data, v.mv_size))) {
        s->corrupt++;
        st = er_set(err, ER_ERR_NOT_FOUND, "corrupt value (header or checksum): recomputed");
    } else {
        if (out) er_value_decode(v.mv_data, out);
        if (!s->read_only) maybe_touch(s, r->txn, key);
    }
    mdb_txn_reset(r->txn);
    if (st == ER_OK) s->hits++;
    else s->misses++;
    record_latency(s, er_now_ns() - t0);
    return st;
}

/* ---- administration ---- */

void er_store_stats(const er_store *s, er_store_counters *o) {
    memset(o, 0, sizeof *o);
#define COPY_COUNTER(name) o->name = s->name;
    STORE_COUNTERS(COPY_COUNTER)
    o->budget_bytes = s->p.budget_bytes;
    o->map_bytes = s->map_bytes;
    for (int i = 0; i < 16; i++) o->read_us_hist[i] = s->hist[i];
}

er_status er_store_purge(er_store *s, er_err *err) {
    er_store_flush(s);
    if (s->read_only) /* LMDB would walk (and may crash on) the damaged pages */
        return er_set(err, ER_ERR_STORE, "the store is damaged (read-only): run erserve-cache "
                      "--store %s verify --repair with erserve stopped, or remove %s/data.mdb",
                      s->path, s->path);
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return lmdb_err(err, "mdb_txn_begin", rc);
    if ((rc = mdb_drop(txn, s->values, 0)) || (rc = mdb_drop(txn, s->atime, 0)) ||
        (rc = mdb_drop(txn, s->lru, 0))) {
        mdb_txn_abort(txn);
        return lmdb_err(err, "mdb_drop", rc);
    }
    meta_state m = {0, s->tick};
    if ((rc = meta_write(s, txn, &m))) {
        mdb_txn_abort(txn);
        return lmdb_err(err, "mdb_put", rc);
    }
    if ((rc = mdb_txn_commit(txn))) return lmdb_err(err, "mdb_txn_commit", rc);
    s->bytes = 0;
    s->entries = 0;
    return ER_OK;
}

typedef struct { uint64_t ok, bad, bytes, bad_bytes; } scan_result;

/* Checks every value's header and checksum; with remove_corrupt deletes the
 * bad ones (and their index entries).  Returns an LMDB code. */
static int scan_values(er_store *s, MDB_txn *txn, bool remove_corrupt, scan_result *r) {
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->values, &c);
    if (rc) return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        r->bytes += v.mv_size;
        if (k.mv_size == 32 && !er_value_check_header(v.mv_data, v.mv_size, -1, -1, -1) &&
            !er_value_check_key(v.mv_data, k.mv_data) && !er_value_check_sum(v.mv_data, v.mv_size)) {
            r->ok++;
            continue;
        }
        r->bad++;
        r->bad_bytes += v.mv_size;
        if (remove_corrupt) {
            uint8_t key[32] = {0};
            memcpy(key, k.mv_data, k.mv_size < 32 ? k.mv_size : 32);
            if ((rc = mdb_cursor_del(c, 0)) || (rc = unindex(s, txn, key))) break;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The byte total and the three databases' sizes must agree with the values
 * scanned.  Reads the meta state into *m. */
static er_status check_indexes(er_store *s, MDB_txn *txn, const scan_result *r, meta_state *m,
                               MDB_stat *sv, er_err *err) {
    MDB_stat sa, sl;
    int rc = meta_read(s, txn, m);
    if (!rc) rc = mdb_stat(txn, s->values, sv);
    if (!rc) rc = mdb_stat(txn, s->atime, &sa);
    if (!rc) rc = mdb_stat(txn, s->lru, &sl);
    if (rc) return lmdb_err(err, "reading the indexes", rc);
    if (m->bytes != r->bytes)
        return er_set(err, ER_ERR_STORE, "byte total %llu disagrees with the values' %llu",
                      (unsigned long long)m->bytes, (unsigned long long)r->bytes);
    if (sa.ms_entries != sl.ms_entries || sv->ms_entries != sa.ms_entries)
        return er_set(err, ER_ERR_STORE, "index sizes disagree: %zu values, %zu atime, %zu lru",
                      sv->ms_entries, sa.ms_entries, sl.ms_entries);
    return ER_OK;
}

/* Rebuilds atime and lru from the values (a new tick each, in key order) and
 * the byte total, then evicts down to the budget. */
static int rebuild_indexes(er_store *s, MDB_txn *txn, meta_state *m, uint64_t *evicted) {
    int rc;
    if ((rc = mdb_drop(txn, s->atime, 0)) || (rc = mdb_drop(txn, s->lru, 0))) return rc;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, s->values, &c))) return rc;
    MDB_val k, v;
    m->bytes = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        m->bytes += v.mv_size;
        if ((rc = index_at(s, txn, k.mv_data, m))) break;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) return rc;
    return m->bytes > s->p.budget_bytes ? evict_to(s, txn, m, s->p.budget_bytes, evicted) : 0;
}

static er_status verify_impl(er_store *s, bool remove_corrupt, uint64_t *ok_out, uint64_t *bad_out,
                             bool *rebuilt, er_err *err) {
    er_store_flush(s);
    if (s->read_only)
        return er_set(err, ER_ERR_STORE, "the store is damaged (read-only since an LMDB error); "
                      "repair it with the store closed (erserve-cache verify --repair)");
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, remove_corrupt ? 0 : MDB_RDONLY, &txn);
    if (rc) return lmdb_err(err, "mdb_txn_begin", rc);
    scan_result r = {0};
    if ((rc = scan_values(s, txn, remove_corrupt, &r))) {
        mdb_txn_abort(txn);
        if (is_structural(rc)) mark_damaged(s, "scanning values", rc);
        if (ok_out) *ok_out = r.ok;
        if (bad_out) *bad_out = r.bad;
        return lmdb_err(err, "scanning values", rc);
    }
    meta_state m = {0, 0};
    MDB_stat sv;
    er_status st = check_indexes(s, txn, &r, &m, &sv, err);
    if (remove_corrupt && (st == ER_OK || (st == ER_ERR_STORE && !rc))) {
        uint64_t ev = 0;
        m.bytes = r.bytes - r.bad_bytes;
        if (st != ER_OK) { /* the indexes disagree with the values: rebuilt from them */
            if (meta_read(s, txn, &m)) m.tick = s->tick;
            if ((rc = rebuild_indexes(s, txn, &m, &ev))) {
                mdb_txn_abort(txn);
                if (is_structural(rc)) mark_damaged(s, "rebuilding the indexes", rc);
                return lmdb_err(err, "rebuilding the indexes", rc);
            }
            if (rebuilt) *rebuilt = true;
        }
        if ((rc = meta_write(s, txn, &m)) || (rc = mdb_stat(txn, s->values, &sv)) ||
            (rc = mdb_txn_commit(txn))) {
            if (is_structural(rc)) mark_damaged(s, "committing the repair", rc);
            return lmdb_err(err, "committing the repair", rc);
        }
        s->evictions += ev;
        s->bytes = m.bytes;
        s->tick = m.tick;
        s->entries = sv.ms_entries;
        st = ER_OK;
    } else {
        mdb_txn_abort(txn);
    }
    if (ok_out) *ok_out = r.ok;
    if (bad_out) *bad_out = r.bad;
    return st;
}

er_status er_store_verify(er_store *s, bool remove_corrupt, uint64_t *ok_out, uint64_t *bad_out,
                          er_err *err) {
    return verify_impl(s, remove_corrupt, ok_out, bad_out, NULL, err);
}

/* ---- repair of a closed store ---- */

typedef struct { er_store *dst; uint64_t ok, bad; } salvage_ctx;

static er_status salvage_one(void *user, const uint8_t *key, const uint8_t *v, size_t len,
                             er_err *err) {
    salvage_ctx *c = user;
    if (len < ER_STORE_HEADER_BYTES || memcmp(v, "ERAC", 4)) return ER_OK; /* an index entry */
    if (er_value_check_header(v, len, -1, -1, -1) || er_value_check_key(v, key) ||
        er_value_check_sum(v, len)) {
        c->bad++;
        return ER_OK;
    }
    c->ok++;
    er_status st = er_store_put_raw(c->dst, key, v, len, err);
    return st == ER_ERR_CAPACITY ? ER_OK : st; /* larger than the budget: not kept */
}

static void remove_env_files(const char *dir) {
    char f[4200];
    snprintf(f, sizeof f, "%s/data.mdb", dir);
    unlink(f);
    snprintf(f, sizeof f, "%s/lock.mdb", dir);
    unlink(f);
}

/* Copies every readable value of path/data.mdb (raw page walk, never past
 * the end of the file) into a fresh store in path/salvage.tmp, then puts its
 * file in place of the damaged one. */
static er_status salvage(const char *path, const er_store_params *p, er_store_repair_report *rep,
                         er_err *err) {
    char tmp[4200], src[4200], dst[4200];
    snprintf(tmp, sizeof tmp, "%s/salvage.tmp", path);
    snprintf(src, sizeof src, "%s/data.mdb", path);
    remove_env_files(tmp); /* a previous run's, interrupted */
    rmdir(tmp);
    salvage_ctx c = {0};
    er_status st = er_store_open(tmp, p, &c.dst, err);
    if (st != ER_OK) return st;
    st = er_store_file_salvage(src, salvage_one, &c, &rep->leaf_pages, err);
    er_store_counters cs;
    er_store_flush(c.dst);
    er_store_stats(c.dst, &cs);
    er_store_close(c.dst);
    if (st == ER_OK && cs.write_errors)
        st = er_set(err, ER_ERR_STORE, "writing the salvaged values into %s failed", tmp);
    if (st != ER_OK) {
        remove_env_files(tmp);
        rmdir(tmp);
        return st;
    }
    rep->salvaged = true;
    rep->ok = c.ok;
    rep->bad = c.bad;
    rep->recovered = cs.entries;
    snprintf(dst, sizeof dst, "%s/lock.mdb", path);
    unlink(dst); /* the damaged environment's reader table */
    snprintf(dst, sizeof dst, "%s/data.mdb", tmp);
    if (rename(dst, src))
        return er_set(err, ER_ERR_IO, "cannot move %s to %s: %s", dst, src, strerror(errno));
    remove_env_files(tmp);
    rmdir(tmp);
    return ER_OK;
}

er_status er_store_repair(const char *path, const er_store_params *p, er_store_repair_report *rep,
                          er_err *err) {
    memset(rep, 0, sizeof *rep);
    if (!path || !*path) return er_set(err, ER_ERR_INVALID_ARG, "no store path");
    if (er_store_file_in_use(path))
        return er_set(err, ER_ERR_STORE, "store %s is open in another process: stop erserve "
                      "(and any erserve-cache) before repairing it", path);
    er_store *s;
    er_err e = {0};
    er_status st = er_store_open(path, p, &s, &e);
    if (st == ER_OK) {
        bool rebuilt = false;
        st = verify_impl(s, true, &rep->ok, &rep->bad, &rebuilt, &e);
        bool damaged = s->read_only;
        er_store_close(s);
        rep->indexes_rebuilt = rebuilt;
        if (st == ER_OK && !damaged) return ER_OK;
    } else if (st != ER_ERR_STORE) {
        if (err) *err = e;
        return st;
    }
    snprintf(rep->why, sizeof rep->why, "%s", e.msg);
    rep->ok = rep->bad = 0;
    rep->indexes_rebuilt = false;
    if ((st = salvage(path, p, rep, err)) != ER_OK) return st;
    /* the fresh store must open and verify */
    if ((st = er_store_open(path, p, &s, err)) != ER_OK) return st;
    st = er_store_verify(s, false, NULL, NULL, err);
    er_store_close(s);
    return st;
}
