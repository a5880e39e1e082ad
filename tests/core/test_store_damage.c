/* What a damaged disk does to the store, and what the store does about it:
 * a truncated data file (refused at open, never SIGBUS; salvaged by repair),
 * a damaged meta page, bytes flipped in leaf pages of a closed store (no
 * crash, never a wrong value, damage reported, repair yields a store that
 * verifies and keeps the readable values), indexes that disagree with the
 * values (the store turns read-only at run time, repair rebuilds them), and
 * a full disk (RLIMIT_FSIZE in a forked child: the commit's write fails with
 * EFBIG/EIO, the same path as ENOSPC; the store evicts to make room).
 * Each test opens its stores in a fresh directory, never across fork. */
#include <check.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check_main.h"
#include "../store_data.h"
#include "../tmpdir.h"
#include "er_log.h"
#include "store.h"

#define CUT 3
#define MAXV (16 * 256)

static char dir[64], data[96];

static void mk_dir(void) {
    er_test_mkdtemp(dir, sizeof dir, "damage");
    snprintf(data, sizeof data, "%s/data.mdb", dir);
}

static void key_of(int i, uint8_t key[32]) {
    uint8_t fp[32] = {9};
    int32_t ids[1] = {i};
    er_store_key(fp, CUT, 1, ids, NULL, 0, key);
}

/* Value i: small ones (inline in leaf pages) and large ones (overflow pages). */
static int n_of(int i) { return i % 3 == 0 ? 1 : 16; }
static int h_of(int i) { return i % 3 == 0 ? 8 : 64; }

static er_store_params params(uint64_t budget) {
    er_store_params p = er_store_default_params();
    p.dtype = ER_DTYPE_FP32;
    p.budget_bytes = budget;
    p.queue_bytes = 4u << 20;
    return p;
}

static er_store *open_ok(uint64_t budget) {
    er_store_params p = params(budget);
    er_store *s = NULL;
    er_err e;
    ck_assert_msg(er_store_open(dir, &p, &s, &e) == ER_OK, "%s", e.msg);
    return s;
}

/* Values 0..count-1, one commit each (a deterministic file layout). */
static void write_values(int count) {
    er_store *s = open_ok(1ull << 30);
    static float x[MAXV];
    for (int i = 0; i < count; i++) {
        uint8_t key[32];
        key_of(i, key);
        er_test_fill(x, n_of(i), h_of(i), i);
        ck_assert_int_eq(er_store_put(s, key, CUT, n_of(i), h_of(i), x, true, NULL), ER_OK);
        er_store_flush(s);
    }
    er_store_close(s);
}

/* Gets every value 0..count-1: a hit must be the value written (never a
 * wrong one).  hit[i] says which were hits; returns their number. */
static int check_values(er_store *s, int count, bool *hit) {
    er_store_reader *r;
    ck_assert_int_eq(er_store_reader_new(s, &r, NULL), ER_OK);
    static float x[MAXV], y[MAXV];
    int hits = 0;
    for (int i = 0; i < count; i++) {
        uint8_t key[32];
        key_of(i, key);
        er_status st = er_store_get(r, key, CUT, n_of(i), h_of(i), y, NULL);
        ck_assert_msg(st == ER_OK || st == ER_ERR_NOT_FOUND || st == ER_ERR_STORE, "value %d: %d", i, st);
        hit[i] = st == ER_OK;
        if (st == ER_OK) {
            er_test_fill(x, n_of(i), h_of(i), i);
            ck_assert_msg(!memcmp(x, y, sizeof(float) * (size_t)(n_of(i) * h_of(i))),
                          "value %d: a hit with the wrong content", i);
            hits++;
        }
    }
    er_store_reader_free(r);
    return hits;
}

static uint64_t file_size(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* Repairs the closed store and checks the result: it verifies, and every
 * value in was_hit (NULL: none) is still a hit.  Returns the report. */
static er_store_repair_report repair_ok(int count, const bool *was_hit) {
    er_store_repair_report rep;
    er_store_params p = params(1ull << 30);
    er_err e;
    ck_assert_msg(er_store_repair(dir, &p, &rep, &e) == ER_OK, "%s", e.msg);
    er_store *s = open_ok(1ull << 30);
    uint64_t ok, bad;
    ck_assert_msg(er_store_verify(s, false, &ok, &bad, &e) == ER_OK, "%s", e.msg);
    ck_assert_uint_eq(bad, 0);
    static bool hit[4096];
    check_values(s, count, hit);
    for (int i = 0; was_hit && i < count; i++)
        ck_assert_msg(!was_hit[i] || hit[i], "value %d was readable before the repair, not after", i);
    er_store_close(s);
    return rep;
}

/* Captures error lines of er_log. */
static char logged[2048];
static void sink(void *user, er_log_level level, const char *line) {
    (void)user;
    if (level >= ER_LOG_WARN && strlen(logged) + strlen(line) + 2 < sizeof logged) {
        strcat(logged, line);
        strcat(logged, "\n");
    }
}

/* A data file cut to half its size: open refuses it with a message naming
 * the file and the repair (instead of SIGBUS on the first missing page);
 * repair salvages what lies inside the file into a store that verifies. */
START_TEST(test_truncated) {
    mk_dir();
    const int count = 240;
    write_values(count);
    uint64_t size = file_size(data);
    ck_assert_int_eq(truncate(data, (off_t)(size / 2)), 0);
    er_store_params p = params(1ull << 30);
    er_store *s = NULL;
    er_err e;
    ck_assert_int_eq(er_store_open(dir, &p, &s, &e), ER_ERR_STORE);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(e.msg, data) && strstr(e.msg, "verify --repair") && strstr(e.msg, "truncated"),
                  "%s", e.msg);
    er_store_repair_report rep = repair_ok(count, NULL);
    ck_assert(rep.salvaged);
    ck_assert_msg(rep.recovered > 0 && rep.recovered < (uint64_t)count, "recovered %llu",
                  (unsigned long long)rep.recovered);
    s = open_ok(1ull << 30);
    static bool hit[240];
    ck_assert_int_eq(check_values(s, count, hit), (int)rep.recovered);
    er_store_close(s);
    /* cut to a size inside the meta pages and to nothing: refused, then LMDB's
     * own handling of an empty file (a new store) */
    ck_assert_int_eq(truncate(data, 5000), 0);
    ck_assert_int_eq(er_store_open(dir, &p, &s, &e), ER_ERR_STORE);
    ck_assert_int_eq(truncate(data, 0), 0);
    s = open_ok(1ull << 30);
    er_store_close(s);
    er_test_rmtree(dir);
}
END_TEST

/* A meta page (0, then 1) that is no longer one: refused with a clear error (LMDB's own
 * answer would be MDB_INVALID); the values are all salvaged. */
START_TEST(test_bad_meta) {
    mk_dir();
    const int count = 30;
    write_values(count);
    int fd = open(data, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "XXXX", 4, _i * 4096 + 16), 4); /* meta page _i's magic */
    close(fd);
    er_store_params p = params(1ull << 30);
    er_store *s = NULL;
    er_err e;
    ck_assert_int_eq(er_store_open(dir, &p, &s, &e), ER_ERR_STORE);
    char want[16];
    snprintf(want, sizeof want, "meta page %d", _i);
    ck_assert_msg(strstr(e.msg, want) && strstr(e.msg, "verify --repair"), "%s", e.msg);
    er_store_repair_report rep = repair_ok(count, NULL);
    ck_assert(rep.salvaged);
    ck_assert_uint_eq(rep.recovered, count);
    er_test_rmtree(dir);
}
END_TEST

/* Bytes flipped in every leaf page of a closed store (fixed seed, per page
 * size read from meta page 0): opening, reading, writing with evictions and
 * verifying never crash and never return a wrong value; the damage is
 * reported; repair yields a store that verifies and still holds every value
 * that was readable. */
START_TEST(test_leaf_flips) {
    mk_dir();
    const int count = 300;
    write_values(count);
    int fd = open(data, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint32_t psize;
    ck_assert_int_eq(pread(fd, &psize, 4, 40), 4);
    ck_assert(psize >= 512 && psize <= 65536);
    uint64_t pages = file_size(data) / psize;
    uint32_t r = 12345u + (uint32_t)_i * 7u;
    int leaves = 0;
    static uint8_t pg[65536];
    for (uint64_t n = 2; n < pages; n++) {
        ck_assert_int_eq(pread(fd, pg, psize, (off_t)(n * psize)), (ssize_t)psize);
        uint16_t flags;
        memcpy(&flags, pg + 10, 2);
        if ((flags & 0x07) != 0x02) continue; /* leaf pages only */
        leaves++;
        for (int k = 0; k < 6; k++) {
            r ^= r << 13; r ^= r >> 17; r ^= r << 5;
            pg[16 + r % (psize - 16)] ^= (uint8_t)(1u << (r >> 29));
        }
        ck_assert_int_eq(pwrite(fd, pg, psize, (off_t)(n * psize)), (ssize_t)psize);
    }
    close(fd);
    ck_assert_int_gt(leaves, 3);
    logged[0] = 0;
    er_log_set_sink(sink, NULL);
    static bool hit[300];
    int hits = 0;
    bool reported = false;
    er_store_params p = params(64u << 10); /* far below what is stored: writes evict */
    er_store *s = NULL;
    er_err e;
    if (er_store_open(dir, &p, &s, &e) != ER_OK) {
        reported = true; /* damage found at open */
    } else {
        hits = check_values(s, count, hit);
        static float x[MAXV];
        for (int i = 1000; i < 1040; i++) {
            uint8_t key[32];
            key_of(i, key);
            er_test_fill(x, n_of(i), h_of(i), i);
            er_store_put(s, key, CUT, n_of(i), h_of(i), x, true, NULL);
            if (i % 8 == 7) er_store_flush(s);
        }
        er_store_flush(s);
        uint64_t ok = 0, bad = 0;
        er_status vst = er_store_verify(s, false, &ok, &bad, &e);
        er_store_counters c;
        er_store_stats(s, &c);
        reported = vst != ER_OK || bad || c.corrupt || c.damaged || hits < count;
        if (c.damaged) { /* read-only: logged once, nothing evicted or inserted since */
            ck_assert_msg(strstr(logged, "is damaged") && strstr(logged, "verify --repair"), "%s", logged);
        }
        check_values(s, count, hit); /* still never a wrong value */
        hits = check_values(s, count, hit);
        er_store_close(s);
    }
    er_log_set_sink(NULL, NULL);
    ck_assert_msg(reported, "flipped bytes in %d leaf pages went unnoticed", leaves);
    er_store_repair_report rep = repair_ok(count, hits ? hit : NULL);
    ck_assert_uint_ge(rep.recovered + 40, (uint64_t)hits);
    er_test_rmtree(dir);
}
END_TEST

/* Opens the closed store's LMDB environment directly and empties its "lru"
 * index (or deletes its first `drop` entries). */
static void damage_lru(int drop) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 4);
    mdb_env_set_mapsize(env, 256u << 20);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "lru", 0, &dbi), 0);
    if (drop < 0) {
        ck_assert_int_eq(mdb_drop(txn, dbi, 0), 0);
    } else {
        MDB_cursor *c;
        MDB_val k, v;
        ck_assert_int_eq(mdb_cursor_open(txn, dbi, &c), 0);
        for (int i = 0; i < drop; i++) {
            ck_assert_int_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
            ck_assert_int_eq(mdb_cursor_del(c, 0), 0);
        }
        mdb_cursor_close(c);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Indexes that disagree with the values: verify says so; at run time an
 * eviction that finds the lru index empty while values remain turns the
 * store read-only with one log line (no phantom evictions, gets still
 * served); repair rebuilds the indexes from the values and evicts to the
 * budget. */
START_TEST(test_index_disagree) {
    mk_dir();
    const int count = 60;
    write_values(count);
    damage_lru(2);
    er_store *s = open_ok(1ull << 30);
    er_err e;
    ck_assert_int_eq(er_store_verify(s, false, NULL, NULL, &e), ER_ERR_STORE);
    ck_assert_msg(strstr(e.msg, "index sizes disagree"), "%s", e.msg);
    er_store_close(s);
    er_store_repair_report rep = repair_ok(count, NULL);
    ck_assert(rep.indexes_rebuilt && !rep.salvaged);

    damage_lru(-1);
    logged[0] = 0;
    er_log_set_sink(sink, NULL);
    uint64_t budget = 40 * er_store_value_size(ER_DTYPE_FP32, 16, 64);
    s = open_ok(budget); /* over budget: the next commit must evict */
    static float x[MAXV];
    uint8_t key[32];
    key_of(5000, key);
    er_test_fill(x, 16, 64, 5000);
    ck_assert_int_eq(er_store_put(s, key, CUT, 16, 64, x, true, NULL), ER_OK);
    er_store_flush(s);
    er_store_counters c;
    er_store_stats(s, &c);
    ck_assert_uint_eq(c.damaged, 1);
    ck_assert_uint_eq(c.evictions, 0);
    ck_assert_uint_eq(c.inserts, 0);
    ck_assert_msg(strstr(logged, "indexes disagree") && strstr(logged, "read-only") &&
                  strstr(logged, "verify --repair"), "%s", logged);
    ck_assert_int_eq(er_store_put(s, key, CUT, 16, 64, x, true, NULL), ER_OK);
    er_store_flush(s);
    er_store_stats(s, &c);
    ck_assert_uint_eq(c.dropped, 1);
    static bool hit[60];
    ck_assert_int_eq(check_values(s, count, hit), count); /* reads still served */
    ck_assert_int_eq(er_store_verify(s, true, NULL, NULL, &e), ER_ERR_STORE);
    ck_assert_int_eq(er_store_purge(s, &e), ER_ERR_STORE); /* no writes into a damaged store */
    ck_assert_msg(strstr(e.msg, "verify --repair"), "%s", e.msg);
    er_store_close(s);
    er_log_set_sink(NULL, NULL);
    ck_assert_msg(strstr(logged, "is damaged") && !strstr(strstr(logged, "is damaged") + 1, "is damaged"),
                  "one damage line expected: %s", logged);
    er_store_params p = params(budget);
    ck_assert_int_eq(er_store_repair(dir, &p, &rep, &e), ER_OK);
    ck_assert(rep.indexes_rebuilt && !rep.salvaged);
    s = open_ok(budget);
    er_store_stats(s, &c);
    ck_assert_uint_le(c.bytes, budget);
    ck_assert_uint_gt(c.entries, 0);
    ck_assert_int_eq(er_store_verify(s, false, NULL, NULL, &e), ER_OK);
    check_values(s, count, hit);
    er_store_close(s);
    er_test_rmtree(dir);
}
END_TEST

/* A full disk, faked with RLIMIT_FSIZE in a forked child (SIGXFSZ ignored,
 * so LMDB's commit gets EFBIG, or EIO for a short write: the path ENOSPC
 * takes).  The store evicts to make room and keeps caching; what it cannot
 * store is logged.  The child reports through its exit status. */
static int full_disk_child(void) {
    struct rlimit rl = {2u << 20, 2u << 20};
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl)) return 10;
    logged[0] = 0;
    er_log_set_sink(sink, NULL);
    er_store_params p = params(1ull << 30); /* the budget never binds: the disk does */
    er_store *s;
    if (er_store_open(dir, &p, &s, NULL) != ER_OK) return 11;
    static float x[MAXV];
    uint8_t key[32];
    for (int i = 0; i < 400; i++) {
        key_of(i, key);
        er_test_fill(x, 16, 256, i);
        er_store_put(s, key, CUT, 16, 256, x, true, NULL);
        if (i % 10 == 9) er_store_flush(s);
    }
    er_store_flush(s);
    er_store_counters c;
    er_store_stats(s, &c);
    fprintf(stderr, "full disk: inserts %llu, no_space %llu, evictions %llu, write errors %llu, "
            "entries %llu, bytes %llu, file limit 2 MiB\n%s", (unsigned long long)c.inserts,
            (unsigned long long)c.no_space, (unsigned long long)c.evictions,
            (unsigned long long)c.write_errors, (unsigned long long)c.entries,
            (unsigned long long)c.bytes, logged);
    if (c.no_space == 0) return 12;
    if (c.evictions == 0) return 13;
    if (c.inserts < 300) return 14;
    if (c.write_errors && !strstr(logged, "not cached")) return 15;
    er_store_reader *r;
    if (er_store_reader_new(s, &r, NULL) != ER_OK) return 16;
    key_of(399, key);
    float y[16 * 256];
    er_test_fill(x, 16, 256, 399);
    if (er_store_get(r, key, CUT, 16, 256, y, NULL) != ER_OK || memcmp(x, y, sizeof y)) return 17;
    er_store_reader_free(r);
    if (er_store_verify(s, false, NULL, NULL, NULL) != ER_OK) return 18;
    er_store_close(s);
    return 0;
}

START_TEST(test_full_disk) {
    mk_dir();
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(full_disk_child());
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %d", status);
    /* the store stays usable without the limit */
    er_store *s = open_ok(1ull << 30);
    ck_assert_int_eq(er_store_verify(s, false, NULL, NULL, NULL), ER_OK);
    er_store_close(s);
    er_test_rmtree(dir);
}
END_TEST

static Suite *store_damage_suite(void) {
    Suite *s = suite_create("store_damage");
    TCase *tc = tcase_create("store_damage");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_truncated);
    tcase_add_loop_test(tc, test_bad_meta, 0, 2);
    tcase_add_loop_test(tc, test_leaf_flips, 0, 4);
    tcase_add_test(tc, test_index_disagree);
    tcase_add_test(tc, test_full_disk);
    suite_add_tcase(s, tc);
    return s;
}

ER_CHECK_MAIN(store_damage_suite)
