/* core/admission/limit_range.c - LimitRange semantics on JSON objects,
 * following kube-apiserver's LimitRanger: defaults merged into containers,
 * then min, max and maxLimitRequestRatio checked per Container, per Pod
 * (the sum of the containers, or the largest init container when that is
 * more) and per PersistentVolumeClaim (requests only). Quantities compare
 * in milli-units (skiff_quantity_milli). Nothing here reads the server. */
#define _GNU_SOURCE
#include "admission/limit_range.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <skiff/objects.h>

#include "admission/quantity.h"
#include "util/strbuf.h"

static json_t *obj_child(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_object(v)) {
        v = json_object();
        json_object_set_new(o, k, v);
    }
    return v;
}


/* missing keys of `from` into `to`; their names into set (", "-joined) */
static void merge_missing(json_t *to, const json_t *from, strbuf_t *set)
{
    const char *keys[64];
    size_t n = resource_names_sorted(from, keys, 64);
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(to, keys[i])) continue;
        json_object_set(to, keys[i], json_object_get(from, keys[i]));
        if (set->len) strbuf_add(set, ", ");
        strbuf_add(set, keys[i]);
    }
}

static void default_containers(json_t *containers, const json_t *def_req, const json_t *def_lim,
                               const char *what, strbuf_t *note)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c)
    {
        if (!json_is_object(c)) continue;
        json_t *res = obj_child(c, "resources");
        json_t *lim = obj_child(res, "limits");
        json_t *req = obj_child(res, "requests");
        /* a limit without a request requests the limit (pod defaulting,
         * which in Kubernetes runs before admission) */
        strbuf_t ignored = {0};
        merge_missing(req, lim, &ignored);
        strbuf_free(&ignored);
        strbuf_t set_req = {0}, set_lim = {0};
        merge_missing(lim, def_lim, &set_lim);
        merge_missing(req, def_req, &set_req);
        const char *name = json_string_value(json_object_get(c, "name"));
        if (set_req.len) {
            if (note->len) strbuf_add(note, "; ");
            strbuf_add(note, set_req.p);
            strbuf_add(note, " request for ");
            strbuf_add(note, what);
            strbuf_add(note, " ");
            strbuf_add(note, name ? name : "");
        }
        if (set_lim.len) {
            if (note->len) strbuf_add(note, "; ");
            strbuf_add(note, set_lim.p);
            strbuf_add(note, " limit for ");
            strbuf_add(note, what);
            strbuf_add(note, " ");
            strbuf_add(note, name ? name : "");
        }
        strbuf_free(&set_req);
        strbuf_free(&set_lim);
        if (!json_object_size(lim)) json_object_del(res, "limits");
        if (!json_object_size(req)) json_object_del(res, "requests");
    }
}

int limitrange_default_pod(const json_t *ranges, json_t *pod)
{
    json_t *def_req = json_object(), *def_lim = json_object();
    size_t i, j;
    json_t *lr, *item;
    json_array_foreach((json_t *)ranges, i, lr)
    {
        json_array_foreach(json_object_get(json_object_get(lr, "spec"), "limits"), j, item)
        {
            const char *type = json_string_value(json_object_get(item, "type"));
            if (!type || strcmp(type, "Container") != 0) continue;
            /* a later LimitRange's default replaces an earlier one's */
            json_object_update(def_req, json_object_get(item, "defaultRequest"));
            json_object_update(def_lim, json_object_get(item, "default"));
        }
    }
    json_t *spec = json_object_get(pod, "spec");
    strbuf_t note = {0};
    int changed = 0;
    if (json_object_size(def_req) || json_object_size(def_lim)) {
        default_containers(json_object_get(spec, "containers"), def_req, def_lim, "container",
                           &note);
        default_containers(json_object_get(spec, "initContainers"), def_req, def_lim,
                           "init container", &note);
    }
    if (note.len && !note.failed) {
        json_t *ann = obj_child(obj_child(pod, "metadata"), "annotations");
        char *val = NULL;
        if (asprintf(&val, "LimitRanger plugin set: %s", note.p) >= 0) {
            json_object_set_new(ann, "kubernetes.io/limit-ranger", json_string(val));
            free(val);
        }
        changed = 1;
    }
    strbuf_free(&note);
    json_decref(def_req);
    json_decref(def_lim);
    return changed;
}

/* ---- checks ----------------------------------------------------------------- */

typedef struct errs {
    strbuf_t b;
    size_t n;
} errs_t;

static void add_err(errs_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_err(errs_t *e, const char *fmt, ...)
{
    char *m = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0) m = NULL;
    va_end(ap);
    if (!m) return;
    /* the aggregate lists each distinct message once */
    if (e->b.p) {
        const char *p = e->b.p;
        size_t ml = strlen(m);
        while ((p = strstr(p, m)) != NULL) {
            if ((p == e->b.p || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0')) {
                free(m);
                return;
            }
            p++;
        }
    }
    if (e->n) strbuf_add(&e->b, ", ");
    strbuf_add(&e->b, m);
    e->n++;
    free(m);
}

static const char *qstr(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_integer(v)) snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, len, "%g", json_real_value(v));
    else snprintf(buf, len, "0");
    return buf;
}

static int64_t milli(const json_t *v)
{
    int64_t m = 0;
    if (v) skiff_quantity_milli_json(v, &m);
    return m;
}

/* req and lim: the observed requests and limits (NULL: none) */
static void min_check(errs_t *e, const char *type, const char *res, const json_t *enforced,
                      const json_t *reqs, const json_t *lims)
{
    char b1[64], b2[64];
    const json_t *req = json_object_get(reqs, res), *lim = json_object_get(lims, res);
    const char *en = qstr(enforced, b1, sizeof b1);
    if (!req) {
        add_err(e, "minimum %s usage per %s is %s.  No request is specified", res, type, en);
        return;
    }
    if (milli(req) < milli(enforced)) {
        add_err(e, "minimum %s usage per %s is %s, but request is %s", res, type, en,
                qstr(req, b2, sizeof b2));
        return;
    }
    if (lim && milli(lim) < milli(enforced))
        add_err(e, "minimum %s usage per %s is %s, but limit is %s", res, type, en,
                qstr(lim, b2, sizeof b2));
}

static void max_check(errs_t *e, const char *type, const char *res, const json_t *enforced,
                      const json_t *reqs, const json_t *lims)
{
    char b1[64], b2[64];
    const json_t *req = json_object_get(reqs, res), *lim = json_object_get(lims, res);
    const char *en = qstr(enforced, b1, sizeof b1);
    if (!lim) {
        add_err(e, "maximum %s usage per %s is %s.  No limit is specified", res, type, en);
        return;
    }
    if (milli(lim) > milli(enforced)) {
        add_err(e, "maximum %s usage per %s is %s, but limit is %s", res, type, en,
                qstr(lim, b2, sizeof b2));
        return;
    }
    if (req && milli(req) > milli(enforced))
        add_err(e, "maximum %s usage per %s is %s, but request is %s", res, type, en,
                qstr(req, b2, sizeof b2));
}

/* PersistentVolumeClaims have requests only */
static void max_request_check(errs_t *e, const char *type, const char *res,
                              const json_t *enforced, const json_t *reqs)
{
    char b1[64], b2[64];
    const json_t *req = json_object_get(reqs, res);
    const char *en = qstr(enforced, b1, sizeof b1);
    if (!req) {
        add_err(e, "maximum %s usage per %s is %s.  No request is specified", res, type, en);
        return;
    }
    if (milli(req) > milli(enforced))
        add_err(e, "maximum %s usage per %s is %s, but request is %s", res, type, en,
                qstr(req, b2, sizeof b2));
}

static void ratio_check(errs_t *e, const char *type, const char *res, const json_t *enforced,
                        const json_t *reqs, const json_t *lims)
{
    char b1[64];
    const json_t *req = json_object_get(reqs, res), *lim = json_object_get(lims, res);
    const char *en = qstr(enforced, b1, sizeof b1);
    int64_t r = milli(req), l = milli(lim);
    if (!req || r == 0) {
        add_err(e, "%s max limit to request ratio per %s is %s, but no request is specified or "
                   "request is 0",
                res, type, en);
        return;
    }
    if (!lim || l == 0) {
        add_err(e, "%s max limit to request ratio per %s is %s, but no limit is specified or "
                   "limit is 0",
                res, type, en);
        return;
    }
    double observed = (double)l / (double)r;
    if (observed * 1000.0 > (double)milli(enforced))
        add_err(e, "%s max limit to request ratio per %s is %s, but provided ratio is %f", res,
                type, en, observed);
}

static void check_item(errs_t *e, const json_t *item, const char *type, const json_t *reqs,
                       const json_t *lims, int pvc)
{
    const char *keys[64];
    const json_t *min = json_object_get(item, "min"), *max = json_object_get(item, "max");
    size_t n = resource_names_sorted(min, keys, 64);
    for (size_t i = 0; i < n; i++)
        min_check(e, type, keys[i], json_object_get(min, keys[i]), reqs, lims);
    n = resource_names_sorted(max, keys, 64);
    for (size_t i = 0; i < n; i++) {
        if (pvc) max_request_check(e, type, keys[i], json_object_get(max, keys[i]), reqs);
        else max_check(e, type, keys[i], json_object_get(max, keys[i]), reqs, lims);
    }
    if (pvc) return;
    const json_t *ratio = json_object_get(item, "maxLimitRequestRatio");
    n = resource_names_sorted(ratio, keys, 64);
    for (size_t i = 0; i < n; i++)
        ratio_check(e, type, keys[i], json_object_get(ratio, keys[i]), reqs, lims);
}

/* sum over containers, at least the largest init container, plus overhead */
static json_t *pod_total(const json_t *spec, const char *which)
{
    json_t *sum = json_object();
    size_t i;
    json_t *c;
    const char *k;
    json_t *v;
    json_array_foreach(json_object_get(spec, "containers"), i, c)
    {
        json_object_foreach(json_object_get(json_object_get(c, "resources"), which), k, v)
        {
            json_t *cur = json_object_get(sum, k);
            json_object_set_new(sum, k, json_integer(json_integer_value(cur) + milli(v)));
        }
    }
    json_array_foreach(json_object_get(spec, "initContainers"), i, c)
    {
        json_object_foreach(json_object_get(json_object_get(c, "resources"), which), k, v)
        {
            json_t *cur = json_object_get(sum, k);
            if (milli(v) > json_integer_value(cur)) json_object_set_new(sum, k, json_integer(milli(v)));
        }
    }
    json_object_foreach(json_object_get(spec, "overhead"), k, v)
    {
        json_t *cur = json_object_get(sum, k);
        if (cur) json_object_set_new(sum, k, json_integer(json_integer_value(cur) + milli(v)));
    }
    /* back to quantity strings in milli-units, which milli() reads again */
    json_t *out = json_object();
    json_object_foreach(sum, k, v)
    {
        char buf[64];
        /* cpu in cores or millicores; the rest (memory, storage) in bytes */
        quantity_format(json_integer_value(v), strcmp(k, "cpu") == 0, buf, sizeof buf);
        json_object_set_new(out, k, json_string(buf));
    }
    json_decref(sum);
    return out;
}

static void check_containers(errs_t *e, const json_t *item, const json_t *containers)
{
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)containers, i, c)
    {
        const json_t *res = json_object_get(c, "resources");
        check_item(e, item, "Container", json_object_get(res, "requests"),
                   json_object_get(res, "limits"), 0);
    }
}

char *limitrange_violations(const json_t *ranges, const char *kind, const json_t *obj)
{
    errs_t e = {{0}, 0};
    int pvc = strcmp(kind, "PersistentVolumeClaim") == 0;
    const json_t *spec = json_object_get(obj, "spec");
    size_t i, j;
    json_t *lr, *item;
    json_array_foreach((json_t *)ranges, i, lr)
    {
        json_array_foreach(json_object_get(json_object_get(lr, "spec"), "limits"), j, item)
        {
            const char *type = json_string_value(json_object_get(item, "type"));
            if (!type) continue;
            if (pvc) {
                if (strcmp(type, "PersistentVolumeClaim") == 0)
                    check_item(&e, item, type,
                               json_object_get(json_object_get(spec, "resources"), "requests"),
                               NULL, 1);
                continue;
            }
            if (strcmp(type, "Container") == 0) {
                check_containers(&e, item, json_object_get(spec, "containers"));
                check_containers(&e, item, json_object_get(spec, "initContainers"));
            } else if (strcmp(type, "Pod") == 0) {
                json_t *reqs = pod_total(spec, "requests"), *lims = pod_total(spec, "limits");
                check_item(&e, item, "Pod", reqs, lims, 0);
                json_decref(reqs);
                json_decref(lims);
            }
        }
    }
    if (e.n == 0 || e.b.failed) {
        strbuf_free(&e.b);
        return NULL;
    }
    if (e.n == 1) return e.b.p;
    char *out = NULL;
    if (asprintf(&out, "[%s]", e.b.p) < 0) out = NULL;
    strbuf_free(&e.b);
    return out;
}
