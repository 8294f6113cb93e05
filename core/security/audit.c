/* core/security/audit.c - audit policy (audit.k8s.io/v1 Policy, YAML or JSON)
 * and the audit log writer (audit.k8s.io/v1 Event, one JSON line each).
 *
 * Rule matching follows Kubernetes' policy checker: the first rule whose
 * users, userGroups, verbs, namespaces/resources or nonResourceURLs all match
 * decides the level; no match is None. The writer never blocks the loop:
 * lines go to a bounded buffer, one uv_fs_write at a time drains it in order,
 * and what does not fit is dropped, counted and reported in a log line. */
#define _GNU_SOURCE /* memmem */
#include "security/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include <skiff/errors.h>
#include <skiff/objects.h>

#include "api/object_meta.h"
#include "util/log.h"
#include "util/strbuf.h"
#include "util/yaml_json.h"

#define AUDIT_DEFAULT_BUFFER (8u << 20)
#define AUDIT_PAYLOAD_ANNOTATION "audit.skiff.io/payload-omitted"

/* --- policy ---------------------------------------------------------------- */

typedef struct strlist {
    char **v;
    size_t n;
} strlist_t;

typedef struct group_resources {
    char *group;
    strlist_t resources;
    strlist_t names;
} group_resources_t;

typedef struct audit_rule {
    audit_level_t level;
    strlist_t users, groups, verbs, namespaces, non_resource_urls;
    group_resources_t *res;
    size_t n_res;
    unsigned omit;
    int omit_managed_fields; /* -1: as the policy says */
} audit_rule_t;

struct audit_policy {
    audit_rule_t *rules;
    size_t n_rules;
    unsigned omit;
    int omit_managed_fields;
};

static void strlist_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int strlist_has(const strlist_t *l, const char *s)
{
    if (!s) s = "";
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return 1;
    return 0;
}

void audit_policy_free(audit_policy_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_rules; i++) {
        audit_rule_t *r = &p->rules[i];
        strlist_free(&r->users);
        strlist_free(&r->groups);
        strlist_free(&r->verbs);
        strlist_free(&r->namespaces);
        strlist_free(&r->non_resource_urls);
        for (size_t j = 0; j < r->n_res; j++) {
            free(r->res[j].group);
            strlist_free(&r->res[j].resources);
            strlist_free(&r->res[j].names);
        }
        free(r->res);
    }
    free(p->rules);
    free(p);
}

static const char *const level_names[] = {"None", "Metadata", "Request", "RequestResponse"};

const char *audit_level_name(audit_level_t level)
{
    if ((unsigned)level > AUDIT_LEVEL_REQUEST_RESPONSE) return "None";
    return level_names[level];
}

static int parse_level(const char *s, audit_level_t *out)
{
    for (unsigned i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *out = (audit_level_t)i;
            return 0;
        }
    return -1;
}

static const char *const stage_names[] = {"RequestReceived", "ResponseStarted", "ResponseComplete",
                                          "Panic"};

static const char *stage_name(unsigned stage)
{
    for (unsigned i = 0; i < 4; i++)
        if (stage == 1u << i) return stage_names[i];
    return "Panic";
}

/* Fills out from a JSON array of strings at key (missing or null: empty). */
static int parse_strlist(json_t *obj, const char *key, strlist_t *out, const char *where,
                         char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) {
        snprintf(err, errlen, "%s.%s: must be a list of strings", where, key);
        return SKIFF_EINVAL;
    }
    size_t n = json_array_size(v);
    if (n == 0) return 0;
    out->v = calloc(n, sizeof *out->v);
    if (!out->v) return SKIFF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s)) {
            snprintf(err, errlen, "%s.%s[%zu]: must be a string", where, key, i);
            return SKIFF_EINVAL;
        }
        out->v[i] = strdup(json_string_value(s));
        if (!out->v[i]) return SKIFF_ENOMEM;
        out->n = i + 1;
    }
    return 0;
}

static int parse_stages(json_t *obj, const char *where, unsigned *mask, char *err, size_t errlen)
{
    strlist_t l = {0};
    int rc = parse_strlist(obj, "omitStages", &l, where, err, errlen);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        unsigned j;
        for (j = 0; j < 4; j++)
            if (strcmp(l.v[i], stage_names[j]) == 0) break;
        if (j == 4) {
            snprintf(err, errlen,
                     "%s.omitStages[%zu]: unknown stage \"%s\" (RequestReceived, ResponseStarted, "
                     "ResponseComplete or Panic)",
                     where, i, l.v[i]);
            rc = SKIFF_EINVAL;
        } else {
            *mask |= 1u << j;
        }
    }
    strlist_free(&l);
    return rc;
}

static int parse_bool_field(json_t *obj, const char *key, int *out, const char *where, char *err,
                            size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "%s.%s: must be true or false", where, key);
        return SKIFF_EINVAL;
    }
    *out = json_is_true(v);
    return 0;
}

static int parse_rule(json_t *jr, audit_rule_t *r, size_t idx, char *err, size_t errlen)
{
    char where[48];
    snprintf(where, sizeof where, "rules[%zu]", idx);
    r->omit_managed_fields = -1;
    if (!json_is_object(jr)) {
        snprintf(err, errlen, "%s: must be an object", where);
        return SKIFF_EINVAL;
    }
    const char *level = json_string_value(json_object_get(jr, "level"));
    if (!level) {
        snprintf(err, errlen, "%s.level: required (None, Metadata, Request or RequestResponse)",
                 where);
        return SKIFF_EINVAL;
    }
    if (parse_level(level, &r->level) != 0) {
        snprintf(err, errlen,
                 "%s.level: unknown level \"%s\" (None, Metadata, Request or RequestResponse)",
                 where, level);
        return SKIFF_EINVAL;
    }
    int rc;
    if ((rc = parse_strlist(jr, "users", &r->users, where, err, errlen)) ||
        (rc = parse_strlist(jr, "userGroups", &r->groups, where, err, errlen)) ||
        (rc = parse_strlist(jr, "verbs", &r->verbs, where, err, errlen)) ||
        (rc = parse_strlist(jr, "namespaces", &r->namespaces, where, err, errlen)) ||
        (rc = parse_strlist(jr, "nonResourceURLs", &r->non_resource_urls, where, err, errlen)) ||
        (rc = parse_stages(jr, where, &r->omit, err, errlen)) ||
        (rc = parse_bool_field(jr, "omitManagedFields", &r->omit_managed_fields, where, err,
                               errlen)))
        return rc;
    json_t *res = json_object_get(jr, "resources");
    if (res && !json_is_null(res)) {
        if (!json_is_array(res)) {
            snprintf(err, errlen, "%s.resources: must be a list of {group, resources}", where);
            return SKIFF_EINVAL;
        }
        size_t n = json_array_size(res);
        if (n) {
            r->res = calloc(n, sizeof *r->res);
            if (!r->res) return SKIFF_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *g = json_array_get(res, i);
            char gwhere[80];
            snprintf(gwhere, sizeof gwhere, "%s.resources[%zu]", where, i);
            if (!json_is_object(g)) {
                snprintf(err, errlen, "%s: must be an object", gwhere);
                return SKIFF_EINVAL;
            }
            r->n_res = i + 1;
            json_t *gv = json_object_get(g, "group");
            if (gv && !json_is_null(gv) && !json_is_string(gv)) {
                snprintf(err, errlen, "%s.group: must be a string", gwhere);
                return SKIFF_EINVAL;
            }
            r->res[i].group = strdup(json_is_string(gv) ? json_string_value(gv) : "");
            if (!r->res[i].group) return SKIFF_ENOMEM;
            if ((rc = parse_strlist(g, "resources", &r->res[i].resources, gwhere, err, errlen)) ||
                (rc = parse_strlist(g, "resourceNames", &r->res[i].names, gwhere, err, errlen)))
                return rc;
        }
    }
    if (r->non_resource_urls.n && (r->n_res || r->namespaces.n)) {
        snprintf(err, errlen,
                 "%s: nonResourceURLs cannot be combined with resources or namespaces", where);
        return SKIFF_EINVAL;
    }
    return 0;
}

static int policy_from_json(json_t *doc, audit_policy_t **out, char *err, size_t errlen)
{
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "audit policy: not an object");
        return SKIFF_EINVAL;
    }
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    const char *av = json_string_value(json_object_get(doc, "apiVersion"));
    if (!kind || strcmp(kind, "Policy") != 0) {
        snprintf(err, errlen, "audit policy: kind must be Policy");
        return SKIFF_EINVAL;
    }
    if (!av || (strcmp(av, "audit.k8s.io/v1") != 0 && strcmp(av, "audit.k8s.io/v1beta1") != 0)) {
        snprintf(err, errlen, "audit policy: apiVersion must be audit.k8s.io/v1");
        return SKIFF_EINVAL;
    }
    audit_policy_t *p = calloc(1, sizeof *p);
    if (!p) return SKIFF_ENOMEM;
    int rc = parse_stages(doc, "policy", &p->omit, err, errlen);
    if (rc == 0) rc = parse_bool_field(doc, "omitManagedFields", &p->omit_managed_fields, "policy",
                                       err, errlen);
    json_t *rules = json_object_get(doc, "rules");
    if (rc == 0 && rules && !json_is_null(rules) && !json_is_array(rules)) {
        snprintf(err, errlen, "audit policy: rules must be a list");
        rc = SKIFF_EINVAL;
    }
    size_t n = json_array_size(rules);
    if (rc == 0 && n) {
        p->rules = calloc(n, sizeof *p->rules);
        if (!p->rules) rc = SKIFF_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        p->n_rules = i + 1;
        rc = parse_rule(json_array_get(rules, i), &p->rules[i], i, err, errlen);
    }
    if (rc != 0) {
        if (rc == SKIFF_ENOMEM) snprintf(err, errlen, "audit policy: out of memory");
        audit_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int audit_policy_parse(const char *text, size_t len, audit_policy_t **out, char *err,
                       size_t errlen)
{
    if (!text || !out) return SKIFF_EINVAL;
    if (errlen) err[0] = '\0';
    char msg[256] = "";
    json_t *doc = yaml_json_load(text, len, YAML_JSON_TYPED_SCALARS, msg, sizeof msg);
    if (!doc) {
        snprintf(err, errlen, "audit policy: %s", msg);
        return SKIFF_EINVAL;
    }
    int rc = policy_from_json(doc, out, err, errlen);
    json_decref(doc);
    return rc;
}

int audit_policy_load(const char *path, audit_policy_t **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "audit policy %s: %s", path, strerror(errno));
        return SKIFF_EIO;
    }
    strbuf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) strbuf_addn(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad || b.failed) {
        snprintf(err, errlen, "audit policy %s: %s", path, bad ? "read error" : "out of memory");
        strbuf_free(&b);
        return bad ? SKIFF_EIO : SKIFF_ENOMEM;
    }
    char prefix[256];
    int rc = audit_policy_parse(b.p ? b.p : "", b.len, out, prefix, sizeof prefix);
    if (rc != 0) snprintf(err, errlen, "%s: %s", path, prefix);
    strbuf_free(&b);
    return rc;
}

int audit_policy_default_new(audit_policy_t **out)
{
    static const char text[] = "{\"apiVersion\":\"audit.k8s.io/v1\",\"kind\":\"Policy\","
                               "\"omitStages\":[\"RequestReceived\"],"
                               "\"rules\":[{\"level\":\"Metadata\"}]}";
    char err[64];
    return audit_policy_parse(text, sizeof text - 1, out, err, sizeof err);
}

/* "*", exact, or a trailing-"*" prefix, as Kubernetes matches nonResourceURLs. */
static int path_matches(const char *path, const char *spec)
{
    if (strcmp(spec, "*") == 0 || strcmp(spec, path) == 0) return 1;
    size_t n = strlen(spec);
    return n > 0 && spec[n - 1] == '*' && strncmp(path, spec, n - 1) == 0;
}

static int resource_matches(const audit_rule_t *r, const audit_attrs_t *at)
{
    if (!at->resource_request) return 0;
    if (r->namespaces.n && !strlist_has(&r->namespaces, at->namespace_)) return 0;
    if (r->n_res == 0) return 1;
    const char *group = at->api_group ? at->api_group : "";
    const char *resource = at->resource ? at->resource : "";
    const char *sub = at->subresource ? at->subresource : "";
    const char *name = at->name ? at->name : "";
    size_t rlen = strlen(resource);
    for (size_t i = 0; i < r->n_res; i++) {
        const group_resources_t *g = &r->res[i];
        if (strcmp(g->group, group) != 0) continue;
        if (g->resources.n == 0) return 1;
        if (g->names.n && !strlist_has(&g->names, name)) continue;
        for (size_t j = 0; j < g->resources.n; j++) {
            const char *spec = g->resources.v[j];
            if (strcmp(spec, "*") == 0) return 1;
            if (*sub == '\0') {
                if (strcmp(spec, resource) == 0) return 1;
                continue;
            }
            /* Forms: resource/sub, resource/any-sub ("pods/" then "*"), and any-resource/sub. */
            if (strncmp(spec, resource, rlen) == 0 && spec[rlen] == '/' &&
                (strcmp(spec + rlen + 1, sub) == 0 || strcmp(spec + rlen + 1, "*") == 0))
                return 1;
            if (strncmp(spec, "*/", 2) == 0 && strcmp(spec + 2, sub) == 0) return 1;
        }
    }
    return 0;
}

static int rule_matches(const audit_rule_t *r, const audit_attrs_t *at)
{
    if (r->users.n && !strlist_has(&r->users, at->username)) return 0;
    if (r->groups.n) {
        int any = 0;
        for (size_t i = 0; !any && i < at->n_groups; i++) any = strlist_has(&r->groups, at->groups[i]);
        if (!any) return 0;
    }
    if (r->verbs.n && !strlist_has(&r->verbs, at->verb)) return 0;
    if (r->namespaces.n || r->n_res) return resource_matches(r, at);
    if (r->non_resource_urls.n) {
        if (at->resource_request) return 0;
        for (size_t i = 0; i < r->non_resource_urls.n; i++)
            if (path_matches(at->path ? at->path : "", r->non_resource_urls.v[i])) return 1;
        return 0;
    }
    return 1;
}

static const audit_rule_t *policy_match(const audit_policy_t *p, const audit_attrs_t *at)
{
    for (size_t i = 0; p && i < p->n_rules; i++)
        if (rule_matches(&p->rules[i], at)) return &p->rules[i];
    return NULL;
}

audit_level_t audit_policy_evaluate(const audit_policy_t *p, const audit_attrs_t *attrs,
                                    unsigned *omit_stages)
{
    const audit_rule_t *r = policy_match(p, attrs);
    if (omit_stages) *omit_stages = (p ? p->omit : 0) | (r ? r->omit : 0);
    return r ? r->level : AUDIT_LEVEL_NONE;
}

int audit_is_sensitive(const audit_attrs_t *at)
{
    if (!at || !at->resource_request || !at->resource) return 0;
    const char *group = at->api_group ? at->api_group : "";
    const char *sub = at->subresource ? at->subresource : "";
    if (*group == '\0' && strcmp(at->resource, "secrets") == 0) return 1;
    /* TokenRequest answers carry a bearer token. */
    if (*group == '\0' && strcmp(at->resource, "serviceaccounts") == 0 && strcmp(sub, "token") == 0)
        return 1;
    /* TokenReview requests carry the token under review. */
    if (strcmp(group, "authentication.k8s.io") == 0 && strcmp(at->resource, "tokenreviews") == 0)
        return 1;
    return 0;
}

/* --- events ---------------------------------------------------------------- */

struct audit_event {
    audit_level_t level;
    unsigned omit;
    int sensitive;
    int omit_managed_fields;
    char id[40];
    char received[40];
    char *request_uri;
    char *verb;
    json_t *user, *impersonated, *source_ips, *user_agent, *object_ref;
    json_t *annotations;
    json_t *request_object;
};

struct audit {
    uv_loop_t *loop;
    audit_policy_t *policy;
    uv_file fd;
    size_t limit;
    /* pending: lines waiting; inflight: the chunk being written, from off. */
    strbuf_t pending, inflight;
    size_t pending_lines, inflight_lines, inflight_off;
    int writing, closing, overflowing;
    uv_fs_t write_req, close_req;
    uint64_t events, written, dropped, dropped_reported;
    void (*done)(void *);
    void *done_data;
};

static void rfc3339_micro(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%06uZ", (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

static json_t *string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (v[i] && json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* A user as the audit Event spells it: {username, groups}. */
static json_t *user_info(const char *name, const char *const *groups, size_t n)
{
    json_t *u = json_object();
    if (!u) return NULL;
    json_object_set_new(u, "username", json_string(name ? name : ""));
    if (n) json_object_set_new(u, "groups", string_array(groups, n));
    return u;
}

static void set_nonempty(json_t *o, const char *key, const char *v)
{
    if (v && *v) json_object_set_new(o, key, json_string(v));
}

static json_t *object_ref(const audit_attrs_t *at)
{
    if (!at->resource_request) return NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    set_nonempty(o, "resource", at->resource);
    set_nonempty(o, "namespace", at->namespace_);
    set_nonempty(o, "name", at->name);
    set_nonempty(o, "apiGroup", at->api_group);
    set_nonempty(o, "apiVersion", at->api_version);
    set_nonempty(o, "subresource", at->subresource);
    return o;
}

static void event_free(audit_event_t *ev)
{
    if (!ev) return;
    free(ev->request_uri);
    free(ev->verb);
    json_decref(ev->user);
    json_decref(ev->impersonated);
    json_decref(ev->source_ips);
    json_decref(ev->user_agent);
    json_decref(ev->object_ref);
    json_decref(ev->annotations);
    json_decref(ev->request_object);
    free(ev);
}

/* Object copy without metadata.managedFields (omitManagedFields). */
static json_t *strip_managed_fields(json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta) || !json_object_get(meta, "managedFields")) return json_incref(obj);
    json_t *c = json_copy(obj);
    json_t *m2 = c ? json_copy(meta) : NULL;
    if (!m2) {
        json_decref(c);
        return NULL;
    }
    json_object_del(m2, "managedFields");
    json_object_set_new(c, "metadata", m2);
    return c;
}

/* --- writer ---------------------------------------------------------------- */

static void writer_kick(audit_t *a);
static void writer_finish_close(audit_t *a);

static void report_drops(audit_t *a)
{
    if (a->dropped == a->dropped_reported) return;
    log_warn("audit", "dropped %llu audit events (log writer too slow or failing; %llu dropped in all)",
             (unsigned long long)(a->dropped - a->dropped_reported),
             (unsigned long long)a->dropped);
    a->dropped_reported = a->dropped;
}

static size_t count_lines(const char *p, size_t n)
{
    size_t c = 0;
    for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++) c++;
    return c;
}

static void start_write(audit_t *a);

static void on_write(uv_fs_t *req)
{
    audit_t *a = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (r < 0) {
        size_t lost = count_lines(a->inflight.p + a->inflight_off,
                                  a->inflight.len - a->inflight_off);
        log_error("audit", "writing the audit log failed: %s", uv_strerror((int)r));
        a->dropped += lost;
        a->written += a->inflight_lines - lost;
    } else {
        a->inflight_off += (size_t)r;
        if (a->inflight_off < a->inflight.len) {
            start_write(a);
            return;
        }
        a->written += a->inflight_lines;
    }
    a->inflight.len = a->inflight_off = a->inflight_lines = 0;
    if (a->inflight.cap > (1u << 20)) strbuf_free(&a->inflight);
    a->writing = 0;
    if (a->overflowing && a->pending.len == 0) {
        a->overflowing = 0;
        report_drops(a);
    }
    if (a->pending.len) writer_kick(a);
    else if (a->closing) writer_finish_close(a);
}

static void start_write(audit_t *a)
{
    uv_buf_t buf = uv_buf_init(a->inflight.p + a->inflight_off,
                               (unsigned)(a->inflight.len - a->inflight_off));
    a->write_req.data = a;
    int rc = uv_fs_write(a->loop, &a->write_req, a->fd, &buf, 1, -1, on_write);
    if (rc < 0) {
        /* Not queued: count what it held as lost and carry on later. */
        log_error("audit", "writing the audit log failed: %s", uv_strerror(rc));
        a->dropped += count_lines(buf.base, buf.len);
        a->written += a->inflight_lines - count_lines(buf.base, buf.len);
        a->inflight.len = a->inflight_off = a->inflight_lines = 0;
        a->writing = 0;
    }
}

static void writer_kick(audit_t *a)
{
    if (a->writing || a->pending.len == 0) return;
    strbuf_t t = a->inflight;
    a->inflight = a->pending;
    a->pending = t;
    a->pending.len = 0;
    a->inflight_lines = a->pending_lines;
    a->pending_lines = 0;
    a->inflight_off = 0;
    a->writing = 1;
    start_write(a);
    if (!a->writing && a->closing && a->pending.len == 0) writer_finish_close(a);
}

static void writer_push(audit_t *a, const char *line, size_t n)
{
    size_t queued = a->pending.len + (a->inflight.len - a->inflight_off);
    if (a->closing || queued + n + 1 > a->limit) {
        a->dropped++;
        if (!a->overflowing && !a->closing) {
            a->overflowing = 1;
            log_warn("audit", "audit log buffer full (%zu bytes waiting): dropping events", queued);
            a->dropped_reported = a->dropped - 1;
        }
        return;
    }
    size_t before = a->pending.len;
    strbuf_addn(&a->pending, line, n);
    strbuf_addn(&a->pending, "\n", 1);
    if (a->pending.failed) {
        a->pending.failed = 0;
        a->pending.len = before;
        if (a->pending.p) a->pending.p[before] = '\0';
        a->dropped++;
        return;
    }
    a->pending_lines++;
    a->events++;
    writer_kick(a);
}

static void on_closed(uv_fs_t *req)
{
    audit_t *a = req->data;
    uv_fs_req_cleanup(req);
    void (*done)(void *) = a->done;
    void *data = a->done_data;
    strbuf_free(&a->pending);
    strbuf_free(&a->inflight);
    audit_policy_free(a->policy);
    free(a);
    if (done) done(data);
}

static void writer_finish_close(audit_t *a)
{
    report_drops(a);
    a->close_req.data = a;
    if (uv_fs_close(a->loop, &a->close_req, a->fd, on_closed) < 0) {
        /* Could not even queue the close: finish on the next write-less turn. */
        close(a->fd);
        a->close_req.result = 0;
        on_closed(&a->close_req);
    }
}

/* --- log life cycle ---------------------------------------------------------- */

static int open_log(const char *path, uv_file *fd, char *err, size_t errlen)
{
    if (strcmp(path, "-") == 0) {
        /* A copy of stdout, so closing the log never closes fd 1. */
        int d = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (d < 0) {
            snprintf(err, errlen, "audit log: stdout: %s", strerror(errno));
            return SKIFF_EIO;
        }
        *fd = d;
        return 0;
    }
    struct stat st;
    int fifo = stat(path, &st) == 0 && S_ISFIFO(st.st_mode);
    /* A FIFO without a reader would block the open: fail instead. */
    int d = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (fifo ? O_NONBLOCK : 0), 0600);
    if (d < 0) {
        snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
        return SKIFF_EIO;
    }
    if (fifo) {
        /* Writes happen on the thread pool, where blocking is what we want. */
        int fl = fcntl(d, F_GETFL);
        if (fl >= 0) fcntl(d, F_SETFL, fl & ~O_NONBLOCK);
    }
    if (fstat(d, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) != 0600 &&
        fchmod(d, 0600) != 0)
        log_warn("audit", "audit log %s: cannot make it mode 0600: %s", path, strerror(errno));
    *fd = d;
    return 0;
}

int audit_open_with_policy(uv_loop_t *loop, const char *path, audit_policy_t *policy,
                           audit_t **out, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    if (!loop || !path || !out || !policy) {
        audit_policy_free(policy);
        snprintf(err, errlen, "audit log: missing argument");
        return SKIFF_EINVAL;
    }
    audit_t *a = calloc(1, sizeof *a);
    if (!a) {
        audit_policy_free(policy);
        snprintf(err, errlen, "audit log: out of memory");
        return SKIFF_ENOMEM;
    }
    int rc = open_log(path, &a->fd, err, errlen);
    if (rc != 0) {
        audit_policy_free(policy);
        free(a);
        return rc;
    }
    a->loop = loop;
    a->policy = policy;
    a->limit = AUDIT_DEFAULT_BUFFER;
    *out = a;
    return 0;
}

int audit_open(uv_loop_t *loop, const char *path, const char *policy_path, audit_t **out,
               char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    audit_policy_t *p = NULL;
    int rc = policy_path ? audit_policy_load(policy_path, &p, err, errlen)
                         : audit_policy_default_new(&p);
    if (rc != 0) return rc;
    return audit_open_with_policy(loop, path, p, out, err, errlen);
}

void audit_set_buffer_limit(audit_t *a, size_t bytes)
{
    if (a && bytes) a->limit = bytes;
}

audit_level_t audit_level_for(const audit_t *a, const audit_attrs_t *attrs)
{
    return a ? audit_policy_evaluate(a->policy, attrs, NULL) : AUDIT_LEVEL_NONE;
}

void audit_get_stats(const audit_t *a, audit_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!a) return;
    out->events = a->events;
    out->written = a->written;
    out->dropped = a->dropped;
    out->buffered = a->pending.len + (a->inflight.len - a->inflight_off);
}

void audit_close(audit_t *a, void (*done)(void *data), void *data)
{
    if (!a) return;
    a->closing = 1;
    a->done = done;
    a->done_data = data;
    if (a->writing) return; /* on_write finishes the close once drained */
    if (a->pending.len) writer_kick(a);
    else writer_finish_close(a);
}

/* --- event stages ------------------------------------------------------------ */

/* Serialises one stage of ev and queues it. response_status and
 * response_object are borrowed. */
static void emit(audit_t *a, audit_event_t *ev, unsigned stage, json_t *response_status,
                 json_t *response_object)
{
    if (ev->omit & stage) return;
    char now[40];
    rfc3339_micro(now, sizeof now);
    json_t *o = json_object();
    if (!o) {
        a->dropped++;
        return;
    }
    json_object_set_new(o, "kind", json_string("Event"));
    json_object_set_new(o, "apiVersion", json_string("audit.k8s.io/v1"));
    json_object_set_new(o, "level", json_string(audit_level_name(ev->level)));
    json_object_set_new(o, "auditID", json_string(ev->id));
    json_object_set_new(o, "stage", json_string(stage_name(stage)));
    json_object_set_new(o, "requestURI", json_string(ev->request_uri));
    json_object_set_new(o, "verb", json_string(ev->verb));
    json_object_set(o, "user", ev->user);
    if (ev->impersonated) json_object_set(o, "impersonatedUser", ev->impersonated);
    if (ev->source_ips) json_object_set(o, "sourceIPs", ev->source_ips);
    if (ev->user_agent) json_object_set(o, "userAgent", ev->user_agent);
    if (ev->object_ref) json_object_set(o, "objectRef", ev->object_ref);
    if (response_status) json_object_set(o, "responseStatus", response_status);
    if (ev->request_object && stage != AUDIT_STAGE_REQUEST_RECEIVED)
        json_object_set(o, "requestObject", ev->request_object);
    if (response_object) json_object_set(o, "responseObject", response_object);
    json_object_set_new(o, "requestReceivedTimestamp", json_string(ev->received));
    json_object_set_new(o, "stageTimestamp", json_string(now));
    if (json_object_size(ev->annotations)) json_object_set(o, "annotations", ev->annotations);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line) {
        a->dropped++;
        return;
    }
    writer_push(a, line, strlen(line));
    free(line);
}

audit_event_t *audit_event_begin(audit_t *a, const audit_request_info_t *info)
{
    if (!a || !info || !info->attrs || a->closing) return NULL;
    const audit_attrs_t *at = info->attrs;
    unsigned omit = 0;
    const audit_rule_t *r = policy_match(a->policy, at);
    omit = a->policy->omit | (r ? r->omit : 0);
    if (!r || r->level == AUDIT_LEVEL_NONE) return NULL;
    audit_event_t *ev = calloc(1, sizeof *ev);
    if (!ev) return NULL;
    ev->level = r->level;
    ev->omit = omit;
    ev->sensitive = audit_is_sensitive(at);
    ev->omit_managed_fields =
        r->omit_managed_fields >= 0 ? r->omit_managed_fields : a->policy->omit_managed_fields;
    api_new_uid(ev->id);
    rfc3339_micro(ev->received, sizeof ev->received);
    ev->request_uri = strdup(info->request_uri ? info->request_uri : at->path ? at->path : "");
    ev->verb = strdup(at->verb ? at->verb : "");
    ev->user = user_info(at->username, at->groups, at->n_groups);
    ev->annotations = json_object();
    if (!ev->request_uri || !ev->verb || !ev->user || !ev->annotations) goto fail;
    if (info->impersonated_username &&
        !(ev->impersonated = user_info(info->impersonated_username, info->impersonated_groups,
                                       info->n_impersonated_groups)))
        goto fail;
    if (info->n_source_ips &&
        !(ev->source_ips = string_array(info->source_ips, info->n_source_ips)))
        goto fail;
    if (info->user_agent && *info->user_agent && !(ev->user_agent = json_string(info->user_agent)))
        goto fail;
    if (at->resource_request && !(ev->object_ref = object_ref(at))) goto fail;
    if (ev->sensitive && ev->level >= AUDIT_LEVEL_REQUEST)
        json_object_set_new(ev->annotations, AUDIT_PAYLOAD_ANNOTATION,
                            json_string("request and response objects of secrets and tokens are "
                                        "never logged"));
    emit(a, ev, AUDIT_STAGE_REQUEST_RECEIVED, NULL, NULL);
    return ev;
fail:
    event_free(ev);
    a->dropped++;
    return NULL;
}

const char *audit_event_id(const audit_event_t *ev) { return ev ? ev->id : NULL; }

audit_level_t audit_event_level(const audit_event_t *ev)
{
    return ev ? ev->level : AUDIT_LEVEL_NONE;
}

void audit_event_annotate(audit_event_t *ev, const char *key, const char *value)
{
    if (!ev || !key) return;
    json_object_set_new(ev->annotations, key, json_string(value ? value : ""));
}

void audit_event_set_request_object(audit_event_t *ev, const json_t *obj)
{
    if (!ev || !obj || ev->sensitive || ev->level < AUDIT_LEVEL_REQUEST) return;
    json_t *c = skiff_json_copy(obj);
    if (c && ev->omit_managed_fields) {
        json_t *s = strip_managed_fields(c);
        json_decref(c);
        c = s;
    }
    json_decref(ev->request_object);
    ev->request_object = c;
}

static json_t *status_of(int code, json_t *body)
{
    json_t *s = json_object();
    if (!s) return NULL;
    json_object_set_new(s, "metadata", json_object());
    const char *kind = json_string_value(json_object_get(body, "kind"));
    if (kind && strcmp(kind, "Status") == 0) {
        /* Only the bounded fields, as Kubernetes copies them. */
        static const char *const keys[] = {"status", "message", "reason", "details"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_t *v = json_object_get(body, keys[i]);
            if (v) json_object_set(s, keys[i], v);
        }
    }
    json_object_set_new(s, "code", json_integer(code));
    return s;
}

static int looks_like_status(const char *body, size_t len)
{
    return body && len && memmem(body, len, "\"Status\"", 8) != NULL;
}

void audit_event_response_started(audit_t *a, audit_event_t *ev, int code)
{
    if (!a || !ev) return;
    json_t *s = status_of(code, NULL);
    emit(a, ev, AUDIT_STAGE_RESPONSE_STARTED, s, NULL);
    json_decref(s);
}

void audit_event_end(audit_t *a, audit_event_t *ev, int code, const char *response_json,
                     size_t len)
{
    if (!ev) return;
    if (!a) {
        event_free(ev);
        return;
    }
    int want_object = ev->level >= AUDIT_LEVEL_REQUEST_RESPONSE && !ev->sensitive;
    json_t *body = NULL;
    if (response_json && len && (want_object || looks_like_status(response_json, len)))
        body = json_loadb(response_json, len, 0, NULL);
    json_t *resp_obj = NULL;
    if (want_object && body) resp_obj = ev->omit_managed_fields ? strip_managed_fields(body)
                                                                 : json_incref(body);
    json_t *s = status_of(code, body);
    emit(a, ev, AUDIT_STAGE_RESPONSE_COMPLETE, s, resp_obj);
    json_decref(s);
    json_decref(resp_obj);
    json_decref(body);
    event_free(ev);
}

void audit_event_panic(audit_t *a, audit_event_t *ev, const char *message)
{
    if (!ev) return;
    if (a) {
        json_t *s = json_object();
        if (s) {
            json_object_set_new(s, "metadata", json_object());
            json_object_set_new(s, "status", json_string("Failure"));
            json_object_set_new(s, "message", json_string(message ? message : "internal error"));
            json_object_set_new(s, "reason", json_string("InternalError"));
            json_object_set_new(s, "code", json_integer(500));
        }
        emit(a, ev, AUDIT_STAGE_PANIC, s, NULL);
        json_decref(s);
    }
    event_free(ev);
}
