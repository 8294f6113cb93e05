/* core/api/binding.c - the pods/binding subresource: a scheduler assigns a
 * pod to a node by POSTing a v1 Binding, as in Kubernetes. The pod gets
 * spec.nodeName (only if it has none: 409 Conflict otherwise) and the
 * PodScheduled=True condition in one store write. Nothing else here: the
 * choice of node is the scheduler's. */
#include "api/apiserver_int.h"

#include <stdlib.h>
#include <string.h>

#include "api/encode_async.h"
#include "api/object_meta.h"
#include "object/protobuf.h"

#define BINDING_RETRIES 64

typedef struct binding_call {
    api_call_t *c;
    char *node;
    char *uid;          /* metadata.uid precondition, or NULL */
    json_t *annotations; /* copied onto the pod, as Kubernetes does */
    int retries;
    int64_t rev;        /* the revision the write replaces */
} binding_call_t;

static void binding_free(binding_call_t *b)
{
    api_call_free(b->c);
    free(b->node);
    free(b->uid);
    json_decref(b->annotations);
    free(b);
}

static void conflict(api_call_t *c, const char *fmt, const char *a, const char *b)
{
    char msg[1024];
    snprintf(msg, sizeof msg, fmt, a, b);
    /* the resource of the message is pods/binding, as kube-apiserver says */
    json_t *details = json_pack("{s:s,s:s}", "name", c->name, "kind", "pods/binding");
    status_reply(c->resp, 409, "Conflict", details,
                 "Operation cannot be fulfilled on pods/binding \"%s\": %s", c->name, msg);
}

static void read_from_store(binding_call_t *b);

static void on_written(void *data, int status, const skiff_kv_t *kv)
{
    binding_call_t *b = data;
    api_call_t *c = b->c;
    if (status == SKIFF_ECONFLICT && b->retries++ < BINDING_RETRIES) {
        read_from_store(b);
        return;
    }
    if (status == SKIFF_ENOENT) {
        api_not_found(c, c->name);
    } else if (status != 0) {
        status_reply(c->resp, 500, "InternalError", NULL, "writing to the store failed: %s",
                     skiff_strerror(status));
    } else {
        json_t *st = json_pack("{s:s,s:s,s:{},s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                               "metadata", "status", "Success", "code", 201);
        reply_json(c->resp, 201, st);
        json_decref(st);
    }
    binding_free(b);
}

/* The bound pod's bytes are ready: write them over revision b->rev. */
static void on_encoded(void *data, char *body, json_t *ordered)
{
    binding_call_t *b = data;
    api_call_t *c = b->c;
    if (!body) {
        api_encode_failed_reply(c);
        binding_free(b);
        return;
    }
    /* in-process watchers (the scheduler's informer) get this tree */
    int rc = api_write_encoded(c, ordered, body, 0, b->rev, on_written, b);
    free(body);
    if (rc != 0) {
        status_reply(c->resp, 500, "InternalError", NULL, "writing to the store failed: %s",
                     skiff_strerror(rc));
        binding_free(b);
    }
}

/* Applies the binding to pod (read at rev) and writes it. */
static void bind_pod(binding_call_t *b, json_t *pod, int64_t rev)
{
    api_call_t *c = b->c;
    json_t *meta = api_meta(pod);
    const char *uid = api_meta_str(pod, "uid");
    if (b->uid && (!uid || strcmp(uid, b->uid) != 0)) {
        char msg[256];
        snprintf(msg, sizeof msg, "UID in precondition: %s, UID in object meta: %s", b->uid,
                 uid ? uid : "");
        conflict(c, "Precondition failed: %s%s", msg, "");
        goto fail;
    }
    json_t *dt = json_object_get(meta, "deletionTimestamp");
    if (dt && !json_is_null(dt)) {
        conflict(c, "pod %s is being deleted, cannot be assigned to a host%s", c->name, "");
        goto fail;
    }
    json_t *spec = json_object_get(pod, "spec");
    const char *cur = json_string_value(json_object_get(spec, "nodeName"));
    if (cur && *cur) {
        char q[300];
        snprintf(q, sizeof q, "\"%s\"", cur);
        conflict(c, "pod %s is already assigned to node %s", c->name, q);
        goto fail;
    }
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(pod, "spec", spec);
    }
    json_object_set_new(spec, "nodeName", json_string(b->node));
    if (json_object_size(b->annotations)) {
        json_t *ann = json_object_get(meta, "annotations");
        if (!json_is_object(ann)) {
            ann = json_object();
            json_object_set_new(meta, "annotations", ann);
        }
        json_object_update(ann, b->annotations);
    }
    json_t *st = json_object_get(pod, "status");
    if (!json_is_object(st)) {
        st = json_object();
        json_object_set_new(pod, "status", st);
    }
    json_t *conds = json_object_get(st, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(st, "conditions", conds);
    }
    char ts[32];
    api_now_rfc3339(ts, sizeof ts);
    json_t *cond = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(conds, i, v) {
        const char *t = json_string_value(json_object_get(v, "type"));
        if (t && strcmp(t, "PodScheduled") == 0) cond = v;
    }
    if (!cond) {
        cond = json_object();
        json_array_append_new(conds, cond);
    }
    const char *old_status = json_string_value(json_object_get(cond, "status"));
    if (!old_status || strcmp(old_status, "True") != 0)
        json_object_set_new(cond, "lastTransitionTime", json_string(ts));
    json_object_set_new(cond, "type", json_string("PodScheduled"));
    json_object_set_new(cond, "status", json_string("True"));
    json_object_set_new(cond, "lastProbeTime", json_null());
    json_object_del(cond, "reason");
    json_object_del(cond, "message");
    json_object_del(st, "nominatedNodeName");
    json_t *ordered = api_store_form(pod);
    json_decref(pod);
    /* encoded on a worker thread: the loop goes on meanwhile */
    b->rev = rev;
    int rc = api_encode_async(c->srv, ordered, on_encoded, b);
    json_decref(ordered);
    if (rc != 0) {
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
        binding_free(b);
    }
    return;
fail:
    json_decref(pod);
    binding_free(b);
}

static void on_read(void *data, int status, const skiff_kv_t *kv)
{
    binding_call_t *b = data;
    if (status == SKIFF_ENOENT) {
        api_not_found(b->c, b->c->name);
        binding_free(b);
        return;
    }
    json_t *pod = status == 0 ? api_object_from_kv(kv) : NULL;
    if (!pod) {
        status_reply(b->c->resp, 500, "InternalError", NULL, "reading the pod failed: %s",
                     skiff_strerror(status ? status : SKIFF_EINVAL));
        binding_free(b);
        return;
    }
    bind_pod(b, pod, kv->mod_revision);
}

static void read_from_store(binding_call_t *b)
{
    api_call_t *c = b->c;
    int rc = c->srv->store->vt->get(c->srv->store, c->key, 0, on_read, b);
    if (rc != 0) {
        status_reply(c->resp, 500, "InternalError", NULL, "reading the pod failed: %s",
                     skiff_strerror(rc));
        binding_free(b);
    }
}

/* json_copy of parent[name] put in place of it (an empty object when
 * missing or not an object); the new object. */
static json_t *copy_member(json_t *parent, const char *name)
{
    json_t *v = json_object_get(parent, name);
    json_t *copy = json_is_object(v) ? json_copy(v) : json_object();
    if (!copy || json_object_set_new(parent, name, copy) != 0) return NULL;
    return copy;
}

/* 1 when base is the tree the watch cache handed out for o's version: the
 * same object (identity), and, as a guard against an address reused by a
 * caller's own tree, the same resourceVersion and uid. */
static int base_is_current(const json_t *base, cache_obj_t *o)
{
    if (!base || o->handed != base) return 0;
    const char *rv = api_meta_str(base, "resourceVersion");
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)o->rev);
    return rv && strcmp(rv, want) == 0 && api_meta_str(base, "uid");
}

/* A pod to bind_pod made from base, the current version as an in-process
 * caller holds it (shared and read-only): new containers down to what
 * bind_pod changes (spec, status and its conditions, the PodScheduled
 * condition, metadata and its annotations), every other part shared with
 * base. Saves decoding the stored pod again. */
static json_t *shallow_for_binding(json_t *base, int annotations)
{
    json_t *pod = json_copy(base);
    json_t *meta = pod ? copy_member(pod, "metadata") : NULL;
    json_t *st = meta && copy_member(pod, "spec") ? copy_member(pod, "status") : NULL;
    if (!st || (annotations && !copy_member(meta, "annotations"))) {
        json_decref(pod);
        return NULL;
    }
    json_t *conds = json_object_get(st, "conditions");
    if (json_is_array(conds)) {
        json_t *nc = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(conds, i, v) {
            const char *t = json_string_value(json_object_get(v, "type"));
            json_array_append_new(nc, t && strcmp(t, "PodScheduled") == 0 ? json_copy(v)
                                                                          : json_incref(v));
        }
        json_object_set_new(st, "conditions", nc);
    }
    return pod;
}

static json_t *decode(api_call_t *c)
{
    const char *ct = c->req->content_type;
    if (c->req->body_obj) { /* in process */
        if (json_is_object(c->req->body_obj)) return json_incref(c->req->body_obj);
        status_reply(c->resp, 400, "BadRequest", NULL, "the request body is not a JSON object");
        return NULL;
    }
    if (!c->req->body || c->req->body_len == 0) {
        status_reply(c->resp, 400, "BadRequest", NULL, "the request body is empty: send a Binding");
        return NULL;
    }
    if (ct && strncasecmp(ct, K8S_PROTOBUF_MEDIA_TYPE, strlen(K8S_PROTOBUF_MEDIA_TYPE)) == 0) {
        char err[512];
        json_t *j = k8s_protobuf_decode(c->req->body, c->req->body_len, err, sizeof err);
        if (!j)
            status_reply(c->resp, 400, "BadRequest", NULL,
                         "the request body could not be decoded: %s", err);
        return j;
    }
    if (!ct || !*ct) {
        status_reply(c->resp, 415, "UnsupportedMediaType", NULL,
                     "the request body has no Content-Type: send application/json");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(c->req->body, c->req->body_len, 0, &e);
    if (!json_is_object(j)) {
        json_decref(j);
        status_reply(c->resp, 400, "BadRequest", NULL, "the request body is not a JSON object");
        return NULL;
    }
    return j;
}

void api_handle_binding(api_call_t *c)
{
    json_t *obj = decode(c);
    if (!obj) {
        api_call_free(c);
        return;
    }
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *name = api_meta_str(obj, "name");
    const char *ns = api_meta_str(obj, "namespace");
    json_t *target = json_object_get(obj, "target");
    const char *node = json_string_value(json_object_get(target, "name"));
    const char *tkind = json_string_value(json_object_get(target, "kind"));
    if (kind && *kind && strcmp(kind, "Binding") != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the body of a pods/binding request must be a Binding, not %s", kind);
        goto fail;
    }
    if (name && *name && strcmp(name, c->name) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "name in URL does not match name in Binding object");
        goto fail;
    }
    if (ns && *ns && c->ns && strcmp(ns, c->ns) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the namespace of the provided object does not match the namespace sent on "
                     "the request");
        goto fail;
    }
    if (!node || !*node) {
        json_t *details = json_pack("{s:s,s:s,s:[{s:s,s:s,s:s}]}", "name", c->name, "kind",
                                    "Binding", "causes", "reason", "FieldValueRequired",
                                    "message", "Required value", "field", "target.name");
        status_reply(c->resp, 422, "Invalid", details,
                     "Binding \"%s\" is invalid: target.name: Required value", c->name);
        goto fail;
    }
    if (tkind && *tkind && strcmp(tkind, "Node") != 0) {
        status_reply(c->resp, 422, "Invalid", NULL,
                     "Binding \"%s\" is invalid: target.kind: Unsupported value: \"%s\": "
                     "supported values: \"Node\"",
                     c->name, tkind);
        goto fail;
    }
    binding_call_t *b = calloc(1, sizeof *b);
    if (!b) {
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
        goto fail;
    }
    b->c = c;
    b->node = strdup(node);
    const char *uid = api_meta_str(obj, "uid");
    b->uid = uid && *uid ? strdup(uid) : NULL;
    json_t *ann = json_object_get(api_meta(obj), "annotations");
    b->annotations = json_is_object(ann) ? json_incref(ann) : NULL;
    json_decref(obj);
    api_key_for(c, c->ns, c->name);
    if (c->dry_run) {
        json_t *st = json_pack("{s:s,s:s,s:{},s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                               "metadata", "status", "Success", "code", 201);
        reply_json(c->resp, 201, st);
        json_decref(st);
        binding_free(b);
        return;
    }
    /* The watch cache is nearly always current: start from it and fall back
     * to the store when the write finds a newer revision. */
    char key[600];
    snprintf(key, sizeof key, "%s/%s", c->ns ? c->ns : "", c->name);
    cache_obj_t *o = c->cache ? watch_cache_get(c->cache, key) : NULL;
    json_t *pod = NULL;
    if (o && base_is_current(c->req->base_obj, o))
        pod = shallow_for_binding(c->req->base_obj, json_object_size(b->annotations) > 0);
    else if (o)
        pod = cache_obj_decode(o);
    if (pod) bind_pod(b, pod, o->rev);
    else read_from_store(b);
    return;
fail:
    json_decref(obj);
    api_call_free(c);
}
