/* plugins/storage-sqlite/storage_sqlite.c - the embedded store: the
 * skiff_store_vtable_t of sdk/include/skiff/store.h on one SQLite file.
 *
 * Layout: an MVCC log table (one row per revision) in WAL mode with
 * synchronous=FULL, plus a meta table holding the compacted revision.
 * The loop thread keeps a small index of the latest state of every live key
 * (revisions and version, no values) so writes are checked and numbered at
 * once, in submission order. Writes queue up; one batch at a time goes to a
 * libuv worker that commits it as one transaction (one fsync), then the loop
 * runs that batch's callbacks and watch events. Reads use a second
 * connection on the loop thread and never see a revision that has not been
 * acknowledged. This file must not block the loop on an fsync. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>
#include <uv.h>

#include <skiff/errors.h>
#include <skiff/plugin.h>
#include <skiff/store.h>

#define SQLS_MAX_VALUE (16u * 1024u * 1024u) /* larger values are refused */
#define SQLS_WATCH_CHUNK 512                 /* history events per watch callback */

static const skiff_store_vtable_t sqls_vtable;

/* ---- in-memory index of live keys ---------------------------------------- */

typedef struct kv_entry {
    struct kv_entry *next;
    uint64_t hash;
    int64_t mod_rev;
    int64_t create_rev;
    int64_t version;
    char key[];
} kv_entry_t;

typedef struct kv_index {
    kv_entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
} kv_index_t;

static uint64_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

static int index_init(kv_index_t *ix)
{
    ix->nbuckets = 1024;
    ix->count = 0;
    ix->buckets = calloc(ix->nbuckets, sizeof *ix->buckets);
    return ix->buckets ? 0 : SKIFF_ENOMEM;
}

static void index_free(kv_index_t *ix)
{
    if (ix->buckets == NULL) return;
    for (size_t i = 0; i < ix->nbuckets; i++) {
        kv_entry_t *e = ix->buckets[i];
        while (e) {
            kv_entry_t *n = e->next;
            free(e);
            e = n;
        }
    }
    free(ix->buckets);
    ix->buckets = NULL;
}

static kv_entry_t *index_find(kv_index_t *ix, const char *key)
{
    uint64_t h = key_hash(key);
    for (kv_entry_t *e = ix->buckets[h & (ix->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0) return e;
    return NULL;
}

static void index_grow(kv_index_t *ix)
{
    size_t n = ix->nbuckets * 2;
    kv_entry_t **b = calloc(n, sizeof *b);
    if (b == NULL) return; /* keep the old table: slower, still correct */
    for (size_t i = 0; i < ix->nbuckets; i++) {
        kv_entry_t *e = ix->buckets[i];
        while (e) {
            kv_entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->nbuckets = n;
}

static kv_entry_t *index_insert(kv_index_t *ix, const char *key, int64_t mod, int64_t create,
                                int64_t version)
{
    size_t klen = strlen(key);
    kv_entry_t *e = malloc(sizeof *e + klen + 1);
    if (e == NULL) return NULL;
    memcpy(e->key, key, klen + 1);
    e->hash = key_hash(key);
    e->mod_rev = mod;
    e->create_rev = create;
    e->version = version;
    if (ix->count >= ix->nbuckets) index_grow(ix);
    size_t b = e->hash & (ix->nbuckets - 1);
    e->next = ix->buckets[b];
    ix->buckets[b] = e;
    ix->count++;
    return e;
}

static void index_remove(kv_index_t *ix, const char *key)
{
    uint64_t h = key_hash(key);
    kv_entry_t **pp = &ix->buckets[h & (ix->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        kv_entry_t *e = *pp;
        if (e->hash == h && strcmp(e->key, key) == 0) {
            *pp = e->next;
            free(e);
            ix->count--;
            return;
        }
    }
}

/* ---- store, operations, watches ----------------------------------------- */

enum { OP_CREATE = 1, OP_UPDATE = 2, OP_DELETE = 3, OP_COMPACT = 4 };

typedef struct store_op {
    struct store_op *next;
    int type;
    int status;        /* non-zero: refused at submission, nothing to write */
    int64_t rev;       /* assigned revision; for OP_COMPACT the compaction revision */
    int64_t create_rev;
    int64_t version;
    /* The key's state before this op: for rollback, watch prev and delete results. */
    int prev_exists;
    int64_t prev_mod;
    int64_t prev_create;
    int64_t prev_version;
    char *prev_value; /* loaded from the log on demand, after commit */
    size_t prev_len;
    int prev_loaded;
    skiff_store_write_cb wcb;
    skiff_store_compact_cb ccb;
    void *data;
    char *key;
    char *value;
    size_t len;
    char buf[]; /* key, NUL, value */
} store_op_t;

typedef struct sqls_store sqls_store_t;

struct skiff_store_watch {
    struct skiff_store_watch *next;
    sqls_store_t *s;
    char *prefix;
    size_t prefix_len;
    char *prefix_end; /* NULL: no upper bound */
    int64_t after;    /* events up to this revision were delivered */
    skiff_store_watch_cb cb;
    void *data;
    int cancelled;
};

struct sqls_store {
    skiff_store_t base;
    skiff_plugin_ctx_t *ctx;
    uv_loop_t *loop;
    sqlite3 *wdb; /* writer: used by one worker at a time */
    sqlite3 *rdb; /* reader: loop thread only */
    sqlite3_stmt *w_insert, *w_compact_old, *w_compact_tomb, *w_meta;
    sqlite3_stmt *r_get, *r_range, *r_range_open, *r_by_rev, *r_hist, *r_hist_open;
    kv_index_t index;
    int64_t rev_assigned; /* last revision handed to a write (may be pending) */
    int64_t rev_durable;  /* last committed and acknowledged revision */
    int64_t compacted;
    int64_t compacted_durable; /* last compaction revision written to the file */
    store_op_t *q_head, *q_tail;
    size_t q_len;
    store_op_t *batch; /* in flight on the worker */
    int inflight;
    int batch_rc;
    char batch_err[256];
    uv_work_t work;
    uv_idle_t idle;
    int idle_active;
    struct skiff_store_watch *watches;
    int depth; /* > 0 while user callbacks may run */
    int closing;
    int finished;
    void (*close_done)(void *data);
    void *close_data;
    int max_batch;
    uint64_t n_commits;
    uint64_t n_writes;
};

static void sqls_log(sqls_store_t *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sqls_log(sqls_store_t *s, int level, const char *fmt, ...)
{
    if (s->ctx == NULL || s->ctx->log == NULL) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->ctx->log(s->ctx, level, "%s", line);
}

static const char *setting(skiff_plugin_ctx_t *ctx, const char *name, const char *fallback)
{
    const char *v = (ctx && ctx->setting) ? ctx->setting(ctx, name) : NULL;
    return v ? v : fallback;
}

static void kick_batch(sqls_store_t *s);
static void update_idle(sqls_store_t *s);
static void maybe_finish_close(sqls_store_t *s);

/* ---- SQLite helpers ----------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : SKIFF_EIO;
}

static int prepare(sqls_store_t *s, sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK) {
        sqls_log(s, SKIFF_LOG_ERROR, "preparing statement: %s", sqlite3_errmsg(db));
        return SKIFF_EIO;
    }
    return 0;
}

static int mkdir_parents(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL) return SKIFF_ENOMEM;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            free(copy);
            return SKIFF_EIO;
        }
        *p = '/';
    }
    free(copy);
    return 0;
}

static const char *column_value(sqlite3_stmt *st, int col, size_t *len)
{
    const void *v = sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return v ? v : "";
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL) return NULL;
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

/* Latest state of `key` at `rev`: 0 and a copied kv (free key/value), or SKIFF_ENOENT. */
static int read_key(sqls_store_t *s, const char *key, int64_t rev, skiff_kv_t *kv)
{
    sqlite3_stmt *st = s->r_get;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, rev);
    int rc = sqlite3_step(st);
    int ret = SKIFF_ENOENT;
    if (rc == SQLITE_ROW && sqlite3_column_int(st, 3) == 0) {
        size_t len;
        const char *v = column_value(st, 4, &len);
        kv->key = strdup(key);
        kv->value = dup_bytes(v, len);
        kv->value_len = len;
        kv->mod_revision = sqlite3_column_int64(st, 0);
        kv->create_revision = sqlite3_column_int64(st, 1);
        kv->version = sqlite3_column_int64(st, 2);
        ret = (kv->key && kv->value) ? 0 : SKIFF_ENOMEM;
        if (ret != 0) {
            free((char *)kv->key);
            free((char *)kv->value);
        }
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqls_log(s, SKIFF_LOG_ERROR, "reading %s: %s", key, sqlite3_errmsg(s->rdb));
        ret = SKIFF_EIO;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static void kv_release(skiff_kv_t *kv)
{
    free((char *)kv->key);
    free((char *)kv->value);
}

/* Value stored at exactly revision `rev`; copied into *out (caller frees). */
static int read_value_at(sqls_store_t *s, int64_t rev, char **out, size_t *len)
{
    sqlite3_stmt *st = s->r_by_rev;
    sqlite3_bind_int64(st, 1, rev);
    int rc = sqlite3_step(st);
    int ret = SKIFF_ENOENT;
    *out = NULL;
    *len = 0;
    if (rc == SQLITE_ROW && sqlite3_column_int(st, 3) == 0) {
        const char *v = column_value(st, 4, len);
        *out = dup_bytes(v, *len);
        ret = *out ? 0 : SKIFF_ENOMEM;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = SKIFF_EIO;
    }
    sqlite3_reset(st);
    return ret;
}

/* ---- open ------------------------------------------------------------------ */

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS kv_log ("
    " rev INTEGER PRIMARY KEY," /* the revision of this change */
    " key TEXT NOT NULL,"
    " create_rev INTEGER NOT NULL," /* 0 for a deletion */
    " prev_rev INTEGER NOT NULL,"   /* the key's previous row, 0 after a create */
    " version INTEGER NOT NULL,"    /* 0 for a deletion */
    " deleted INTEGER NOT NULL,"
    " value BLOB);"
    "CREATE INDEX IF NOT EXISTS kv_log_key_rev ON kv_log(key, rev);"
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

static int open_db(sqls_store_t *s, const char *path, sqlite3 **db, int cache_kib)
{
    int rc = sqlite3_open_v2(path, db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        sqls_log(s, SKIFF_LOG_ERROR, "opening %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        return SKIFF_EIO;
    }
    sqlite3_busy_timeout(*db, 5000);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-%d;"
             " PRAGMA temp_store=MEMORY;",
             cache_kib);
    if (exec_sql(*db, pragmas) != 0) {
        sqls_log(s, SKIFF_LOG_ERROR, "configuring %s: %s", path, sqlite3_errmsg(*db));
        return SKIFF_EIO;
    }
    return 0;
}

static int load_state(sqls_store_t *s)
{
    sqlite3_stmt *st = NULL;
    int ret = 0;
    /* SQLite takes the bare columns of a max() aggregate from the row holding the max. */
    if (prepare(s, s->rdb,
                "SELECT key, max(rev), create_rev, version, deleted FROM kv_log GROUP BY key",
                &st) != 0)
        return SKIFF_EIO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 4) != 0) continue;
        const char *key = (const char *)sqlite3_column_text(st, 0);
        if (key == NULL) continue;
        if (index_insert(&s->index, key, sqlite3_column_int64(st, 1),
                         sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)) == NULL) {
            ret = SKIFF_ENOMEM;
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = SKIFF_EIO;
    sqlite3_finalize(st);
    if (ret != 0) return ret;

    int64_t maxrev = 0, compacted = 0;
    if (prepare(s, s->rdb, "SELECT coalesce(max(rev), 0) FROM kv_log", &st) != 0) return SKIFF_EIO;
    if (sqlite3_step(st) == SQLITE_ROW) maxrev = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (prepare(s, s->rdb, "SELECT value FROM meta WHERE name = 'compacted'", &st) != 0)
        return SKIFF_EIO;
    if (sqlite3_step(st) == SQLITE_ROW) compacted = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    /* Compaction may drop the newest row (a deletion); the counter never goes back. */
    int64_t rev = maxrev > compacted ? maxrev : compacted;
    if (rev < 1) rev = 1; /* etcd: an empty store is at revision 1 */
    s->rev_durable = s->rev_assigned = rev;
    s->compacted = s->compacted_durable = compacted;
    return 0;
}

static void free_store(sqls_store_t *s)
{
    sqlite3_stmt *stmts[] = {s->w_insert, s->w_compact_old, s->w_compact_tomb, s->w_meta,
                             s->r_get, s->r_range, s->r_range_open, s->r_by_rev,
                             s->r_hist, s->r_hist_open};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) sqlite3_finalize(stmts[i]);
    if (s->wdb) sqlite3_close(s->wdb);
    if (s->rdb) sqlite3_close(s->rdb);
    index_free(&s->index);
    free(s);
}

static int sqls_open(skiff_plugin_ctx_t *ctx, const char *location, skiff_store_t **out)
{
    if (ctx == NULL || ctx->loop == NULL || location == NULL || location[0] == '\0' || out == NULL)
        return SKIFF_EINVAL;
    if (strncmp(location, "sqlite:", 7) == 0) location += 7;
    sqls_store_t *s = calloc(1, sizeof *s);
    if (s == NULL) return SKIFF_ENOMEM;
    s->base.vt = &sqls_vtable;
    s->ctx = ctx;
    s->loop = ctx->loop;
    long max_batch = strtol(setting(ctx, "max-batch", "2048"), NULL, 10);
    long cache_kib = strtol(setting(ctx, "cache-size", "2048"), NULL, 10);
    s->max_batch = (max_batch > 0 && max_batch < INT_MAX) ? (int)max_batch : 2048;
    if (cache_kib <= 0 || cache_kib > 1024 * 1024) cache_kib = 2048;
    long max_kib = strtol(setting(ctx, "max-size", "0"), NULL, 10);

    int ret = index_init(&s->index);
    if (ret != 0) goto fail;
    if (mkdir_parents(location) != 0) {
        sqls_log(s, SKIFF_LOG_ERROR, "cannot create the directory for %s: %s", location,
                 strerror(errno));
        ret = SKIFF_EIO;
        goto fail;
    }
    ret = SKIFF_EIO;
    if (open_db(s, location, &s->wdb, (int)cache_kib) != 0) goto fail;
    if (exec_sql(s->wdb, schema_sql) != 0) {
        sqls_log(s, SKIFF_LOG_ERROR, "creating tables in %s: %s", location,
                 sqlite3_errmsg(s->wdb));
        goto fail;
    }
    if (max_kib > 0) {
        /* A full file makes commits fail (SQLITE_FULL), which writers see as SKIFF_EIO. */
        char pragma[96];
        snprintf(pragma, sizeof pragma, "PRAGMA max_page_count=%ld;",
                 (max_kib * 1024 + 4095) / 4096);
        if (exec_sql(s->wdb, pragma) != 0) goto fail;
    }
    if (open_db(s, location, &s->rdb, (int)cache_kib) != 0) goto fail;
    if (prepare(s, s->wdb,
                "INSERT INTO kv_log (rev, key, create_rev, prev_rev, version, deleted, value)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                &s->w_insert) ||
        /* Rows superseded by a change in (old compaction, new compaction]. */
        prepare(s, s->wdb,
                "DELETE FROM kv_log WHERE rev IN (SELECT o.rev FROM kv_log n JOIN kv_log o"
                " ON o.key = n.key AND o.rev < n.rev WHERE n.rev > ?1 AND n.rev <= ?2)",
                &s->w_compact_old) ||
        prepare(s, s->wdb, "DELETE FROM kv_log WHERE rev > ?1 AND rev <= ?2 AND deleted = 1",
                &s->w_compact_tomb) ||
        prepare(s, s->wdb,
                "INSERT INTO meta (name, value) VALUES ('compacted', ?1)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                &s->w_meta) ||
        prepare(s, s->rdb,
                "SELECT rev, create_rev, version, deleted, value FROM kv_log"
                " WHERE key = ?1 AND rev <= ?2 ORDER BY rev DESC LIMIT 1",
                &s->r_get) ||
        prepare(s, s->rdb,
                "SELECT l.key, l.rev, l.create_rev, l.version, l.value FROM kv_log l"
                " WHERE l.key >= ?1 AND l.key < ?2 AND l.rev <= ?3 AND l.deleted = 0"
                " AND NOT EXISTS (SELECT 1 FROM kv_log n WHERE n.key = l.key"
                " AND n.rev > l.rev AND n.rev <= ?3)"
                " ORDER BY l.key LIMIT ?4",
                &s->r_range) ||
        prepare(s, s->rdb,
                "SELECT l.key, l.rev, l.create_rev, l.version, l.value FROM kv_log l"
                " WHERE l.key >= ?1 AND l.rev <= ?3 AND l.deleted = 0"
                " AND NOT EXISTS (SELECT 1 FROM kv_log n WHERE n.key = l.key"
                " AND n.rev > l.rev AND n.rev <= ?3)"
                " ORDER BY l.key LIMIT ?4",
                &s->r_range_open) ||
        prepare(s, s->rdb,
                "SELECT key, create_rev, version, deleted, value, prev_rev FROM kv_log"
                " WHERE rev = ?1",
                &s->r_by_rev) ||
        prepare(s, s->rdb,
                "SELECT rev, key, create_rev, version, deleted, value, prev_rev FROM kv_log"
                " WHERE rev > ?1 AND rev <= ?2 AND key >= ?3 AND key < ?4 ORDER BY rev LIMIT ?5",
                &s->r_hist) ||
        prepare(s, s->rdb,
                "SELECT rev, key, create_rev, version, deleted, value, prev_rev FROM kv_log"
                " WHERE rev > ?1 AND rev <= ?2 AND key >= ?3 ORDER BY rev LIMIT ?5",
                &s->r_hist_open))
        goto fail;
    ret = load_state(s);
    if (ret != 0) {
        sqls_log(s, SKIFF_LOG_ERROR, "loading %s: %s", location, sqlite3_errmsg(s->rdb));
        goto fail;
    }
    if (uv_idle_init(s->loop, &s->idle) != 0) {
        ret = SKIFF_EIO;
        goto fail;
    }
    s->idle.data = s;
    sqls_log(s, SKIFF_LOG_INFO, "opened %s: revision %lld, %zu keys, compacted at %lld", location,
             (long long)s->rev_durable, s->index.count, (long long)s->compacted);
    *out = &s->base;
    return 0;

fail:
    free_store(s);
    return ret;
}

/* ---- write queue ------------------------------------------------------------- */

static store_op_t *op_new(int type, const char *key, const char *value, size_t len)
{
    size_t klen = key ? strlen(key) : 0;
    store_op_t *op = calloc(1, sizeof *op + klen + 1 + len + 1);
    if (op == NULL) return NULL;
    op->type = type;
    op->key = op->buf;
    if (key) memcpy(op->key, key, klen);
    op->key[klen] = '\0';
    op->value = op->buf + klen + 1;
    if (value && len) memcpy(op->value, value, len);
    op->value[len] = '\0';
    op->len = len;
    return op;
}

static void op_free(store_op_t *op)
{
    free(op->prev_value);
    free(op);
}

static void enqueue(sqls_store_t *s, store_op_t *op)
{
    op->next = NULL;
    if (s->q_tail)
        s->q_tail->next = op;
    else
        s->q_head = op;
    s->q_tail = op;
    s->q_len++;
    update_idle(s);
}

static int check_key(const char *key)
{
    return (key == NULL || key[0] == '\0') ? SKIFF_EINVAL : 0;
}

/* Answers a write refused at submission. While writes are pending, the
 * answer waits behind them so a caller never learns of a state that is not
 * yet durable (and would be rolled back if its commit failed). */
static int refuse_write(sqls_store_t *s, store_op_t *op, int status)
{
    op->status = status;
    if (s->q_head == NULL && !s->inflight) {
        skiff_kv_t kv;
        int have = read_key(s, op->key, s->rev_durable, &kv) == 0;
        s->depth++;
        op->wcb(op->data, status, have ? &kv : NULL);
        s->depth--;
        if (have) kv_release(&kv);
        op_free(op);
        maybe_finish_close(s);
        return 0;
    }
    enqueue(s, op);
    return 0;
}

static int submit_write(sqls_store_t *s, int type, const char *key, const char *value,
                        size_t len, int64_t expect, skiff_store_write_cb cb, void *data)
{
    if (s->closing) return SKIFF_ECLOSED;
    if (check_key(key) != 0 || cb == NULL || expect < 0) return SKIFF_EINVAL;
    if (type != OP_DELETE && value == NULL && len > 0) return SKIFF_EINVAL;
    if (len > SQLS_MAX_VALUE) return SKIFF_ETOOLARGE;
    store_op_t *op = op_new(type, key, type == OP_DELETE ? NULL : value, len);
    if (op == NULL) return SKIFF_ENOMEM;
    op->wcb = cb;
    op->data = data;

    kv_entry_t *e = index_find(&s->index, key);
    if (type == OP_CREATE && e) return refuse_write(s, op, SKIFF_EEXIST);
    if (type != OP_CREATE && e == NULL) return refuse_write(s, op, SKIFF_ENOENT);
    if (type != OP_CREATE && expect != 0 && e->mod_rev != expect)
        return refuse_write(s, op, SKIFF_ECONFLICT);

    op->rev = s->rev_assigned + 1;
    if (e) {
        op->prev_exists = 1;
        op->prev_mod = e->mod_rev;
        op->prev_create = e->create_rev;
        op->prev_version = e->version;
    }
    switch (type) {
    case OP_CREATE:
        op->create_rev = op->rev;
        op->version = 1;
        if (index_insert(&s->index, key, op->rev, op->rev, 1) == NULL) {
            op_free(op);
            return SKIFF_ENOMEM;
        }
        break;
    case OP_UPDATE:
        op->create_rev = e->create_rev;
        op->version = e->version + 1;
        e->mod_rev = op->rev;
        e->version = op->version;
        break;
    default:
        op->create_rev = e->create_rev;
        op->version = e->version;
        index_remove(&s->index, key);
        break;
    }
    s->rev_assigned = op->rev;
    enqueue(s, op);
    return 0;
}

static store_op_t *reverse_list(store_op_t *head)
{
    store_op_t *prev = NULL;
    while (head) {
        store_op_t *next = head->next;
        head->next = prev;
        prev = head;
        head = next;
    }
    return prev;
}

/* Undo the index changes of accepted writes, newest first; returns the list
 * in its original order. */
static store_op_t *rollback_index(sqls_store_t *s, store_op_t *list)
{
    store_op_t *rev = reverse_list(list);
    for (store_op_t *op = rev; op; op = op->next) {
        if (op->status != 0 || op->type == OP_COMPACT) continue;
        index_remove(&s->index, op->key);
        if (op->prev_exists)
            index_insert(&s->index, op->key, op->prev_mod, op->prev_create, op->prev_version);
    }
    return reverse_list(rev);
}

static void work_commit(uv_work_t *req)
{
    sqls_store_t *s = req->data;
    sqlite3 *db = s->wdb;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (store_op_t *op = s->batch; rc == SQLITE_OK && op; op = op->next) {
        if (op->status != 0) continue;
        if (op->type == OP_COMPACT) {
            sqlite3_stmt *sts[] = {s->w_compact_old, s->w_compact_tomb};
            for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
                sqlite3_bind_int64(sts[i], 1, s->compacted_durable);
                sqlite3_bind_int64(sts[i], 2, op->rev);
                rc = sqlite3_step(sts[i]) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
                sqlite3_reset(sts[i]);
            }
            if (rc != SQLITE_OK) break;
            sqlite3_bind_int64(s->w_meta, 1, op->rev);
            rc = sqlite3_step(s->w_meta) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            sqlite3_reset(s->w_meta);
            continue;
        }
        sqlite3_stmt *st = s->w_insert;
        int del = op->type == OP_DELETE;
        sqlite3_bind_int64(st, 1, op->rev);
        sqlite3_bind_text(st, 2, op->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, del ? 0 : op->create_rev);
        sqlite3_bind_int64(st, 4, op->prev_exists ? op->prev_mod : 0);
        sqlite3_bind_int64(st, 5, del ? 0 : op->version);
        sqlite3_bind_int(st, 6, del);
        if (del)
            sqlite3_bind_null(st, 7);
        else
            sqlite3_bind_blob(st, 7, op->value, (int)op->len, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(s->batch_err, sizeof s->batch_err, "%s", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        s->batch_rc = SKIFF_EIO;
    } else {
        s->batch_rc = 0;
    }
}

static void load_prev(sqls_store_t *s, store_op_t *op)
{
    if (op->prev_loaded || !op->prev_exists) return;
    op->prev_loaded = 1;
    if (read_value_at(s, op->prev_mod, &op->prev_value, &op->prev_len) != 0) {
        op->prev_value = NULL;
        op->prev_len = 0;
    }
}

static void op_new_kv(const store_op_t *op, skiff_kv_t *kv)
{
    kv->key = op->key;
    kv->value = op->value;
    kv->value_len = op->len;
    kv->create_revision = op->create_rev;
    kv->mod_revision = op->rev;
    kv->version = op->version;
}

static void complete_op(sqls_store_t *s, store_op_t *op, int status)
{
    if (op->type == OP_COMPACT) {
        op->ccb(op->data, status);
        return;
    }
    if (status != 0) {
        op->wcb(op->data, status, NULL);
        return;
    }
    if (op->status != 0) {
        skiff_kv_t kv;
        int have = read_key(s, op->key, s->rev_durable, &kv) == 0;
        op->wcb(op->data, op->status, have ? &kv : NULL);
        if (have) kv_release(&kv);
        return;
    }
    skiff_kv_t kv;
    op_new_kv(op, &kv);
    if (op->type == OP_DELETE) {
        load_prev(s, op);
        kv.value = op->prev_value ? op->prev_value : "";
        kv.value_len = op->prev_len;
    }
    op->wcb(op->data, 0, &kv);
}

static int watch_matches(const struct skiff_store_watch *w, const char *key)
{
    return strncmp(key, w->prefix, w->prefix_len) == 0;
}

static void event_from_op(sqls_store_t *s, store_op_t *op, skiff_store_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    op_new_kv(op, &ev->kv);
    if (op->type == OP_DELETE) {
        ev->type = SKIFF_EVENT_DELETE;
        ev->kv.value = NULL;
        ev->kv.value_len = 0;
        ev->kv.create_revision = 0;
        ev->kv.version = 0;
    } else {
        ev->type = SKIFF_EVENT_PUT;
    }
    ev->prev.key = op->key;
    if (op->prev_exists) {
        load_prev(s, op);
        ev->prev.value = op->prev_value;
        ev->prev.value_len = op->prev_len;
        ev->prev.create_revision = op->prev_create;
        ev->prev.mod_revision = op->prev_mod;
        ev->prev.version = op->prev_version;
    }
}

static void sweep_watches(sqls_store_t *s)
{
    if (s->depth > 0) return;
    struct skiff_store_watch **pp = &s->watches;
    while (*pp) {
        struct skiff_store_watch *w = *pp;
        if (w->cancelled) {
            *pp = w->next;
            free(w->prefix);
            free(w->prefix_end);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

/* Live watchers (caught up to `old`) get the events of the batch just committed. */
static void dispatch_batch(sqls_store_t *s, store_op_t *list, size_t n, int64_t old, int64_t now)
{
    if (s->watches == NULL || now <= old || n == 0) return;
    skiff_store_event_t *evs = malloc(n * sizeof *evs);
    if (evs == NULL) return; /* watchers stay behind and catch up from the log */
    for (struct skiff_store_watch *w = s->watches; w; w = w->next) {
        if (w->cancelled || w->after < old || w->after >= now) continue;
        size_t count = 0;
        for (store_op_t *op = list; op; op = op->next) {
            if (op->status != 0 || op->type == OP_COMPACT || op->rev <= w->after) continue;
            if (!watch_matches(w, op->key)) continue;
            event_from_op(s, op, &evs[count++]);
        }
        w->after = now;
        if (count) w->cb(w->data, 0, evs, count);
    }
    free(evs);
}

static void after_commit(uv_work_t *req, int uvstatus)
{
    sqls_store_t *s = req->data;
    store_op_t *list = s->batch;
    s->batch = NULL;
    s->inflight = 0;
    int failed = uvstatus != 0 || s->batch_rc != 0;

    /* A failed commit also fails everything queued behind it: those writes
     * were checked and numbered against state that never became durable. */
    if (failed) {
        store_op_t *t = list;
        while (t && t->next) t = t->next;
        if (t)
            t->next = s->q_head;
        else
            list = s->q_head;
        s->q_head = s->q_tail = NULL;
        s->q_len = 0;
    }
    size_t n = 0;
    for (store_op_t *op = list; op; op = op->next) n++;

    s->depth++;
    if (failed) {
        sqls_log(s, SKIFF_LOG_ERROR, "commit failed, %zu writes refused: %s", n,
                 uvstatus ? uv_strerror(uvstatus) : s->batch_err);
        list = rollback_index(s, list);
        s->rev_assigned = s->rev_durable;
        s->compacted = s->compacted_durable;
        for (store_op_t *op = list; op; op = op->next) complete_op(s, op, SKIFF_EIO);
    } else {
        int64_t old = s->rev_durable, now = old;
        for (store_op_t *op = list; op; op = op->next) {
            if (op->status != 0) continue;
            if (op->type == OP_COMPACT) {
                s->compacted_durable = op->rev;
            } else {
                now = op->rev;
                s->n_writes++;
            }
        }
        s->n_commits++;
        s->rev_durable = now;
        /* Writes queued meanwhile start their fsync while these callbacks run. */
        kick_batch(s);
        for (store_op_t *op = list; op; op = op->next) complete_op(s, op, 0);
        dispatch_batch(s, list, n, old, now);
    }
    s->depth--;
    while (list) {
        store_op_t *next = list->next;
        op_free(list);
        list = next;
    }
    sweep_watches(s);
    if (s->q_head) kick_batch(s);
    update_idle(s);
    maybe_finish_close(s);
}

static void kick_batch(sqls_store_t *s)
{
    if (s->inflight || s->q_head == NULL) return;
    store_op_t *head = s->q_head, *last = head;
    int n = 1;
    while (last->next && n < s->max_batch) {
        last = last->next;
        n++;
    }
    s->q_head = last->next;
    if (s->q_head == NULL) s->q_tail = NULL;
    s->q_len -= (size_t)n;
    last->next = NULL;
    s->batch = head;
    s->inflight = 1;
    s->work.data = s;
    int rc = uv_queue_work(s->loop, &s->work, work_commit, after_commit);
    if (rc != 0) {
        s->batch_rc = SKIFF_EIO;
        snprintf(s->batch_err, sizeof s->batch_err, "uv_queue_work: %s", uv_strerror(rc));
        after_commit(&s->work, 0);
    }
}

/* ---- watch catch-up from the log ------------------------------------------ */

typedef struct hist_row {
    skiff_store_event_t ev;
    char *key;
    char *value;
    char *prev_value;
} hist_row_t;

/* Delivers one chunk of history to a watcher that is behind. */
static void catch_up(sqls_store_t *s, struct skiff_store_watch *w)
{
    if (w->after < s->compacted) {
        w->cancelled = 1;
        w->cb(w->data, SKIFF_ECOMPACTED, NULL, 0);
        return;
    }
    sqlite3_stmt *st = w->prefix_end ? s->r_hist : s->r_hist_open;
    sqlite3_bind_int64(st, 1, w->after);
    sqlite3_bind_int64(st, 2, s->rev_durable);
    sqlite3_bind_text(st, 3, w->prefix, -1, SQLITE_STATIC);
    if (w->prefix_end) sqlite3_bind_text(st, 4, w->prefix_end, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, SQLS_WATCH_CHUNK);
    hist_row_t *rows = calloc(SQLS_WATCH_CHUNK, sizeof *rows);
    size_t n = 0;
    int rc = SQLITE_ERROR;
    int64_t prev_revs[SQLS_WATCH_CHUNK];
    while (rows && n < SQLS_WATCH_CHUNK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        hist_row_t *r = &rows[n];
        size_t len;
        const char *v = column_value(st, 5, &len);
        const char *key = (const char *)sqlite3_column_text(st, 1);
        int del = sqlite3_column_int(st, 4) != 0;
        r->key = strdup(key ? key : "");
        r->value = del ? NULL : dup_bytes(v, len);
        if (r->key == NULL || (!del && r->value == NULL)) {
            rc = SQLITE_NOMEM;
            n++;
            break;
        }
        r->ev.type = del ? SKIFF_EVENT_DELETE : SKIFF_EVENT_PUT;
        r->ev.kv.key = r->key;
        r->ev.kv.value = r->value;
        r->ev.kv.value_len = del ? 0 : len;
        r->ev.kv.mod_revision = sqlite3_column_int64(st, 0);
        r->ev.kv.create_revision = sqlite3_column_int64(st, 2);
        r->ev.kv.version = sqlite3_column_int64(st, 3);
        r->ev.prev.key = r->key;
        prev_revs[n] = sqlite3_column_int64(st, 6);
        n++;
    }
    if (n == SQLS_WATCH_CHUNK && rc == SQLITE_ROW) rc = SQLITE_DONE;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        w->cancelled = 1;
        w->cb(w->data, rows ? SKIFF_EIO : SKIFF_ENOMEM, NULL, 0);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (prev_revs[i] == 0) continue;
        sqlite3_bind_int64(s->r_by_rev, 1, prev_revs[i]);
        if (sqlite3_step(s->r_by_rev) == SQLITE_ROW && sqlite3_column_int(s->r_by_rev, 3) == 0) {
            size_t len;
            const char *v = column_value(s->r_by_rev, 4, &len);
            rows[i].prev_value = dup_bytes(v, len);
            rows[i].ev.prev.value = rows[i].prev_value ? rows[i].prev_value : NULL;
            rows[i].ev.prev.value_len = rows[i].prev_value ? len : 0;
            rows[i].ev.prev.create_revision = sqlite3_column_int64(s->r_by_rev, 1);
            rows[i].ev.prev.version = sqlite3_column_int64(s->r_by_rev, 2);
            rows[i].ev.prev.mod_revision = prev_revs[i];
        }
        sqlite3_reset(s->r_by_rev);
    }
    int64_t target = n == SQLS_WATCH_CHUNK ? rows[n - 1].ev.kv.mod_revision : s->rev_durable;
    skiff_store_event_t *evs = n ? malloc(n * sizeof *evs) : NULL;
    if (n && evs == NULL) {
        w->cancelled = 1;
        w->cb(w->data, SKIFF_ENOMEM, NULL, 0);
        goto out;
    }
    for (size_t i = 0; i < n; i++) evs[i] = rows[i].ev;
    w->after = target;
    if (n) w->cb(w->data, 0, evs, n);
    free(evs);
out:
    if (rows)
        for (size_t i = 0; i < n; i++) {
            free(rows[i].key);
            free(rows[i].value);
            free(rows[i].prev_value);
        }
    free(rows);
}

static int watch_behind(sqls_store_t *s)
{
    for (struct skiff_store_watch *w = s->watches; w; w = w->next)
        if (!w->cancelled && w->after < s->rev_durable) return 1;
    return 0;
}

static void on_idle(uv_idle_t *h)
{
    sqls_store_t *s = h->data;
    if (!s->inflight && s->q_head) kick_batch(s);
    s->depth++;
    for (struct skiff_store_watch *w = s->watches; w; w = w->next)
        if (!w->cancelled && w->after < s->rev_durable && !s->finished) catch_up(s, w);
    s->depth--;
    sweep_watches(s);
    update_idle(s);
    maybe_finish_close(s);
}

static void update_idle(sqls_store_t *s)
{
    if (s->finished) return;
    int want = (s->q_head && !s->inflight) || watch_behind(s);
    if (want && !s->idle_active) {
        uv_idle_start(&s->idle, on_idle);
        s->idle_active = 1;
    } else if (!want && s->idle_active) {
        uv_idle_stop(&s->idle);
        s->idle_active = 0;
    }
}

/* ---- vtable: writes ------------------------------------------------------- */

static int sqls_create(skiff_store_t *st, const char *key, const char *value, size_t len,
                       skiff_store_write_cb cb, void *data)
{
    return submit_write((sqls_store_t *)st, OP_CREATE, key, value, len, 0, cb, data);
}

static int sqls_update(skiff_store_t *st, const char *key, const char *value, size_t len,
                       int64_t expect_revision, skiff_store_write_cb cb, void *data)
{
    return submit_write((sqls_store_t *)st, OP_UPDATE, key, value, len, expect_revision, cb,
                        data);
}

static int sqls_remove(skiff_store_t *st, const char *key, int64_t expect_revision,
                       skiff_store_write_cb cb, void *data)
{
    return submit_write((sqls_store_t *)st, OP_DELETE, key, NULL, 0, expect_revision, cb, data);
}

static int sqls_compact(skiff_store_t *st, int64_t revision, skiff_store_compact_cb cb,
                        void *data)
{
    sqls_store_t *s = (sqls_store_t *)st;
    if (s->closing) return SKIFF_ECLOSED;
    if (cb == NULL || revision <= 0 || revision > s->rev_durable) return SKIFF_EINVAL;
    if (revision <= s->compacted) {
        s->depth++;
        cb(data, 0);
        s->depth--;
        maybe_finish_close(s);
        return 0;
    }
    store_op_t *op = op_new(OP_COMPACT, NULL, NULL, 0);
    if (op == NULL) return SKIFF_ENOMEM;
    op->rev = revision;
    op->ccb = cb;
    op->data = data;
    /* Reads below it are refused from now on, before the rows go away. */
    s->compacted = revision;
    enqueue(s, op);
    return 0;
}

/* ---- vtable: reads -------------------------------------------------------- */

static int read_revision(sqls_store_t *s, int64_t revision, int64_t *out)
{
    if (revision < 0 || revision > s->rev_durable) return SKIFF_EINVAL;
    if (revision == 0) revision = s->rev_durable;
    if (revision < s->compacted) return SKIFF_ECOMPACTED;
    *out = revision;
    return 0;
}

static int sqls_get(skiff_store_t *st, const char *key, int64_t revision, skiff_store_get_cb cb,
                    void *data)
{
    sqls_store_t *s = (sqls_store_t *)st;
    if (s->closing) return SKIFF_ECLOSED;
    if (check_key(key) != 0 || cb == NULL) return SKIFF_EINVAL;
    if (revision < 0 || revision > s->rev_durable) return SKIFF_EINVAL;
    int64_t rev = 0;
    int status = read_revision(s, revision, &rev);
    skiff_kv_t kv;
    if (status == 0) status = read_key(s, key, rev, &kv);
    s->depth++;
    cb(data, status, status == 0 ? &kv : NULL);
    s->depth--;
    if (status == 0) kv_release(&kv);
    sweep_watches(s);
    maybe_finish_close(s);
    return 0;
}

static int sqls_range(skiff_store_t *st, const char *start, const char *end, int64_t limit,
                      int64_t revision, skiff_store_range_cb cb, void *data)
{
    sqls_store_t *s = (sqls_store_t *)st;
    if (s->closing) return SKIFF_ECLOSED;
    if (cb == NULL || limit < 0) return SKIFF_EINVAL;
    if (revision < 0 || revision > s->rev_durable) return SKIFF_EINVAL;
    if (start == NULL) start = "";
    int64_t rev = 0;
    int status = read_revision(s, revision, &rev);
    skiff_kv_t *kvs = NULL;
    size_t n = 0, cap = 0;
    int more = 0;
    if (status == 0) {
        int open_end = end == NULL || end[0] == '\0';
        sqlite3_stmt *q = open_end ? s->r_range_open : s->r_range;
        sqlite3_bind_text(q, 1, start, -1, SQLITE_STATIC);
        if (!open_end) sqlite3_bind_text(q, 2, end, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 3, rev);
        sqlite3_bind_int64(q, 4, limit > 0 ? limit + 1 : -1);
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            if (limit > 0 && (int64_t)n == limit) {
                more = 1;
                break;
            }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                skiff_kv_t *nk = realloc(kvs, ncap * sizeof *nk);
                if (nk == NULL) {
                    status = SKIFF_ENOMEM;
                    break;
                }
                kvs = nk;
                cap = ncap;
            }
            size_t len;
            const char *v = column_value(q, 4, &len);
            const char *key = (const char *)sqlite3_column_text(q, 0);
            skiff_kv_t *kv = &kvs[n];
            kv->key = strdup(key ? key : "");
            kv->value = dup_bytes(v, len);
            kv->value_len = len;
            kv->mod_revision = sqlite3_column_int64(q, 1);
            kv->create_revision = sqlite3_column_int64(q, 2);
            kv->version = sqlite3_column_int64(q, 3);
            n++;
            if (kv->key == NULL || kv->value == NULL) {
                status = SKIFF_ENOMEM;
                break;
            }
        }
        if (status == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE) {
            sqls_log(s, SKIFF_LOG_ERROR, "range read: %s", sqlite3_errmsg(s->rdb));
            status = SKIFF_EIO;
        }
        sqlite3_reset(q);
        sqlite3_clear_bindings(q);
    }
    s->depth++;
    if (status == 0)
        cb(data, 0, kvs, n, more, rev);
    else
        cb(data, status, NULL, 0, 0, rev);
    s->depth--;
    for (size_t i = 0; i < n; i++) kv_release(&kvs[i]);
    free(kvs);
    sweep_watches(s);
    maybe_finish_close(s);
    return 0;
}

/* ---- vtable: watch -------------------------------------------------------- */

static int sqls_watch(skiff_store_t *st, const char *prefix, int64_t after_revision,
                      skiff_store_watch_cb cb, void *data, skiff_store_watch_t **out)
{
    sqls_store_t *s = (sqls_store_t *)st;
    if (s->closing) return SKIFF_ECLOSED;
    if (cb == NULL || out == NULL || after_revision < 0) return SKIFF_EINVAL;
    if (prefix == NULL) prefix = "";
    if (after_revision != 0 && after_revision < s->compacted) return SKIFF_ECOMPACTED;
    struct skiff_store_watch *w = calloc(1, sizeof *w);
    if (w == NULL) return SKIFF_ENOMEM;
    w->prefix = strdup(prefix);
    w->prefix_len = strlen(prefix);
    if (w->prefix_len > 0) {
        char *end = malloc(w->prefix_len + 1);
        if (end && skiff_prefix_end(prefix, end, w->prefix_len + 1) == NULL) {
            free(end); /* all 0xff: nothing bounds it */
            end = NULL;
        } else if (end == NULL) {
            free(w->prefix);
            free(w);
            return SKIFF_ENOMEM;
        }
        w->prefix_end = end;
    }
    if (w->prefix == NULL) {
        free(w->prefix_end);
        free(w);
        return SKIFF_ENOMEM;
    }
    w->s = s;
    w->cb = cb;
    w->data = data;
    w->after = after_revision == 0 ? s->rev_durable : after_revision;
    w->next = s->watches;
    s->watches = w;
    *out = w;
    update_idle(s);
    return 0;
}

static void sqls_watch_cancel(skiff_store_watch_t *w)
{
    if (w == NULL || w->cancelled) return;
    w->cancelled = 1;
    sweep_watches(w->s);
}

/* ---- close -------------------------------------------------------------- */

static void on_idle_closed(uv_handle_t *h)
{
    sqls_store_t *s = h->data;
    void (*done)(void *) = s->close_done;
    void *data = s->close_data;
    sqls_log(s, SKIFF_LOG_DEBUG, "closed: %llu writes in %llu commits",
             (unsigned long long)s->n_writes, (unsigned long long)s->n_commits);
    free_store(s);
    if (done) done(data);
}

static void maybe_finish_close(sqls_store_t *s)
{
    if (!s->closing || s->finished || s->inflight || s->q_head || s->depth > 0) return;
    s->finished = 1;
    s->depth++;
    for (struct skiff_store_watch *w = s->watches; w; w = w->next) {
        if (w->cancelled) continue;
        w->cancelled = 1;
        w->cb(w->data, SKIFF_ECLOSED, NULL, 0);
    }
    s->depth--;
    sweep_watches(s);
    if (s->idle_active) uv_idle_stop(&s->idle);
    s->idle_active = 0;
    uv_close((uv_handle_t *)&s->idle, on_idle_closed);
}

static void sqls_close(skiff_store_t *st, void (*done)(void *data), void *data)
{
    sqls_store_t *s = (sqls_store_t *)st;
    if (s == NULL || s->closing) return;
    s->closing = 1;
    s->close_done = done;
    s->close_data = data;
    maybe_finish_close(s);
}

static int64_t sqls_revision(skiff_store_t *st) { return ((sqls_store_t *)st)->rev_durable; }

static int64_t sqls_compacted_revision(skiff_store_t *st)
{
    return ((sqls_store_t *)st)->compacted;
}

/* ---- descriptor --------------------------------------------------------- */

static const skiff_store_vtable_t sqls_vtable = {
    .open = sqls_open,
    .close = sqls_close,
    .create = sqls_create,
    .update = sqls_update,
    .remove = sqls_remove,
    .get = sqls_get,
    .range = sqls_range,
    .watch = sqls_watch,
    .watch_cancel = sqls_watch_cancel,
    .compact = sqls_compact,
    .revision = sqls_revision,
    .compacted_revision = sqls_compacted_revision,
};

static const skiff_setting_t sqls_settings[] = {
    {"max-batch", SKIFF_SETTING_INT, "2048", "most writes committed in one transaction (one fsync)"},
    {"cache-size", SKIFF_SETTING_INT, "2048", "SQLite page cache per connection, in KiB"},
    {"max-size", SKIFF_SETTING_INT, "0", "largest database file in KiB; 0: no limit"},
    {NULL, 0, NULL, NULL},
};

const skiff_plugin_t skiff_plugin = {
    .abi_version = SKIFF_ABI_VERSION,
    .name = "storage-sqlite",
    .version = "0.1.0",
    .kind = SKIFF_PLUGIN_STORAGE,
    .description = "embedded revisioned key-value store on SQLite (WAL, group commit)",
    .settings = sqls_settings,
    .vtable = &sqls_vtable,
};
