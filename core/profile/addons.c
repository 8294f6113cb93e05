/* core/profile/addons.c - the addon manager (see addons.h): finds the
 * manifest files of a profile, splits them into documents, and writes the
 * objects one at a time through the in-process client, in file order, so
 * a Namespace listed before the objects in it exists when they come.
 *
 * It must not stop the server: every failure becomes a log line, an entry
 * in kube-system/skiff-addons and a Warning Event. */
#include "profile/addons.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <skiff/client.h>
#include <skiff/objects.h>
#include "api/client_inproc.h"
#include "object/registry.h"
#include "profile/profile.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/yaml_json.h"

#define ADDONS_NS "kube-system"
#define ADDONS_STATUS "skiff-addons"
#define ADDONS_MANAGER "skiff-addons"
#define ADDONS_MAX_FILE (4 * 1024 * 1024)
#define ADDONS_MAX_WATCHES 64

typedef struct addon_file {
    char *path;       /* file, or "builtin:NAME" */
    uint64_t hash;    /* of the text last applied */
    int failed;       /* the last apply had an error: retried at the next scan */
    int parse_failed; /* ... in the text itself: retried once the text changes */
    int seen;         /* found by the current scan */
    int applied, errors; /* counts of the run in progress */
    char *first_error;
    struct addon_file *next;
} addon_file_t;

typedef struct op {
    addon_file_t *file;
    int doc;            /* 1-based document number in the file */
    json_t *obj;
    const kind_def_t *kind;
    char *ns;
    int last;           /* the file's last document */
    struct op *next;
} op_t;

struct addons {
    uv_loop_t *loop;
    skiff_client_t *client;
    skiff_event_recorder_t *events;
    json_t *paths, *vars;
    json_t *status_obj;   /* kube-system/skiff-addons as last written */
    json_t *status_data;  /* its data, file key -> text */
    addon_file_t *files;
    op_t *head, *tail;
    int busy;             /* an op or a status write is in flight */
    int scan_again;       /* a scan was asked for while busy */
    uv_timer_t debounce, periodic, retry;
    int status_tries;     /* writes of the status object before kube-system exists */
    uv_fs_event_t watches[ADDONS_MAX_WATCHES];
    int nwatches;
    int open_handles;
    int stopping;
    void (*done)(void *data);
    void *done_data;
};

static void run_next(addons_t *a);
static void scan(addons_t *a);

/* ---- text -------------------------------------------------------------------- */

char *addons_substitute(const char *text, const json_t *vars)
{
    strbuf_t b = {0};
    strbuf_add(&b, "");
    const char *p = text;
    for (;;) {
        const char *open = strstr(p, "%{");
        if (!open) break;
        const char *close = strstr(open + 2, "}%");
        if (!close) break;
        char name[128];
        size_t n = (size_t)(close - open - 2);
        const char *val = NULL;
        if (n < sizeof name) {
            memcpy(name, open + 2, n);
            name[n] = '\0';
            val = json_string_value(json_object_get(vars, name));
        }
        strbuf_addn(&b, p, (size_t)(open - p));
        if (val) {
            strbuf_add(&b, val);
            p = close + 2;
        } else {
            strbuf_addn(&b, open, 2);
            p = open + 2;
        }
    }
    strbuf_add(&b, p);
    if (b.failed) {
        strbuf_free(&b);
        return NULL;
    }
    return b.p;
}

static char *read_text(const char *path, char *err, size_t errlen)
{
    if (strncmp(path, "builtin:", 8) == 0) {
        const char *t = profile_builtin_text(path + 8);
        if (!t) snprintf(err, errlen, "no such built-in addon");
        return t ? strdup(t) : NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s", strerror(errno));
        return NULL;
    }
    char *buf = malloc(ADDONS_MAX_FILE + 1);
    size_t n = buf ? fread(buf, 1, ADDONS_MAX_FILE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n > ADDONS_MAX_FILE) {
        snprintf(err, errlen, "%s", !buf ? "out of memory" : bad ? "read error" : "larger than 4 MiB");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* ---- status: kube-system/skiff-addons and Events --------------------------------- */

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash) return slash + 1;
    return strncmp(path, "builtin:", 8) == 0 ? path + 8 : path;
}

/* The file's entry in skiff-addons: its base name, or its whole path when
 * two files share one. ConfigMap keys are [-._a-zA-Z0-9]+: other bytes
 * become '_'. */
static const char *file_key(const addons_t *a, const addon_file_t *f, char *buf, size_t len)
{
    const char *p = base_name(f->path);
    for (const addon_file_t *o = a->files; o; o = o->next)
        if (o != f && strcmp(base_name(o->path), p) == 0) p = f->path;
    if (strncmp(p, "builtin:", 8) == 0) p += 8;
    while (*p == '/') p++;
    size_t i = 0;
    for (; *p && i + 1 < len; p++, i++) {
        char c = *p;
        buf[i] = (c == '-' || c == '.' || c == '_' || (c >= 'a' && c <= 'z') ||
                  (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                     ? c
                     : '_';
    }
    buf[i] = '\0';
    return buf;
}

static void write_status(addons_t *a);

static void on_retry_status(uv_timer_t *t)
{
    write_status(t->data);
}

static void on_status_written(void *data, int status, json_t *obj)
{
    addons_t *a = data;
    a->busy = 0;
    if (a->stopping) return;
    /* at the first start the API server creates kube-system just after it
     * is ready: wait for it (5 s at most) before applying anything */
    if (status == 404 && !a->status_obj && ++a->status_tries < 25) {
        a->busy = 1; /* nothing else runs meanwhile */
        uv_timer_start(&a->retry, on_retry_status, 200, 0);
        return;
    }
    if (status >= 200 && status < 300 && obj) {
        json_decref(a->status_obj);
        a->status_obj = json_incref(obj);
    } else {
        log_warn("addons", "cannot write %s/%s: %s (HTTP %d)", ADDONS_NS, ADDONS_STATUS,
                 json_string_value(json_object_get(obj, "message")) ?: "no answer", status);
    }
    run_next(a);
}

static const skiff_resource_t configmaps = {"", "v1", "configmaps", NULL};

static void on_status_created(void *data, int status, json_t *obj);

static void write_status(addons_t *a)
{
    json_t *cm = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:O}", "apiVersion", "v1",
                           "kind", "ConfigMap", "metadata", "name", ADDONS_STATUS, "namespace",
                           ADDONS_NS, "labels", "app.kubernetes.io/managed-by", ADDONS_MANAGER,
                           "data", a->status_data);
    skiff_write_opts_t wo = {.field_manager = ADDONS_MANAGER};
    a->busy = 1;
    if (!cm || skiff_client_create(a->client, &configmaps, ADDONS_NS, cm, &wo, on_status_created,
                                   a) != 0) {
        a->busy = 0;
        log_warn("addons", "cannot write %s/%s", ADDONS_NS, ADDONS_STATUS);
    }
    json_decref(cm);
}

static void on_status_created(void *data, int status, json_t *obj)
{
    addons_t *a = data;
    if (a->stopping) {
        a->busy = 0;
        return;
    }
    if (status != 409) {
        on_status_written(a, status, obj);
        return;
    }
    /* a JSON patch replaces data as a whole: entries of removed files go */
    skiff_write_opts_t wo = {.field_manager = ADDONS_MANAGER};
    strbuf_t jp = {0};
    strbuf_add(&jp, "[{\"op\":\"add\",\"path\":\"/data\",\"value\":");
    char *d = json_dumps(a->status_data, JSON_COMPACT);
    strbuf_add(&jp, d ? d : "{}");
    strbuf_add(&jp, "}]");
    free(d);
    if (jp.failed || skiff_client_patch(a->client, &configmaps, ADDONS_NS, ADDONS_STATUS,
                                        SKIFF_PATCH_JSON, jp.p, &wo, on_status_written, a) != 0) {
        a->busy = 0;
        log_warn("addons", "cannot write %s/%s", ADDONS_NS, ADDONS_STATUS);
        run_next(a);
    }
    strbuf_free(&jp);
}

static void set_status_entry(addons_t *a, addon_file_t *f, const char *text)
{
    char key[256];
    json_object_set_new(a->status_data, file_key(a, f, key, sizeof key), json_string(text));
}

static void report_error(addons_t *a, addon_file_t *f, int doc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void report_error(addons_t *a, addon_file_t *f, int doc, const char *fmt, ...)
{
    char msg[1024], full[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (doc > 0) snprintf(full, sizeof full, "%s: document %d: %s", f->path, doc, msg);
    else snprintf(full, sizeof full, "%s: %s", f->path, msg);
    log_error("addons", "%s", full);
    f->errors++;
    f->failed = 1;
    if (!f->first_error) f->first_error = strdup(full);
    if (a->status_obj) skiff_event_record(a->events, a->status_obj, "Warning", "AddonFailed",
                                          "%s", full);
}

static void finish_file(addons_t *a, addon_file_t *f)
{
    char text[1600], when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (f->errors)
        snprintf(text, sizeof text, "%s: %d applied, %d failed; first error: %s", when,
                 f->applied, f->errors, f->first_error ? f->first_error : "?");
    else
        snprintf(text, sizeof text, "%s: %d applied from %s", when, f->applied, f->path);
    set_status_entry(a, f, text);
    if (!f->errors) {
        f->failed = 0;
        log_info("addons", "%s: %d object%s applied", f->path, f->applied,
                 f->applied == 1 ? "" : "s");
        if (a->status_obj)
            skiff_event_record(a->events, a->status_obj, "Normal", "AddonApplied",
                               "%s: %d applied", f->path, f->applied);
    }
    free(f->first_error);
    f->first_error = NULL;
}

/* ---- applying objects ------------------------------------------------------------ */

static void op_free(op_t *op)
{
    json_decref(op->obj);
    free(op->ns);
    free(op);
}

static void resource_of(const op_t *op, skiff_resource_t *r)
{
    r->group = op->kind->group;
    r->version = op->kind->version;
    r->resource = op->kind->resource;
    r->subresource = NULL;
}

static const char *status_message(json_t *obj, int status, char *buf, size_t len)
{
    const char *m = json_string_value(json_object_get(obj, "message"));
    if (m) return m;
    snprintf(buf, len, status ? "HTTP %d" : "no answer from the API server", status);
    return buf;
}

static void op_done(addons_t *a, op_t *op, int status, json_t *obj)
{
    const char *name = json_string_value(json_object_get(json_object_get(op->obj, "metadata"),
                                                         "name"));
    if (status >= 200 && status < 300) {
        op->file->applied++;
    } else {
        char buf[64];
        report_error(a, op->file, op->doc, "%s %s%s%s: %s", op->kind->kind,
                     op->ns ? op->ns : "", op->ns ? "/" : "", name,
                     status_message(obj, status, buf, sizeof buf));
    }
    if (op->last) finish_file(a, op->file);
    int last = op->last;
    op_free(op);
    a->busy = 0;
    if (last && !a->head) write_status(a);
    else run_next(a);
}

typedef struct op_ctx {
    addons_t *a;
    op_t *op;
} op_ctx_t;

static void on_patch_done(void *data, int status, json_t *obj)
{
    op_ctx_t *c = data;
    addons_t *a = c->a;
    op_t *op = c->op;
    free(c);
    if (a->stopping) {
        op_free(op);
        a->busy = 0;
        return;
    }
    op_done(a, op, status, obj);
}

static void on_create_done(void *data, int status, json_t *obj)
{
    op_ctx_t *c = data;
    addons_t *a = c->a;
    op_t *op = c->op;
    if (a->stopping) {
        free(c);
        op_free(op);
        a->busy = 0;
        return;
    }
    if (status != 409) {
        free(c);
        op_done(a, op, status, obj);
        return;
    }
    /* it exists: the file's fields win, the others stay (merge patch) */
    skiff_resource_t r;
    resource_of(op, &r);
    json_t *meta = json_object_get(op->obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    char *patch = json_dumps(op->obj, JSON_COMPACT);
    skiff_write_opts_t wo = {.field_manager = ADDONS_MANAGER};
    int rc = patch ? skiff_client_patch(a->client, &r, op->ns, name, SKIFF_PATCH_MERGE, patch,
                                        &wo, on_patch_done, c)
                   : SKIFF_ENOMEM;
    free(patch);
    if (rc != 0) {
        free(c);
        op_done(a, op, 0, NULL);
    }
}

static void run_next(addons_t *a)
{
    if (a->stopping || a->busy) return;
    op_t *op = a->head;
    if (!op) {
        if (a->scan_again) {
            a->scan_again = 0;
            scan(a);
        }
        return;
    }
    a->head = op->next;
    if (!a->head) a->tail = NULL;
    op_ctx_t *c = malloc(sizeof *c);
    skiff_resource_t r;
    resource_of(op, &r);
    skiff_write_opts_t wo = {.field_manager = ADDONS_MANAGER};
    a->busy = 1;
    if (!c) {
        op_done(a, op, 0, NULL);
        return;
    }
    c->a = a;
    c->op = op;
    if (skiff_client_create(a->client, &r, op->ns, op->obj, &wo, on_create_done, c) != 0) {
        free(c);
        op_done(a, op, 0, NULL);
    }
}

static void enqueue(addons_t *a, op_t *op)
{
    if (a->tail) a->tail->next = op;
    else a->head = op;
    a->tail = op;
}

/* One document's object(s) as ops; a List's items each. 0 or -1 (reported). */
static int add_object(addons_t *a, addon_file_t *f, int doc, json_t *obj, op_t **last)
{
    if (!json_is_object(obj)) {
        report_error(a, f, doc, "expected an object (apiVersion, kind, metadata), got %s",
                     json_is_array(obj) ? "a list" : "a plain value");
        return -1;
    }
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (!av || !kind) {
        report_error(a, f, doc, "apiVersion and kind are required");
        return -1;
    }
    if (strcmp(kind, "List") == 0 && strcmp(av, "v1") == 0) {
        size_t i;
        json_t *item;
        int rc = 0;
        json_array_foreach(json_object_get(obj, "items"), i, item) if (
            add_object(a, f, doc, item, last) != 0) rc = -1;
        return rc;
    }
    char group[256] = "";
    const char *version = av;
    const char *slash = strchr(av, '/');
    if (slash) {
        snprintf(group, sizeof group, "%.*s", (int)(slash - av), av);
        version = slash + 1;
    }
    const kind_def_t *k = registry_find_kind(group, version, kind);
    if (!k) {
        report_error(a, f, doc, "no kind %s in %s on this server", kind, av);
        return -1;
    }
    json_t *meta = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (!name || !*name) {
        report_error(a, f, doc, "%s without metadata.name (generateName is not applied: an "
                     "addon is re-applied under its name)", kind);
        return -1;
    }
    op_t *op = calloc(1, sizeof *op);
    if (!op) return -1;
    op->file = f;
    op->doc = doc;
    op->kind = k;
    op->obj = skiff_json_copy(obj);
    /* what the server assigns: a manifest exported with kubectl get -o yaml
     * carries them, and a create must not */
    json_t *m = json_object_get(op->obj, "metadata");
    static const char *const server_fields[] = {"resourceVersion", "uid", "creationTimestamp",
                                                "generation", "managedFields", "selfLink",
                                                "deletionTimestamp", NULL};
    for (const char *const *fld = server_fields; *fld; fld++) json_object_del(m, *fld);
    if (k->namespaced) {
        const char *ns = json_string_value(json_object_get(meta, "namespace"));
        op->ns = strdup(ns && *ns ? ns : ADDONS_NS);
        json_object_set_new(json_object_get(op->obj, "metadata"), "namespace",
                            json_string(op->ns));
    }
    enqueue(a, op);
    *last = op;
    return 0;
}

/* Splits on "---" lines as Kubernetes' YAML reader does; a JSON file is
 * one document. */
static void apply_file(addons_t *a, addon_file_t *f, const char *text)
{
    f->applied = f->errors = 0;
    f->failed = f->parse_failed = 0;
    op_t *last = NULL;
    int doc = 0;
    const char *p = text;
    int line = 1;
    while (*p) {
        /* one document: up to a line that starts with "---" */
        const char *start = p;
        int start_line = line;
        const char *end = p;
        while (*end) {
            if ((end == text || end[-1] == '\n') && strncmp(end, "---", 3) == 0 && end != start)
                break;
            if (*end == '\n') line++;
            end++;
        }
        const char *body = start;
        if (strncmp(body, "---", 3) == 0) { /* the separator line itself */
            body += strcspn(body, "\n");
        }
        p = end;
        /* comments and blanks only: not a document */
        int empty = 1;
        for (const char *q = body; q < end && empty; q++) {
            if (*q == '#') {
                while (q < end && *q != '\n') q++;
                continue;
            }
            if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') empty = 0;
        }
        if (empty) continue;
        doc++;
        char err[512] = "";
        json_t *obj = yaml_json_load(body, (size_t)(end - body),
                                     YAML_JSON_TYPED_SCALARS | YAML_JSON_REJECT_DUPLICATES, err,
                                     sizeof err);
        if (!obj) {
            report_error(a, f, doc, "(from line %d) %s", start_line, err[0] ? err : "invalid");
            f->parse_failed = 1;
            continue;
        }
        add_object(a, f, doc, obj, &last);
        json_decref(obj);
    }
    if (last) {
        last->last = 1;
    } else {
        if (doc == 0) log_info("addons", "%s: no objects", f->path);
        finish_file(a, f);
        /* nothing queued for this file: its status goes out with the next
         * write (or now, when the queue is idle) */
        if (!a->head && !a->busy) write_status(a);
    }
}

/* ---- finding files --------------------------------------------------------------- */

static addon_file_t *file_for(addons_t *a, const char *path)
{
    for (addon_file_t *f = a->files; f; f = f->next)
        if (strcmp(f->path, path) == 0) return f;
    addon_file_t *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return NULL;
    }
    f->next = a->files;
    a->files = f;
    return f;
}

static int has_manifest_suffix(const char *n)
{
    size_t l = strlen(n);
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0) ||
           (l > 5 && strcmp(n + l - 5, ".json") == 0);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void consider(addons_t *a, const char *path)
{
    addon_file_t *f = file_for(a, path);
    if (!f) return;
    f->seen = 1;
    char err[256] = "";
    char *raw = read_text(path, err, sizeof err);
    if (!raw) {
        if (!f->failed) {
            f->applied = f->errors = 0;
            report_error(a, f, 0, "%s", err);
            finish_file(a, f);
            if (!a->head && !a->busy) write_status(a);
        }
        return;
    }
    char *text = addons_substitute(raw, a->vars);
    free(raw);
    if (!text) return;
    uint64_t h = fnv1a_str(text);
    /* a refused object may be accepted later (its namespace or CRD came);
     * text that does not parse will not, until it changes */
    if (h != f->hash || (f->failed && !f->parse_failed)) {
        f->hash = h;
        apply_file(a, f, text);
    }
    free(text);
}

static void scan_path(addons_t *a, const char *path)
{
    struct stat st;
    if (strncmp(path, "builtin:", 8) == 0 || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        consider(a, path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        consider(a, path);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_manifest_suffix(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        consider(a, full);
        free(names[i]);
    }
    free(names);
}

static void scan(addons_t *a)
{
    if (a->stopping) return;
    if (a->busy || a->head) {
        a->scan_again = 1;
        return;
    }
    for (addon_file_t *f = a->files; f; f = f->next) f->seen = 0;
    size_t i;
    json_t *p;
    json_array_foreach(a->paths, i, p) scan_path(a, json_string_value(p));
    /* files gone since the last scan: their objects stay */
    addon_file_t **pp = &a->files;
    int removed = 0;
    while (*pp) {
        addon_file_t *f = *pp;
        if (f->seen) {
            pp = &f->next;
            continue;
        }
        char key[256];
        log_info("addons", "%s was removed; the objects it created stay", f->path);
        json_object_del(a->status_data, file_key(a, f, key, sizeof key));
        *pp = f->next;
        free(f->path);
        free(f->first_error);
        free(f);
        removed = 1;
    }
    if (removed && !a->head && !a->busy) write_status(a);
    run_next(a);
}

/* ---- watching -------------------------------------------------------------------- */

static void on_debounce(uv_timer_t *t)
{
    scan(t->data);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    addons_t *a = h->data;
    /* editors write, rename and touch in bursts: one scan after the burst */
    if (!a->stopping) uv_timer_start(&a->debounce, on_debounce, 150, 0);
}

static void on_periodic(uv_timer_t *t)
{
    scan(t->data);
}

static void watch_path(addons_t *a, const char *path)
{
    if (strncmp(path, "builtin:", 8) == 0 || a->nwatches >= ADDONS_MAX_WATCHES) return;
    /* a file is watched through its folder: editors replace files by
     * renaming, which a watch on the file itself would not outlive */
    char dir[4096];
    struct stat st;
    snprintf(dir, sizeof dir, "%s", path);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (slash == dir) dir[1] = '\0';
        else if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    }
    uv_fs_event_t *h = &a->watches[a->nwatches];
    if (uv_fs_event_init(a->loop, h) != 0) return;
    h->data = a;
    a->nwatches++;
    a->open_handles++;
    if (uv_fs_event_start(h, on_fs_event, dir, 0) != 0)
        log_warn("addons", "cannot watch %s for changes; rescanning every few seconds instead",
                 dir);
}

static void on_closed(uv_handle_t *h)
{
    addons_t *a = h->data;
    if (--a->open_handles > 0) return;
    void (*done)(void *) = a->done;
    void *data = a->done_data;
    free(a);
    if (done) done(data);
}

int addons_start(const addons_opts_t *o, addons_t **out)
{
    *out = NULL;
    if (!o->paths || json_array_size(o->paths) == 0) return 0;
    addons_t *a = calloc(1, sizeof *a);
    if (!a) return -1;
    a->loop = o->loop;
    a->paths = skiff_json_copy(o->paths);
    a->vars = o->vars ? skiff_json_copy(o->vars) : json_object();
    a->status_data = json_object();
    a->client = client_inproc_new(o->loop, o->api);
    a->events = a->client ? skiff_event_recorder_new(a->client, "skiff-addons") : NULL;
    if (!a->paths || !a->vars || !a->status_data || !a->events) {
        if (a->events) skiff_event_recorder_free(a->events);
        if (a->client) a->client->vt->free(a->client);
        json_decref(a->paths);
        json_decref(a->vars);
        json_decref(a->status_data);
        free(a);
        return -1;
    }
    uv_timer_init(a->loop, &a->debounce);
    uv_timer_init(a->loop, &a->periodic);
    uv_timer_init(a->loop, &a->retry);
    a->debounce.data = a->periodic.data = a->retry.data = a;
    a->open_handles = 3;
    size_t i;
    json_t *p;
    json_array_foreach(a->paths, i, p) watch_path(a, json_string_value(p));
    int every = o->rescan_ms > 0 ? o->rescan_ms : 10000;
    uv_timer_start(&a->periodic, on_periodic, (uint64_t)every, (uint64_t)every);
    /* the status object first, so Events have something to point at */
    write_status(a);
    a->scan_again = 1;
    *out = a;
    return 0;
}

void addons_stop(addons_t *a, void (*done)(void *data), void *data)
{
    if (!a) {
        if (done) done(data);
        return;
    }
    a->stopping = 1;
    a->done = done;
    a->done_data = data;
    while (a->head) {
        op_t *op = a->head;
        a->head = op->next;
        op_free(op);
    }
    a->tail = NULL;
    skiff_event_recorder_free(a->events);
    a->events = NULL;
    /* requests in flight end now (status 0) and see `stopping` */
    a->client->vt->free(a->client);
    a->client = NULL;
    while (a->files) {
        addon_file_t *f = a->files;
        a->files = f->next;
        free(f->path);
        free(f->first_error);
        free(f);
    }
    json_decref(a->paths);
    json_decref(a->vars);
    json_decref(a->status_obj);
    json_decref(a->status_data);
    uv_close((uv_handle_t *)&a->debounce, on_closed);
    uv_close((uv_handle_t *)&a->periodic, on_closed);
    uv_close((uv_handle_t *)&a->retry, on_closed);
    for (int i = 0; i < a->nwatches; i++) uv_close((uv_handle_t *)&a->watches[i], on_closed);
}
