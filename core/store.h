/* er_store: the activation store.  Layer-`cut` activations of a sequence's
 * real tokens, [n_tokens, hidden], kept in an LMDB environment (a directory)
 * under a 32-byte key, so later requests run only the upper layers.
 *
 * Keys: BLAKE2b-256 over the lower-stack fingerprint, the cut, the token ids,
 * the token type ids and a caller salt (er_store_key).  Values: a 64-byte
 * versioned header (magic, format version, dtype, n_tokens, hidden, cut,
 * payload length, a 128-bit checksum of header and payload) and the payload in the store's
 * dtype.  A value whose header or checksum does not match is a miss, counted
 * as corrupt; the caller recomputes it and the put overwrites it.
 *
 * Budget and eviction (approximately LRU, see core/STORE.md): the sum of
 * value sizes stays under budget_bytes.  Every entry carries a last-access
 * tick in a side index ordered by tick; inserts evict from the oldest end in
 * the same write transaction.  A hit refreshes the tick lazily (queued to the
 * writer, only when the entry has aged past 1/8 of the store), so hot entries
 * cost at most a few index writes per "generation".  MDB_MAP_FULL (at a put
 * or at commit) evicts 1/8 more and retries; a full store never fails a
 * request: at worst a value is not cached.
 *
 * Concurrency: one er_store per process per directory (never across fork:
 * open after forking).  The store is thread-safe.  Readers each use their
 * own er_store_reader (one thread at a time per reader) and never block on
 * the writer (LMDB MVCC, MDB_NOTLS).  Puts are copied into a bounded queue
 * and committed by one writer thread, many values per transaction; they are
 * durable after er_store_flush / er_store_close.  A kill -9 loses at most
 * the values not yet committed, never corrupts the store.
 *
 * Damage (core/STORE.md, "Failure modes"): a data file shorter than its meta
 * page claims, or with a bad meta page, is refused at open (ER_ERR_STORE
 * naming the file and er_store_repair / `erserve-cache verify --repair`);
 * a structural LMDB error at run time is logged once and turns the store
 * read-only (counter `damaged`); a full disk evicts to make room and
 * retries (counter `no_space`), logging what could not be stored. */
#ifndef ER_STORE_H
#define ER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "er_error.h"

typedef struct er_store er_store;
typedef struct er_store_reader er_store_reader;

/* Values are kept as ER_DTYPE_FP32 (exact), ER_DTYPE_FP16 (round to nearest
 * even, saturating) or ER_DTYPE_INT8 (symmetric per-token scale); dtype.h. */

#define ER_STORE_KEY_BYTES 32
#define ER_STORE_HEADER_BYTES 64
#define ER_STORE_FORMAT_VERSION 2 /* 2: bytes [48, 64) hold the key's first 16 */

typedef struct {
    er_dtype dtype;        /* of new values (FP32, FP16 or INT8); values of every
                              store dtype are read */
    uint64_t budget_bytes; /* sum of value sizes kept; default 1 GiB */
    uint64_t map_bytes;    /* LMDB map; 0 = 4 * budget + 64 MiB (grown at open
                              to at least the data file's size) */
    size_t queue_bytes;    /* write queue (two halves); default 64 MiB */
    int max_readers;       /* er_store_readers open at once; default 512 */
} er_store_params;

er_store_params er_store_default_params(void);

/* A store dtype by its configuration name, "fp32", "fp16" or "int8"; -1 when
 * NULL, unknown, or a dtype the store cannot hold ("bf16").  Names: see
 * er_dtype_name. */
int er_store_dtype_parse(const char *s);

/* Bytes one value of n_tokens x hidden takes (header included); d a store
 * dtype. */
size_t er_store_value_size(er_dtype d, int n_tokens, int hidden);

/* key = BLAKE2b-256(fingerprint[32], cut, n, ids[n], type ids[n] (zeros when
 * NULL), salt), integers little-endian.  Never allocates. */
void er_store_key(const uint8_t fingerprint[32], int cut, int n, const int32_t *ids,
                  const int32_t *type_ids, uint64_t salt, uint8_t key[ER_STORE_KEY_BYTES]);

/* Opens (creating the directory if needed) the store at `path`.
 * ER_ERR_INVALID_ARG (params), ER_ERR_IO (directory), ER_ERR_STORE (LMDB,
 * message names the call), ER_ERR_NOMEM. */
er_status er_store_open(const char *path, const er_store_params *p, er_store **out, er_err *err);

/* Commits what is queued, stops the writer, closes.  NULL accepted.  Every
 * reader must be freed first. */
void er_store_close(er_store *s);

/* A read handle for one thread at a time; allocates once, so er_store_get
 * never does. */
er_status er_store_reader_new(er_store *s, er_store_reader **out, er_err *err);
void er_store_reader_free(er_store_reader *r); /* NULL accepted */

/* Looks `key` up and decodes the value into out [n_tokens, hidden] (fp32).
 * The header must match cut, n_tokens and hidden, and the checksum the
 * payload.  out == NULL only checks presence and header (no checksum).
 * Returns ER_OK (hit), ER_ERR_NOT_FOUND (miss; corrupt values are misses
 * and counted), ER_ERR_STORE (LMDB failed; treat as a miss). */
er_status er_store_get(er_store_reader *r, const uint8_t key[ER_STORE_KEY_BYTES], int cut,
                       int n_tokens, int hidden, float *out, er_err *err);

/* Encodes x [n_tokens, hidden] in the store's dtype and queues it for the
 * writer.  With wait = false a full queue drops the value (counted as
 * dropped, returns ER_ERR_CAPACITY); with wait = true it waits for room.
 * Never allocates.  Thread-safe. */
er_status er_store_put(er_store *s, const uint8_t key[ER_STORE_KEY_BYTES], int cut, int n_tokens,
                       int hidden, const float *x, bool wait, er_err *err);

/* Waits until everything queued before the call is committed (or dropped on
 * an LMDB error, counted in write_errors). */
void er_store_flush(er_store *s);

/* Rounds activations x[n_tokens, hidden] in place to exactly what a later hit
 * on them would return (nothing for fp32).  The recycling forward applies it
 * to freshly computed misses, so that a document's answer is the same whether
 * it was computed or recycled.  Thread-safe. */
void er_store_round(const er_store *s, int n_tokens, int hidden, float *x);

typedef struct {
    uint64_t entries, bytes;          /* current: values and the sum of their sizes */
    uint64_t budget_bytes, map_bytes; /* configured */
    uint64_t hits, misses, corrupt;   /* this process: gets */
    uint64_t inserts, evictions;      /* this process: committed puts, evicted entries */
    uint64_t dropped;                 /* puts not cached: queue full, too large */
    uint64_t write_errors, commits, map_full; /* LMDB write failures, transactions, MAP_FULLs */
    uint64_t reads, read_ns_sum, read_ns_max;  /* get latency (lookup + checksum + decode) */
    uint64_t read_us_hist[16]; /* gets by latency: [i] < 2^i microseconds; [15] the rest */
    uint64_t no_space;  /* commits refused by the file system (ENOSPC, EDQUOT, EFBIG, EIO):
                           each evicts to make room and retries */
    uint64_t damaged;   /* structural LMDB errors (MDB_CORRUPTED, MDB_PAGE_NOTFOUND, ...);
                           nonzero: the store is read-only until repaired */
} er_store_counters;

void er_store_stats(const er_store *s, er_store_counters *out);

/* Deletes every value (after committing the queue).  ER_ERR_STORE (also when the
 * store is damaged and read-only: repair it instead). */
er_status er_store_purge(er_store *s, er_err *err);

/* Checks every value's header and checksum (with remove_corrupt the bad ones
 * are deleted) and that the indexes agree with the values (entry counts, the
 * byte total).  *ok / *bad may be NULL.  ER_ERR_STORE when LMDB fails or the
 * indexes disagree (message says how). */
er_status er_store_verify(er_store *s, bool remove_corrupt, uint64_t *ok, uint64_t *bad,
                          er_err *err);

typedef struct {
    uint64_t ok, bad;       /* values with a good / bad header and checksum (salvage:
                               every copy found in the file's leaf pages) */
    bool indexes_rebuilt;   /* atime / lru / byte total rebuilt from the values */
    bool salvaged;          /* the B-tree or the file was damaged: the readable values
                               were copied into a fresh store that replaced it */
    uint64_t recovered;     /* salvage: values in the fresh store */
    uint64_t leaf_pages;    /* salvage: leaf pages walked */
    char why[256];          /* salvage: the error that made it necessary */
} er_store_repair_report;

/* Repairs the closed store at path (refused while another process has it
 * open): deletes bad values and rebuilds indexes that disagree with the
 * values in place; when the file cannot be opened (truncated, damaged meta
 * page) or LMDB reports structural damage, walks every page inside the file
 * (never past its end), copies every value whose header and checksum hold
 * into a fresh store and swaps it in.  The result verifies.  ER_ERR_STORE,
 * ER_ERR_IO. */
er_status er_store_repair(const char *path, const er_store_params *p, er_store_repair_report *rep,
                          er_err *err);

#endif
