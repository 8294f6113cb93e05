/* core/api/object_meta.c - the metadata contract the API server enforces:
 * uid, creationTimestamp, generation, and what a create or update may
 * change. Shared by every write verb. */
#include "api/object_meta.h"
#include "api/crd.h"

#include <skiff/objects.h>

#include <stdlib.h>

#include "api/selector.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void api_new_uid(char *buf)
{
    /* random bytes fetched in batches: one RAND_bytes call per 256 uids */
    static __thread unsigned char pool[4096];
    static __thread size_t used = sizeof pool;
    unsigned char b[16];
    if (used + sizeof b > sizeof pool) {
        if (RAND_bytes(pool, sizeof pool) != 1) {
            /* RAND_bytes only fails when the system has no entropy at all. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            for (size_t i = 0; i < sizeof pool; i++)
                pool[i] = (unsigned char)((ts.tv_nsec >> (i % 8)) ^ (i * 131));
        }
        used = 0;
    }
    memcpy(b, pool + used, sizeof b);
    memset(pool + used, 0, sizeof b);
    used += sizeof b;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    char *o = buf;
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

void api_rfc3339(time_t t, char *buf, size_t len)
{
    /* one formatter for the server and the SDK (skiff/objects.h) */
    skiff_time_format((int64_t)t * 1000, buf, len);
}

void api_now_rfc3339(char *buf, size_t len) { api_rfc3339(time(NULL), buf, len); }

json_t *api_meta(json_t *obj)
{
    json_t *m = json_object_get(obj, "metadata");
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(obj, "metadata", m);
    }
    return m;
}

const char *api_meta_str(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

int api_kind_is_core(const kind_def_t *k, const char *kind)
{
    return (!k->group || !k->group[0]) && strcmp(k->kind, kind) == 0;
}

int api_kind_has_generation(const kind_def_t *k)
{
    if (k->crd) return 1; /* custom resources always count generations */
    if (strcmp(k->kind, "Pod") == 0 || strcmp(k->kind, "Namespace") == 0) return 0;
    return k->schema && schema_field(k->schema, "spec") != NULL;
}

/* Everything but metadata and status: what counts as "the spec" for generation. */
int api_spec_changed(const json_t *a, const json_t *b)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)a, key, v)
    {
        if (!strcmp(key, "metadata") || !strcmp(key, "status") || !strcmp(key, "kind") ||
            !strcmp(key, "apiVersion"))
            continue;
        json_t *w = json_object_get(b, key);
        if (!w || !json_equal(v, w)) return 1;
    }
    json_object_foreach((json_t *)b, key, v)
    {
        if (!strcmp(key, "metadata") || !strcmp(key, "status") || !strcmp(key, "kind") ||
            !strcmp(key, "apiVersion"))
            continue;
        if (!json_object_get(a, key)) return 1;
    }
    return 0;
}


/* Pod QoS class from its containers' requests and limits (the Kubernetes rule). */
static const char *pod_qos(const json_t *pod)
{
    const json_t *containers = json_object_get(json_object_get(pod, "spec"), "containers");
    int any = 0, guaranteed = 1;
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)containers, i, c)
    {
        const json_t *r = json_object_get(c, "resources");
        const json_t *req = json_object_get(r, "requests");
        const json_t *lim = json_object_get(r, "limits");
        if (json_object_size(req) || json_object_size(lim)) any = 1;
        static const char *const names[] = {"cpu", "memory"};
        for (int n = 0; n < 2; n++) {
            const json_t *l = json_object_get(lim, names[n]);
            const json_t *q = json_object_get(req, names[n]);
            if (!l) guaranteed = 0;
            else if (q && !json_equal(q, l)) guaranteed = 0;
        }
    }
    if (!any) return "BestEffort";
    return guaranteed ? "Guaranteed" : "Burstable";
}

void api_reset_status_for_create(const kind_def_t *k, json_t *obj)
{
    if (!k->has_status) return;
    if (k->crd) {
        /* a custom resource's status is written through /status only */
        json_object_del(obj, "status");
        return;
    }
    if (strcmp(k->kind, "Node") == 0) return; /* the node agent registers with its status */
    if (strcmp(k->kind, "Pod") == 0) {
        json_t *st = json_object();
        json_object_set_new(st, "phase", json_string("Pending"));
        json_object_set_new(st, "qosClass", json_string(pod_qos(obj)));
        json_object_set_new(obj, "status", st);
    } else if (strcmp(k->kind, "Namespace") == 0) {
        json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
    } else if (strcmp(k->kind, "Service") == 0) {
        json_object_set_new(obj, "status", json_pack("{s:{}}", "loadBalancer"));
    } else if (strcmp(k->kind, "PersistentVolumeClaim") == 0 ||
               strcmp(k->kind, "PersistentVolume") == 0) {
        json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Pending"));
    } else {
        json_object_set_new(obj, "status", json_object());
    }
}

json_t *api_scale_view_of(const kind_def_t *k, const json_t *obj)
{
    return k && k->crd ? crd_scale_view(k, obj) : api_scale_view(obj);
}

/* The autoscaling/v1 Scale view of a scalable object (scale subresource). */
json_t *api_scale_view(const json_t *obj)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *status = json_object_get(obj, "status");
    json_t *m = json_object();
    static const char *const keep[] = {"name", "namespace", "uid", "resourceVersion",
                                       "creationTimestamp"};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        json_t *v = json_object_get(meta, keep[i]);
        if (v) json_object_set(m, keep[i], v);
    }
    json_int_t replicas = json_integer_value(json_object_get(spec, "replicas"));
    json_t *scale = json_pack("{s:s, s:s, s:o, s:{s:I}, s:{s:I}}", "kind", "Scale", "apiVersion",
                              "autoscaling/v1", "metadata", m, "spec", "replicas", replicas,
                              "status", "replicas",
                              json_integer_value(json_object_get(status, "replicas")));
    const json_t *sel = json_object_get(spec, "selector");
    if (sel) {
        label_selector_t *ls = NULL;
        char err[256];
        if (label_selector_from_json(sel, &ls, err, sizeof err) == 0) {
            char *s = label_selector_string(ls);
            if (s) json_object_set_new(json_object_get(scale, "status"), "selector",
                                       json_string(s));
            free(s);
        }
        label_selector_free(ls);
    }
    return scale;
}


json_t *api_canonical_order(json_t *obj)
{
    json_t *out = json_object();
    static const char *const first[] = {"kind", "apiVersion", "metadata"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(obj, first[i]);
        if (v) json_object_set(out, first[i], v);
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "kind") && strcmp(key, "apiVersion") && strcmp(key, "metadata"))
            json_object_set(out, key, v);
    }
    return out;
}

json_t *api_store_form(json_t *obj)
{
    json_t *ordered = api_canonical_order(obj);
    json_object_del(json_object_get(ordered, "metadata"), "resourceVersion");
    return ordered;
}

/* Skip `"<simple string>"` at p; NULL unless it is a string without escapes. */
static const char *skip_plain_string(const char *p, const char *end)
{
    if (p >= end || *p != '"') return NULL;
    for (p++; p < end; p++) {
        if (*p == '\\') return NULL;
        if (*p == '"') return p + 1;
    }
    return NULL;
}

size_t api_splice_rv_at(const char *json, size_t len)
{
    static const char k1[] = "{\"kind\":", k2[] = ",\"apiVersion\":", k3[] = ",\"metadata\":{";
    const char *end = json + len, *p = json;
    if (len < sizeof k1 || memcmp(p, k1, sizeof k1 - 1) != 0) return 0;
    p = skip_plain_string(p + sizeof k1 - 1, end);
    if (!p || (size_t)(end - p) < sizeof k2 || memcmp(p, k2, sizeof k2 - 1) != 0) return 0;
    p = skip_plain_string(p + sizeof k2 - 1, end);
    if (!p || (size_t)(end - p) < sizeof k3 || memcmp(p, k3, sizeof k3 - 1) != 0) return 0;
    p += sizeof k3 - 1;
    if (p >= end || *p == '}') return 0; /* empty metadata: let the slow path handle it */
    return (size_t)(p - json);
}

size_t api_rv_member(int64_t rev, char out[API_RV_MEMBER_MAX])
{
    /* "resourceVersion":"<rev>", pieced together (every answer to a write has one) */
    char digits[24];
    size_t k = 0, n = 0;
    unsigned long long v = rev < 0 ? 0ULL - (unsigned long long)rev : (unsigned long long)rev;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (rev < 0) digits[k++] = '-';
    memcpy(out, "\"resourceVersion\":\"", 19);
    n = 19;
    while (k) out[n++] = digits[--k];
    out[n++] = '"';
    out[n++] = ',';
    return n;
}

char *api_splice_rv(const char *json, size_t len, int64_t rev, size_t *outlen)
{
    size_t head = api_splice_rv_at(json, len);
    if (!head) return NULL;
    char ins[API_RV_MEMBER_MAX];
    size_t n = api_rv_member(rev, ins);
    char *out = malloc(len + n + 1);
    if (!out) return NULL;
    api_splice_rv_place(out, json, len, head, ins, n);
    *outlen = len + n;
    return out;
}

void api_splice_rv_place(char *out, const char *json, size_t len, size_t head, const char *member,
                         size_t n)
{
    memcpy(out, json, head);
    memcpy(out + head, member, n);
    memcpy(out + head + n, json + head, len - head);
    out[len + n] = '\0';
}

int api_remove_path(json_t *obj, const char *path)
{
    json_t *cur = obj;
    const char *p = path;
    while (*p) {
        char name[256];
        size_t n = strcspn(p, ".[");
        if (n >= sizeof name) return -1;
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        json_t *parent = cur;
        if (n > 0) {
            if (!*p) return json_object_del(parent, name) == 0 ? 0 : -1;
            cur = json_object_get(parent, name);
        }
        while (*p == '[') {
            const char *close = strchr(p, ']');
            if (!close) return -1;
            char idx[256];
            size_t m = (size_t)(close - p - 1);
            if (m >= sizeof idx) return -1;
            memcpy(idx, p + 1, m);
            idx[m] = '\0';
            p = close + 1;
            if (json_is_array(cur)) cur = json_array_get(cur, (size_t)strtoul(idx, NULL, 10));
            else cur = json_object_get(cur, idx);
        }
        if (!cur) return -1;
        if (*p == '.') p++;
    }
    return -1;
}
