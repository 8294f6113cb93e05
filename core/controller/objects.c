/* core/controller/objects.c - the object helpers of skiff/objects.h:
 * selectors, owner references, conditions, time, quantities, pod state and
 * template hashes. Events are in events.c. */
#define _GNU_SOURCE
#include <skiff/objects.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/client_rest.h"
#include "api/selector.h"

/* ---- label selectors ---------------------------------------------------- */

int skiff_label_selector_matches(const json_t *selector, const json_t *labels)
{
    if (!selector || json_is_null(selector)) return 0;
    if (!json_is_object(selector)) return SKIFF_EINVAL;
    label_selector_t *sel = NULL;
    char err[256];
    if (label_selector_from_json(selector, &sel, err, sizeof err) != 0) return SKIFF_EINVAL;
    int m = label_selector_matches(sel, json_is_object(labels) ? labels : NULL);
    label_selector_free(sel);
    return m ? 1 : 0;
}

char *skiff_label_selector_string(const json_t *selector)
{
    label_selector_t *sel = NULL;
    char err[256];
    if (!json_is_object(selector) ||
        label_selector_from_json(selector, &sel, err, sizeof err) != 0)
        return NULL;
    char *s = label_selector_string(sel);
    label_selector_free(sel);
    return s;
}

/* ---- owner references ----------------------------------------------------- */

static const char *str_at(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    return json_string_value(v);
}

json_t *skiff_owner_ref_new(const json_t *owner, int controller)
{
    const char *av = str_at(owner, "apiVersion", NULL), *kind = str_at(owner, "kind", NULL);
    const char *name = str_at(owner, "metadata", "name"), *uid = str_at(owner, "metadata", "uid");
    if (!av || !kind || !name || !uid) return NULL;
    json_t *ref = json_pack("{s:s, s:s, s:s, s:s}", "apiVersion", av, "kind", kind, "name", name,
                            "uid", uid);
    if (ref && controller) {
        json_object_set_new(ref, "controller", json_true());
        json_object_set_new(ref, "blockOwnerDeletion", json_true());
    }
    return ref;
}

json_t *skiff_controller_ref(const json_t *obj)
{
    json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
        if (json_is_true(json_object_get(r, "controller"))) return r;
    return NULL;
}

int skiff_is_controlled_by(const json_t *obj, const char *owner_uid)
{
    const char *uid = json_string_value(json_object_get(skiff_controller_ref(obj), "uid"));
    return uid && owner_uid && strcmp(uid, owner_uid) == 0;
}

/* ---- status conditions ---------------------------------------------------- */

json_t *skiff_condition_get(const json_t *obj, const char *type)
{
    json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && type && strcmp(t, type) == 0) return c;
    }
    return NULL;
}

const char *skiff_condition_status(const json_t *obj, const char *type)
{
    return json_string_value(json_object_get(skiff_condition_get(obj, type), "status"));
}

static int set_str_if_changed(json_t *o, const char *key, const char *value)
{
    const char *cur = json_string_value(json_object_get(o, key));
    if (!value) {
        if (!json_object_get(o, key)) return 0;
        json_object_del(o, key);
        return 1;
    }
    if (cur && strcmp(cur, value) == 0) return 0;
    return json_object_set_new(o, key, json_string(value)) == 0 ? 1 : SKIFF_ENOMEM;
}

int skiff_condition_set(json_t *obj, const char *type, const char *status, const char *reason,
                        const char *message, int update_time)
{
    if (!json_is_object(obj) || !type || !status) return SKIFF_EINVAL;
    json_t *st = json_object_get(obj, "status");
    if (!json_is_object(st)) {
        st = json_object();
        if (!st || json_object_set_new(obj, "status", st) != 0) return SKIFF_ENOMEM;
    }
    json_t *conds = json_object_get(st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        if (!conds || json_object_set_new(st, "conditions", conds) != 0) return SKIFF_ENOMEM;
    }
    char now[32];
    skiff_time_format(skiff_now_ms(), now, sizeof now);
    json_t *c = skiff_condition_get(obj, type);
    if (!c) {
        c = json_pack("{s:s, s:s, s:s}", "type", type, "status", status, "lastTransitionTime", now);
        if (!c) return SKIFF_ENOMEM;
        if (reason) json_object_set_new(c, "reason", json_string(reason));
        if (message) json_object_set_new(c, "message", json_string(message));
        if (update_time) json_object_set_new(c, "lastUpdateTime", json_string(now));
        return json_array_append_new(conds, c) == 0 ? 1 : SKIFF_ENOMEM;
    }
    int changed = 0;
    const char *cur = json_string_value(json_object_get(c, "status"));
    if (!cur || strcmp(cur, status) != 0) {
        json_object_set_new(c, "status", json_string(status));
        json_object_set_new(c, "lastTransitionTime", json_string(now));
        changed = 1;
    }
    int r1 = set_str_if_changed(c, "reason", reason);
    int r2 = set_str_if_changed(c, "message", message);
    if (r1 < 0 || r2 < 0) return SKIFF_ENOMEM;
    changed |= r1 | r2;
    if (changed && update_time) json_object_set_new(c, "lastUpdateTime", json_string(now));
    return changed;
}

int skiff_condition_remove(json_t *obj, const char *type)
{
    json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions");
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && type && strcmp(t, type) == 0) {
            json_array_remove(conds, i);
            return 1;
        }
    }
    return 0;
}

/* ---- time -------------------------------------------------------------------- */

int64_t skiff_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void skiff_time_format(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && len) buf[0] = '\0';
}

int64_t skiff_time_parse(const char *s)
{
    if (!s) return -1;
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) return -1;
    int64_t frac_ms = 0;
    if (*p == '.') {
        int64_t scale = 100;
        for (p++; isdigit((unsigned char)*p); p++) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return -1;
        off = (int64_t)(hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    return ((int64_t)t - off) * 1000 + frac_ms;
}

/* ---- resource quantities --------------------------------------------------- */

typedef __int128 i128;

static int suffix_of(const char *s, int *base2, int *exp)
{
    static const struct {
        const char *s;
        int base2, exp;
    } table[] = {
        {"Ki", 1, 10}, {"Mi", 1, 20}, {"Gi", 1, 30}, {"Ti", 1, 40}, {"Pi", 1, 50}, {"Ei", 1, 60},
        {"n", 0, -9},  {"u", 0, -6},  {"m", 0, -3},  {"", 0, 0},    {"k", 0, 3},   {"M", 0, 6},
        {"G", 0, 9},   {"T", 0, 12},  {"P", 0, 15},  {"E", 0, 18},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(s, table[i].s) == 0) {
            *base2 = table[i].base2;
            *exp = table[i].exp;
            return 0;
        }
    /* decimal exponent: e3, E-2 */
    if ((s[0] == 'e' || s[0] == 'E') && s[1]) {
        char *end;
        long e = strtol(s + 1, &end, 10);
        if (*end || e < -30 || e > 30) return -1;
        *base2 = 0;
        *exp = (int)e;
        return 0;
    }
    return -1;
}

int skiff_quantity_milli(const char *s, int64_t *milli)
{
    if (!s || !milli) return SKIFF_EINVAL;
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    i128 digits = 0;
    int frac = 0, seen = 0, dot = 0;
    for (; isdigit((unsigned char)*p) || (*p == '.' && !dot); p++) {
        if (*p == '.') {
            dot = 1;
            continue;
        }
        seen = 1;
        if (digits > (i128)1000000000000000000LL) return SKIFF_EINVAL;
        digits = digits * 10 + (*p - '0');
        if (dot) frac++;
    }
    if (!seen) return SKIFF_EINVAL;
    int base2, exp;
    if (suffix_of(p, &base2, &exp) != 0) return SKIFF_EINVAL;
    const i128 limit = (i128)INT64_MAX;
    i128 num = digits, den = 1;
    /* value = digits / 10^frac * (2^exp | 10^exp) * 1000 */
    int dexp = 3 - frac + (base2 ? 0 : exp);
    for (; dexp > 0; dexp--) {
        num *= 10;
        if (num > limit * 1024) return SKIFF_EINVAL;
    }
    for (; dexp < 0; dexp++) den *= 10;
    if (base2) {
        for (int i = 0; i < exp; i++) {
            num *= 2;
            if (num > limit * den) return SKIFF_EINVAL;
        }
    }
    i128 q = (num + den - 1) / den; /* rounded up */
    if (q > limit) return SKIFF_EINVAL;
    *milli = neg ? -(int64_t)q : (int64_t)q;
    return 0;
}

int skiff_quantity_milli_json(const json_t *v, int64_t *milli)
{
    if (!v || json_is_null(v)) {
        *milli = 0;
        return 0;
    }
    if (json_is_string(v)) return skiff_quantity_milli(json_string_value(v), milli);
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n > INT64_MAX / 1000 || n < INT64_MIN / 1000) return SKIFF_EINVAL;
        *milli = (int64_t)n * 1000;
        return 0;
    }
    if (json_is_real(v)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.6f", json_real_value(v));
        return skiff_quantity_milli(buf, milli);
    }
    return SKIFF_EINVAL;
}

/* ---- pods ---------------------------------------------------------------------- */

int skiff_pod_is_ready(const json_t *pod)
{
    const char *s = skiff_condition_status(pod, "Ready");
    return s && strcmp(s, "True") == 0;
}

int skiff_pod_is_active(const json_t *pod)
{
    const char *phase = str_at(pod, "status", "phase");
    if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) return 0;
    return json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp") == NULL;
}

int skiff_pod_is_available(const json_t *pod, int64_t min_ready_seconds, int64_t now_ms)
{
    if (!skiff_pod_is_ready(pod)) return 0;
    if (min_ready_seconds <= 0) return 1;
    json_t *c = skiff_condition_get(pod, "Ready");
    int64_t since = skiff_time_parse(json_string_value(json_object_get(c, "lastTransitionTime")));
    return since >= 0 && since + min_ready_seconds * 1000 <= now_ms;
}

/* Adds (max 0) or takes the largest of (max 1) each container's request
 * for each of the n resources into acc: its request, or its limit when it
 * asks for none (API defaulting), 0 when neither parses. */
static void containers_requests(const json_t *containers, const char *const *resources,
                                size_t n, int max, int64_t *acc)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        const json_t *res = json_object_get(c, "resources");
        const json_t *req = json_object_get(res, "requests");
        const json_t *lim = json_object_get(res, "limits");
        for (size_t r = 0; r < n; r++) {
            const json_t *q = json_object_get(req, resources[r]);
            if (!q) q = json_object_get(lim, resources[r]);
            int64_t v = 0;
            if (skiff_quantity_milli_json(q, &v) != 0) v = 0;
            if (max) acc[r] = v > acc[r] ? v : acc[r];
            else acc[r] += v;
        }
    }
}

void skiff_pod_requests_milli(const json_t *pod, const char *const *resources, size_t n,
                              int64_t *out)
{
    const json_t *spec = json_object_get(pod, "spec");
    const json_t *overhead = json_object_get(spec, "overhead");
    int64_t init[8];
    for (size_t done = 0; done < n; done += 8) {
        /* eight resources at a time, the init containers' maxima on the stack */
        size_t k = n - done < 8 ? n - done : 8;
        for (size_t r = 0; r < k; r++) out[done + r] = init[r] = 0;
        containers_requests(json_object_get(spec, "containers"), resources + done, k, 0,
                            out + done);
        containers_requests(json_object_get(spec, "initContainers"), resources + done, k, 1,
                            init);
        for (size_t r = 0; r < k; r++) {
            if (init[r] > out[done + r]) out[done + r] = init[r];
            int64_t over = 0;
            if (skiff_quantity_milli_json(json_object_get(overhead, resources[done + r]), &over) ==
                0)
                out[done + r] += over;
        }
    }
}

int64_t skiff_pod_request_milli(const json_t *pod, const char *resource)
{
    int64_t v = 0;
    skiff_pod_requests_milli(pod, &resource, 1, &v);
    return v;
}

/* ---- hashes --------------------------------------------------------------------- */

int skiff_json_same(const json_t *a, const json_t *b)
{
    return a == b || (a && b && json_equal((json_t *)a, (json_t *)b));
}

json_t *skiff_json_copy(const json_t *v)
{
    if (!v) return NULL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        json_t *out = json_object();
        if (!out) return NULL;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            json_t *e = skiff_json_copy(json_object_iter_value(it));
            if (!e || json_object_setn_new_nocheck(out, json_object_iter_key(it),
                                                   json_object_iter_key_len(it), e) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        json_t *out = json_array();
        if (!out) return NULL;
        for (size_t i = 0; i < n; i++) {
            if (json_array_append_new(out, skiff_json_copy(json_array_get(v, i))) != 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return json_integer(json_integer_value(v));
    case JSON_REAL:
        return json_real(json_real_value(v));
    default:
        return (json_t *)v; /* true, false and null are constants */
    }
}

void skiff_json_hash(const json_t *v, uint32_t collision_count, char *buf, size_t len)
{
    /* FNV-1a over the canonical (sorted, compact) text */
    char *text = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    uint32_t h = 2166136261u;
    for (const char *p = text ? text : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 16777619u;
    }
    free(text);
    if (collision_count) {
        for (int i = 0; i < 4; i++) {
            h ^= (collision_count >> (8 * i)) & 0xff;
            h *= 16777619u;
        }
    }
    /* the decimal digits mapped onto letters and digits that cannot spell
     * words, as Kubernetes' names do */
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    char dec[16];
    int n = snprintf(dec, sizeof dec, "%u", h);
    size_t out = 0;
    for (int i = 0; i < n && out + 1 < len; i++)
        buf[out++] = alnum[(unsigned char)dec[i] % (sizeof alnum - 1)];
    if (len) buf[out] = '\0';
}

/* ---- answers -------------------------------------------------------------------- */

const char *skiff_answer_message(const json_t *obj)
{
    const char *m = json_string_value(json_object_get(obj, "message"));
    return m ? m : "no answer from the API server";
}

/* ---- binding ------------------------------------------------------------ */

int skiff_pod_bind(skiff_client_t *client, json_t *pod, const char *node, skiff_client_cb cb,
                   void *data)
{
    static const skiff_resource_t binding_res = {"", "v1", "pods", "binding"};
    const json_t *meta = json_object_get(pod, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    if (!client || !name || !*name || !ns || !*ns || !node || !*node) return SKIFF_EINVAL;
    json_t *b = json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s,s:s}}", "apiVersion", "v1", "kind",
                          "Binding", "metadata", "name", name, "namespace", ns, "target",
                          "apiVersion", "v1", "kind", "Node", "name", node);
    if (!b) return SKIFF_ENOMEM;
    if (uid && *uid) json_object_set_new(json_object_get(b, "metadata"), "uid", json_string(uid));
    return client_rest_create_ex(client, &binding_res, ns, b, NULL, 1, pod, 1, cb, data);
}
