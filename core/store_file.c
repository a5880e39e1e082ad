/* The store's data file read without LMDB: its two meta pages (checked before
 * LMDB maps the file, so a truncated file is refused instead of killing the
 * process with SIGBUS) and a raw walk over its leaf pages (salvage: every
 * value still readable, whatever the state of the B-tree).
 *
 * LMDB 0.9 layout on a 64-bit machine (lmdb's mdb.c, MDB_page, MDB_meta,
 * MDB_node):
 *   page header, 16 bytes: u64 pgno | u16 pad | u16 flags | u16 lower | u16 upper
 *     (an overflow page has u32 page count in place of lower/upper)
 *   meta (pages 0 and 1, after the header): u32 magic 0xBEEFC0DE, u32 version 1,
 *     pointer, u64 map size, 2 x 48-byte MDB_db (the first one's u32 md_pad is
 *     the page size), u64 last_pg, u64 txnid
 *   leaf page: u16 node offsets from byte 16 to `lower`; node: u16 lo, u16 hi
 *     (data size lo | hi << 16), u16 flags (F_BIGDATA: data is the u64 page
 *     number of an overflow page whose data starts after its header), u16 key
 *     size, key, data.
 * Every access is bounds-checked against the file's size: nothing here reads
 * a page past the end of the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

#define PAGEHDR 16
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_OVERFLOW 0x04
#define P_META 0x08
#define P_LEAF2 0x20
#define P_SUBP 0x40
#define F_BIGDATA 0x01
#define F_SUBDATA 0x02
#define F_DUPDATA 0x04
#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1
#define META_BYTES 152 /* header + meta up to txnid */

static uint16_t u16_at(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t u32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t u64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static bool psize_ok(uint64_t ps) { return ps >= 512 && ps <= 65536 && !(ps & (ps - 1)); }

/* One meta page: 0 when it is a valid LMDB meta page. */
static int parse_meta(const uint8_t *pg, uint64_t *psize, uint64_t *last_pg, uint64_t *txnid) {
    if (!(u16_at(pg + 10) & P_META) || u32_at(pg + 16) != LMDB_MAGIC ||
        u32_at(pg + 20) != LMDB_DATA_VERSION || !psize_ok(u32_at(pg + 40)))
        return -1;
    *psize = u32_at(pg + 40);
    *last_pg = u64_at(pg + 136);
    *txnid = u64_at(pg + 144);
    return 0;
}

static long sys_page(void) {
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? ps : 4096;
}

/* Reads both meta pages of the open file fd of `size` bytes into info; the
 * page size is meta 0's (the system's when meta 0 is unreadable). */
static void read_metas(int fd, uint64_t size, er_store_file_info *info) {
    uint8_t pg[META_BYTES];
    uint64_t ps[2], last[2], txn[2];
    bool ok[2] = {false, false};
    info->psize = (uint64_t)sys_page();
    for (int i = 0; i < 2; i++) {
        uint64_t off = i ? info->psize : 0;
        if (off + META_BYTES > size || pread(fd, pg, sizeof pg, (off_t)off) != (ssize_t)sizeof pg)
            continue;
        ok[i] = parse_meta(pg, &ps[i], &last[i], &txn[i]) == 0;
        if (i == 0 && ok[0]) info->psize = ps[0];
    }
    if (ok[1] && ps[1] != info->psize) ok[1] = false;
    info->meta_ok[0] = ok[0];
    info->meta_ok[1] = ok[1];
    info->meta = ok[0] && (!ok[1] || txn[0] >= txn[1]) ? 0 : ok[1] ? 1 : -1;
    if (info->meta >= 0) {
        info->last_pg = last[info->meta];
        info->txnid = txn[info->meta];
    }
}

er_status er_store_file_check(const char *data_path, er_store_file_info *info, er_err *err) {
    memset(info, 0, sizeof *info);
    info->meta = -1;
    int fd = open(data_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return ER_OK; /* a new store */
        return er_set(err, ER_ERR_IO, "cannot open %s: %s", data_path, strerror(errno));
    }
    info->exists = true;
    /* the metas first, then the size: the file only grows while a writer
     * commits, and it writes a commit's pages before its meta page */
    struct stat st;
    uint8_t probe;
    bool empty = pread(fd, &probe, 1, 0) == 0;
    if (!empty) read_metas(fd, UINT64_MAX, info);
    int rc = fstat(fd, &st);
    close(fd);
    if (rc) return er_set(err, ER_ERR_IO, "cannot stat %s: %s", data_path, strerror(errno));
    info->file_bytes = (uint64_t)st.st_size;
    if (empty || info->file_bytes == 0) return ER_OK; /* LMDB initialises an empty file */
    char what[4300];
    int dlen = (int)(strrchr(data_path, '/') ? strrchr(data_path, '/') - data_path : 1);
    snprintf(what, sizeof what, "run `erserve-cache --store %.*s verify --repair` (stop erserve "
             "first) to keep its readable values, or remove the file", dlen,
             strrchr(data_path, '/') ? data_path : ".");
    if (!info->meta_ok[0] || !info->meta_ok[1])
        return er_set(err, ER_ERR_STORE, "store file %s is damaged: meta page %d is not a valid "
                      "LMDB meta page (%llu bytes); %s", data_path, info->meta_ok[0] ? 1 : 0,
                      (unsigned long long)info->file_bytes, what);
    uint64_t need = info->last_pg + 1;
    if (need > UINT64_MAX / info->psize || need * info->psize > info->file_bytes)
        return er_set(err, ER_ERR_STORE, "store file %s is damaged: it has %llu bytes but its last "
                      "commit needs %llu pages of %llu bytes (truncated? the disk filled?); %s",
                      data_path, (unsigned long long)info->file_bytes,
                      (unsigned long long)need, (unsigned long long)info->psize, what);
    return ER_OK;
}

er_status er_store_file_salvage(const char *data_path, er_salvage_fn fn, void *user,
                                uint64_t *pages, er_err *err) {
    *pages = 0;
    int fd = open(data_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return ER_OK;
        return er_set(err, ER_ERR_IO, "cannot open %s: %s", data_path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return er_set(err, ER_ERR_IO, "cannot stat %s: %s", data_path, strerror(errno));
    }
    er_store_file_info info = {.meta = -1};
    read_metas(fd, (uint64_t)st.st_size, &info);
    uint64_t ps = info.psize, npages = (uint64_t)st.st_size / ps;
    if (npages < 3) {
        close(fd);
        return ER_OK;
    }
    /* whole pages inside the file only: nothing mapped past its end */
    const uint8_t *base = mmap(NULL, npages * ps, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return er_set(err, ER_ERR_IO, "cannot map %s: %s", data_path, strerror(errno));
    er_status res = ER_OK;
    for (uint64_t pg = 2; pg < npages && res == ER_OK; pg++) {
        const uint8_t *p = base + pg * ps;
        uint16_t flags = u16_at(p + 10), lower = u16_at(p + 12), upper = u16_at(p + 14);
        if (!(flags & P_LEAF) || (flags & (P_BRANCH | P_OVERFLOW | P_META | P_LEAF2 | P_SUBP)))
            continue;
        if (lower < PAGEHDR || lower > ps || upper > ps || lower > upper) continue;
        (*pages)++;
        for (unsigned i = 0; i < (unsigned)(lower - PAGEHDR) / 2u; i++) {
            uint64_t off = u16_at(p + PAGEHDR + 2 * i);
            if (off < PAGEHDR || off + 8 + ER_STORE_KEY_BYTES > ps) continue;
            const uint8_t *node = p + off;
            uint64_t dsize = u16_at(node) | (uint64_t)u16_at(node + 2) << 16;
            uint16_t nflags = u16_at(node + 4), ksize = u16_at(node + 6);
            if (ksize != ER_STORE_KEY_BYTES || (nflags & (F_SUBDATA | F_DUPDATA))) continue;
            const uint8_t *key = node + 8, *data = key + ER_STORE_KEY_BYTES;
            const uint8_t *v;
            if (nflags & F_BIGDATA) {
                if (off + 8 + ER_STORE_KEY_BYTES + 8 > ps) continue;
                uint64_t ov = u64_at(data);
                if (ov < 2 || ov >= npages || dsize > (npages - ov) * ps - PAGEHDR) continue;
                v = base + ov * ps + PAGEHDR;
            } else {
                if (off + 8 + ER_STORE_KEY_BYTES + dsize > ps) continue;
                v = data;
            }
            res = fn(user, key, v, (size_t)dsize, err);
        }
    }
    munmap((void *)(uintptr_t)base, npages * ps);
    return res;
}

/* ---- the B-tree's structure ---- */

#define MAX_DEPTH 32
#define P_INVALID UINT64_MAX
#define NODE_FLAGS (F_BIGDATA | F_SUBDATA | F_DUPDATA)

enum tree_kind { TREE_FREE, TREE_MAIN, TREE_DB };

typedef struct {
    const uint8_t *base;
    uint64_t ps, npages; /* pages LMDB may reach: last_pg + 1 */
    uint8_t *seen;       /* a bit per page: each is referenced once */
    char why[200];
    uint64_t bad_pg;
} tree_walk;

static int tw_fail(tree_walk *t, uint64_t pg, const char *why) {
    t->bad_pg = pg;
    snprintf(t->why, sizeof t->why, "%s", why);
    return -1;
}

/* LMDB's default order (mdb_cmp_memn), or native u64 for MDB_INTEGERKEY. */
static int key_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb, bool integer) {
    if (integer && la == 8 && lb == 8) {
        uint64_t x = u64_at(a), y = u64_at(b);
        return x < y ? -1 : x > y;
    }
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : la < lb ? -1 : la > lb;
}

/* A page number a node or a meta gives: inside the file and not yet seen. */
static int tw_claim(tree_walk *t, uint64_t pg, uint64_t from) {
    if (pg < 2 || pg >= t->npages) return tw_fail(t, from, "a page number out of range");
    if (t->seen[pg / 8] & (1u << (pg % 8))) return tw_fail(t, from, "a page referenced twice");
    t->seen[pg / 8] |= (uint8_t)(1u << (pg % 8));
    const uint8_t *p = t->base + pg * t->ps;
    if (u64_at(p) != pg) return tw_fail(t, pg, "a page whose header names another page");
    return 0;
}

static int tw_overflow(tree_walk *t, uint64_t ov, uint64_t dsize, uint64_t from) {
    if (tw_claim(t, ov, from)) return -1;
    const uint8_t *p = t->base + ov * t->ps;
    uint64_t n = u32_at(p + 12);
    if (!(u16_at(p + 10) & P_OVERFLOW) || n == 0 || n > t->npages - ov ||
        n * t->ps < dsize + PAGEHDR)
        return tw_fail(t, ov, "a bad overflow page");
    return 0;
}

static int tw_page(tree_walk *t, uint64_t pg, int depth, enum tree_kind kind);

/* A named database's record (an MDB_db) in the main database's leaf. */
static int tw_subdb(tree_walk *t, const uint8_t *db, uint64_t from) {
    uint64_t root = u64_at(db + 40);
    if (root == P_INVALID) return 0;
    if (tw_claim(t, root, from)) return -1;
    return tw_page(t, root, 1, TREE_DB);
}

static int tw_page(tree_walk *t, uint64_t pg, int depth, enum tree_kind kind) {
    if (depth > MAX_DEPTH) return tw_fail(t, pg, "a tree deeper than LMDB allows");
    const uint8_t *p = t->base + pg * t->ps;
    uint16_t flags = u16_at(p + 10), lower = u16_at(p + 12), upper = u16_at(p + 14);
    bool branch = flags & P_BRANCH, leaf = flags & P_LEAF;
    if (branch == leaf || (flags & (P_OVERFLOW | P_META | P_LEAF2 | P_SUBP)))
        return tw_fail(t, pg, "a page that is neither a branch nor a leaf");
    if (lower < PAGEHDR || lower > upper || upper > t->ps || (lower - PAGEHDR) % 2)
        return tw_fail(t, pg, "a page with bad bounds");
    unsigned n = (unsigned)(lower - PAGEHDR) / 2;
    if (n == 0) return tw_fail(t, pg, "an empty page in a tree");
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t off = u16_at(p + PAGEHDR + 2 * i);
        if (off < upper || off + 8 > t->ps) return tw_fail(t, pg, "a node outside its page");
        const uint8_t *node = p + off;
        uint64_t lo = u16_at(node), hi = u16_at(node + 2), nf = u16_at(node + 4);
        size_t ks = u16_at(node + 6);
        if (off + 8 + ks > t->ps) return tw_fail(t, pg, "a key outside its page");
        const uint8_t *key = node + 8;
        if (!(branch && i == 0)) { /* a branch's first key is implicit */
            if (prev && key_cmp(prev, prev_len, key, ks, kind == TREE_FREE) >= 0)
                return tw_fail(t, pg, "keys out of order");
            prev = key;
            prev_len = ks;
        }
        if (branch) {
            uint64_t child = lo | hi << 16 | nf << 32;
            if (tw_claim(t, child, pg) || tw_page(t, child, depth + 1, kind)) return -1;
            continue;
        }
        uint64_t dsize = lo | hi << 16;
        if (nf & ~(uint64_t)NODE_FLAGS || (nf & F_DUPDATA) ||
            ((nf & F_SUBDATA) && kind != TREE_MAIN))
            return tw_fail(t, pg, "a node with bad flags");
        const uint8_t *d = key + ks;
        if (nf & F_BIGDATA) {
            if (off + 8 + ks + 8 > t->ps) return tw_fail(t, pg, "a node outside its page");
            if (tw_overflow(t, u64_at(d), dsize, pg)) return -1;
            if (kind != TREE_FREE) continue;
            d = t->base + u64_at(d) * t->ps + PAGEHDR;
        } else if (off + 8 + ks + dsize > t->ps) {
            return tw_fail(t, pg, "a node outside its page");
        }
        if (kind == TREE_MAIN && (nf & F_SUBDATA)) {
            if (dsize != 48 || tw_subdb(t, d, pg)) return t->why[0] ? -1 : tw_fail(t, pg, "a bad database record");
        } else if (kind == TREE_FREE) { /* a list of free pages: count, then page numbers */
            if (dsize < 8 || u64_at(d) != dsize / 8 - 1) return tw_fail(t, pg, "a bad free list");
            for (uint64_t j = 1; j < dsize / 8; j++)
                if (u64_at(d + 8 * j) < 2 || u64_at(d + 8 * j) >= t->npages)
                    return tw_fail(t, pg, "a free list naming a page out of range");
        }
    }
    return 0;
}

er_status er_store_file_check_tree(const char *data_path, er_err *err) {
    er_store_file_info info;
    er_status st = er_store_file_check(data_path, &info, err);
    if (st != ER_OK || !info.exists || info.file_bytes == 0) return st;
    int fd = open(data_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return er_set(err, ER_ERR_IO, "cannot open %s: %s", data_path, strerror(errno));
    tree_walk t = {.ps = info.psize, .npages = info.last_pg + 1};
    size_t len = (size_t)(t.npages * t.ps);
    t.base = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0); /* inside the file: checked */
    close(fd);
    if (t.base == MAP_FAILED) return er_set(err, ER_ERR_IO, "cannot map %s: %s", data_path, strerror(errno));
    t.seen = calloc((size_t)(t.npages / 8 + 1), 1);
    if (!t.seen) {
        munmap((void *)(uintptr_t)t.base, len);
        return er_set(err, ER_ERR_NOMEM, "out of memory");
    }
    const uint8_t *meta = t.base + (uint64_t)info.meta * t.ps;
    uint64_t free_root = u64_at(meta + 80), main_root = u64_at(meta + 128);
    int bad = 0;
    if (free_root != P_INVALID)
        bad = tw_claim(&t, free_root, (uint64_t)info.meta) || tw_page(&t, free_root, 1, TREE_FREE);
    if (!bad && main_root != P_INVALID)
        bad = tw_claim(&t, main_root, (uint64_t)info.meta) || tw_page(&t, main_root, 1, TREE_MAIN);
    if (bad)
        st = er_set(err, ER_ERR_STORE, "store file %s is damaged: page %llu: %s", data_path,
                    (unsigned long long)t.bad_pg, t.why);
    free(t.seen);
    munmap((void *)(uintptr_t)t.base, len);
    return st;
}

int er_store_file_in_use(const char *dir) {
    char lock[4096];
    snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
    int fd = open(lock, O_RDWR | O_CLOEXEC);
    if (fd < 0) return 0;
    /* every process with the environment open holds a read lock on byte 0
     * of lock.mdb (LMDB's mdb_env_excl_lock) */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    int busy = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return busy;
}
