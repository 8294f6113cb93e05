/* core/api/handle_write.c - create, update, patch, delete and deletecollection,
 * including the status and scale subresources and server-side dry run.
 *
 * Every write follows the same steps: decode and check the body, apply the
 * metadata contract (uid, timestamps, generation, what an update may not
 * change), default, validate, then write to the store with the revision
 * that was read (optimistic concurrency), and answer with the stored object.
 * Patches re-read and retry when another writer got there first. */
#include "api/apiserver_int.h"
#include "api/crd.h"
#include "api/pod_update.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admission/admission.h"
#include "api/encode_async.h"
#include "api/object_meta.h"
#include "object/patch.h"
#include "util/strbuf.h"

#include <openssl/evp.h>
#include "object/protobuf.h"
#include <skiff/client.h>
#include <skiff/objects.h>

/* Writes that race another writer start again this many times at most
 * (Kubernetes retries such updates until they win). */
#define PATCH_RETRIES 64

/* The bytes a store write carries: canonical key order, no resourceVersion. */
static char *store_dump(json_t *obj)
{
    json_t *ordered = api_store_form(obj);
    char *s = json_dumps(ordered, JSON_COMPACT);
    json_decref(ordered);
    return s;
}

static void store_error_reply(api_call_t *c, int rc);

/* A store write whose bytes are being encoded on a worker thread. */
typedef struct encoded_write {
    api_call_t *c;
    json_t *obj;
    int create;  /* else an update over rev */
    int64_t rev;
    skiff_store_write_cb cb;
} encoded_write_t;

static void on_write_encoded(void *data, char *body, json_t *ordered)
{
    encoded_write_t *w = data;
    api_call_t *c = w->c;
    if (!body) {
        api_encode_failed_reply(c);
        api_call_free(c);
    } else {
        json_decref(c->written);
        c->written = json_incref(w->obj);
        c->written_len = strlen(body);
        int rc = api_write_encoded(c, ordered, body, w->create, w->rev, w->cb, c);
        free(body);
        if (rc != 0) {
            store_error_reply(c, rc);
            api_call_free(c);
        }
    }
    json_decref(w->obj);
    free(w);
}

/* Writes obj under c->key (a create, or an update over rev; cb answers as
 * the store's), its bytes encoded on a worker thread
 * (encode_async.c) while the loop goes on: obj must not change after
 * this. Answers and frees c itself when the write cannot start. */
static void write_encoded(api_call_t *c, json_t *obj, int create, int64_t rev,
                          skiff_store_write_cb cb)
{
    encoded_write_t *w = malloc(sizeof *w);
    json_t *ordered = w ? api_store_form(obj) : NULL;
    if (ordered) {
        *w = (encoded_write_t){c, json_incref(obj), create, rev, cb};
        if (api_encode_async(c->srv, ordered, on_write_encoded, w) == 0) {
            json_decref(ordered);
            return;
        }
        json_decref(w->obj);
    }
    json_decref(ordered);
    free(w);
    status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
    api_call_free(c);
}

static void conflict_reply(api_call_t *c, const char *name)
{
    char rn[256];
    status_resource_name(c->kind, rn, sizeof rn);
    status_reply(c->resp, 409, "Conflict", status_details(c->kind, name),
                 "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
                 "please apply your changes to the latest version and try again",
                 rn, name);
}

static void store_error_reply(api_call_t *c, int rc)
{
    status_reply(c->resp, 500, "InternalError", NULL, "writing to the store failed: %s",
                 skiff_strerror(rc));
}

static int media_is(const char *ct, const char *want)
{
    if (!ct) return 0;
    size_t n = strlen(want);
    if (strncasecmp(ct, want, n) != 0) return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* kubectl's typed clients (create configmap/deployment/...) send
 * application/vnd.kubernetes.protobuf; decode it to the JSON object the rest
 * of this file handles. Sends 400 and returns NULL on failure. */
static json_t *decode_protobuf_body(api_call_t *c)
{
    char err[512];
    json_t *j = k8s_protobuf_decode(c->req->body, c->req->body_len, err, sizeof err);
    if (!j)
        status_reply(c->resp, 400, "BadRequest", NULL, "the request body could not be decoded: %s",
                     err);
    return j;
}

/* Decode a JSON body; sends 400/415 and returns NULL on failure. */
static json_t *decode_body(api_call_t *c, int patch)
{
    const char *ct = c->req->content_type;
    if (!patch && c->req->body_obj) {
        /* in process: the object itself (the request's, ours to change) */
        if (json_is_object(c->req->body_obj)) return json_incref(c->req->body_obj);
        status_reply(c->resp, 400, "BadRequest", NULL, "the request body must be a JSON object");
        return NULL;
    }
    /* A POST body must say what it is: this keeps a web page from sending
     * "simple" cross-site requests. A PUT is never simple (browsers ask
     * first), and `kubectl replace --raw` sends its JSON without a
     * Content-Type, which Kubernetes reads as JSON: so is it here. */
    if (c->req->body_len > 0 && (!ct || !*ct) && strcmp(c->req->method, "PUT") != 0) {
        status_reply(c->resp, 415, "UnsupportedMediaType", NULL,
                     "the request body has no Content-Type: send application/json");
        return NULL;
    }
    if (!patch && media_is(ct, K8S_PROTOBUF_MEDIA_TYPE)) return decode_protobuf_body(c);
    if (!patch && ct && !media_is(ct, "application/json") && !media_is(ct, "*/*")) {
        status_reply(c->resp, 415, "UnsupportedMediaType", NULL,
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json, " K8S_PROTOBUF_MEDIA_TYPE);
        return NULL;
    }
    if (!c->req->body || c->req->body_len == 0) {
        status_reply(c->resp, 400, "BadRequest", NULL, "the request body is empty: send a JSON %s",
                     patch ? "patch" : "object");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(c->req->body, c->req->body_len, 0, &e);
    if (!j) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the request body is not valid JSON: %s (line %d, column %d)", e.text,
                     e.line, e.column);
        return NULL;
    }
    if (!patch && !json_is_object(j)) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the request body must be a JSON object, not a %s",
                     json_is_array(j) ? "list" : "scalar");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* kind/apiVersion in the body must name this resource's kind (or be absent). */
static int check_type(api_call_t *c, json_t *obj)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *av = json_string_value(json_object_get(obj, "apiVersion"));
    const char *want_av = registry_api_version(c->kind);
    if (kind && *kind && strcmp(kind, c->kind->kind) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the kind in the body (%s) does not match the resource %s, which takes %s",
                     kind, c->kind->resource, c->kind->kind);
        return -1;
    }
    if (av && *av && strcmp(av, want_av) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the API version in the data (%s) does not match the expected API version "
                     "(%s)",
                     av, want_av);
        return -1;
    }
    json_object_set_new(obj, "kind", json_string(c->kind->kind));
    json_object_set_new(obj, "apiVersion", json_string(want_av));
    return 0;
}

static int validation_mode(api_call_t *c)
{
    const char *fv = api_query_get(c, "fieldValidation");
    if (fv && strcmp(fv, "Strict") == 0) return VALIDATE_STRICT;
    if (fv && strcmp(fv, "Ignore") == 0) return VALIDATE_IGNORE_UNKNOWN;
    return VALIDATE_WARN_UNKNOWN;
}

/* Empty metadata maps and lists are omitted, as the Kubernetes API's
 * encoding omits them (a patch removing the last label leaves no `labels`). */
static void drop_empty_metadata(json_t *obj)
{
    static const char *const fields[] = {"labels", "annotations", "finalizers",
                                         "ownerReferences", "managedFields"};
    json_t *meta = json_object_get(obj, "metadata");
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(meta, fields[i]);
        if (v && (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
                  (json_is_array(v) && json_array_size(v) == 0)))
            json_object_del(meta, fields[i]);
    }
}

/* A request body in a version other than the stored one (autoscaling/v1)
 * becomes the stored form before defaults, validation and the store.
 * Replaces *obj; 0, or -1 after sending 500. */
static int to_storage(api_call_t *c, json_t **obj)
{
    json_t *conv = registry_convert_to_storage(c->kind, *obj);
    if (!conv) {
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory converting the object");
        return -1;
    }
    json_decref(*obj);
    *obj = conv;
    return 0;
}

/* Defaults and validation; sends 400 (strict unknown fields) or 422. */
/* Secret.stringData is write-only convenience: its values are merged into
 * data (base64) and it is never stored, as the Kubernetes API does. */
static void merge_string_data(json_t *obj)
{
    json_t *sd = json_object_get(obj, "stringData");
    if (!sd) return;
    json_t *data = json_object_get(obj, "data");
    if (!json_is_object(data)) {
        data = json_object();
        json_object_set_new(obj, "data", data);
    }
    const char *k;
    json_t *v;
    json_object_foreach(sd, k, v)
    {
        const char *str = json_string_value(v);
        if (!str) continue;
        size_t n = strlen(str);
        char *b64 = malloc(4 * ((n + 2) / 3) + 1);
        if (!b64) continue;
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)str, (int)n);
        json_object_set_new(data, k, json_string(b64));
        free(b64);
    }
    json_object_del(obj, "stringData");
}

static int is_csr(const kind_def_t *k)
{
    return strcmp(k->group, "certificates.k8s.io") == 0 &&
           strcmp(k->kind, "CertificateSigningRequest") == 0;
}

/* obj's apiVersion, kind, metadata and status in a new object, shared
 * (not copied). NULL when out of memory. */
static json_t *without_spec(const json_t *obj)
{
    static const char *const keys[] = {"apiVersion", "kind", "metadata", "status"};
    json_t *t = json_object();
    for (size_t i = 0; t && i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (v && json_object_set_nocheck(t, keys[i], v) != 0) {
            json_decref(t);
            t = NULL;
        }
    }
    return t;
}

/* A write to a pod's status subresource: merge_subresource kept the
 * stored spec, which was defaulted and validated when written, so only
 * the rest is looked at again, as Kubernetes' ValidatePodStatusUpdate
 * does (a kubelet patches every pod's status: walking its spec each time
 * was a tenth of that write). Other kinds' validation rules may tie the
 * status to the spec or require one: they get the whole object. */
static json_t *pod_status_part(const api_call_t *c, json_t *obj)
{
    if (!api_call_is_status(c) || !api_kind_is_core(c->kind, "Pod") || !json_is_object(obj))
        return NULL;
    return without_spec(obj);
}

static int default_and_validate(api_call_t *c, json_t *obj)
{
    if (strcmp(c->kind->kind, "Secret") == 0 && !c->kind->group[0]) merge_string_data(obj);
    drop_empty_metadata(obj);
    /* obj is in the storage version (see to_storage). */
    const kind_def_t *sk = registry_storage_kind(c->kind);
    /* the members it holds are obj's own: what validation changes (unknown
     * fields dropped) changes obj; a pod's defaults are all in its spec */
    json_t *status_part = pod_status_part(c, obj);
    if (!status_part) registry_set_defaults(sk, obj);
    int mode = validation_mode(c);
    validation_result_t res;
    memset(&res, 0, sizeof res);
    /* unknown fields are always looked for: Ignore drops them silently */
    int vmode = mode == VALIDATE_STRICT ? VALIDATE_STRICT : VALIDATE_WARN_UNKNOWN;
    size_t found = registry_validate(sk, status_part ? status_part : obj, vmode, &res);
    json_decref(status_part);
    if (found == 0) {
        validation_result_free(&res);
        return 0;
    }
    const char *name = api_meta_str(obj, "name");
    size_t unknown = 0;
    for (size_t i = 0; i < res.count; i++)
        if (strcmp(res.errors[i].reason, "FieldValueUnknown") == 0) unknown++;
    if (unknown == res.count && mode != VALIDATE_STRICT) {
        /* Outside strict mode unknown fields are dropped, as decoding into
         * the API types drops them; Warn says so in Warning headers. */
        strbuf_t warn = {0};
        for (size_t i = 0; i < res.count; i++) {
            api_remove_path(obj, res.errors[i].field);
            if (mode == VALIDATE_WARN_UNKNOWN && warn.len < 8192) {
                strbuf_add(&warn, "Warning: 299 - \"unknown field \\\"");
                /* the field name comes from the client: only printable
                 * ASCII reaches the header, quotes and backslashes escaped */
                for (const char *f = res.errors[i].field; *f; f++) {
                    unsigned char ch = (unsigned char)*f;
                    if (ch == '"' || ch == '\\') strbuf_addn(&warn, "\\", 1);
                    if (ch < 0x20 || ch > 0x7e) ch = '?';
                    strbuf_addn(&warn, (const char *)&ch, 1);
                }
                strbuf_add(&warn, "\\\"\"\r\n");
            }
        }
        if (warn.failed) strbuf_free(&warn);
        else if (warn.p && c->warnings) {
            /* after the warnings mutating admission gave */
            strbuf_t all = {0};
            strbuf_add(&all, c->warnings);
            strbuf_add(&all, warn.p);
            strbuf_free(&warn);
            if (!all.failed) {
                free(c->warnings);
                c->warnings = all.p;
            } else {
                strbuf_free(&all);
            }
        } else if (warn.p) {
            c->warnings = warn.p;
        }
        c->resp->extra_headers = c->warnings;
        validation_result_free(&res);
        return 0;
    }
    if (unknown > 0 && mode == VALIDATE_STRICT) {
        char msg[4096];
        size_t off = (size_t)snprintf(msg, sizeof msg, "%s in version \"%s\" cannot be handled as a %s: strict decoding error: ",
                                      c->kind->kind, c->kind->version, c->kind->kind);
        size_t k = 0;
        for (size_t i = 0; i < res.count && off < sizeof msg; i++) {
            if (strcmp(res.errors[i].reason, "FieldValueUnknown") != 0) continue;
            off += (size_t)snprintf(msg + off, sizeof msg - off, "%sunknown field \"%s\"",
                                    k++ ? ", " : "", res.errors[i].field);
        }
        status_reply(c->resp, 400, "BadRequest", NULL, "%s", msg);
    } else {
        /* report the real errors, without unknown-field noise */
        validation_result_t only = res;
        size_t w = 0;
        for (size_t i = 0; i < res.count; i++)
            if (strcmp(res.errors[i].reason, "FieldValueUnknown") != 0) only.errors[w++] = res.errors[i];
            else {
                free(res.errors[i].field);
                free(res.errors[i].reason);
                free(res.errors[i].message);
            }
        only.count = w;
        res.count = w;
        status_send(c->resp, status_invalid(c->kind, name, &only));
    }
    validation_result_free(&res);
    return -1;
}

static int check_name(api_call_t *c, const char *name)
{
    if (!name || !*name) {
        status_reply(c->resp, 422, "Invalid", status_details(c->kind, ""),
                     "%s \"\" is invalid: metadata.name: Required value: name or generateName "
                     "is required",
                     c->kind->kind);
        return -1;
    }
    return 0;
}

/* The object's namespace must agree with the URL's. */
static int check_object_namespace(api_call_t *c, json_t *obj)
{
    json_t *meta = api_meta(obj);
    const char *ons = json_string_value(json_object_get(meta, "namespace"));
    if (!c->kind->namespaced) {
        json_object_del(meta, "namespace");
        return 0;
    }
    if (!c->ns) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "%s is namespaced: use a path with /namespaces/<namespace>/",
                     c->kind->resource);
        return -1;
    }
    if (ons && *ons && strcmp(ons, c->ns) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the namespace of the provided object (%s) does not match the namespace "
                     "sent on the request (%s)",
                     ons, c->ns);
        return -1;
    }
    json_object_set_new(meta, "namespace", json_string(c->ns));
    return 0;
}

/* ---- create ------------------------------------------------------------ */

static void reply_written(api_call_t *c, const skiff_kv_t *kv)
{
    int code = c->created ? 201 : 200;
    /* a write to status (finalize, approval) answers with the whole object,
     * as the main resource does; only scale answers with another kind */
    int whole = !api_call_is_scale(c);
    if (whole && !c->table && registry_storage_kind(c->kind) == c->kind && c->written &&
        c->written_len == kv->value_len && c->resp->ops->send_object) {
        char rv[32];
        snprintf(rv, sizeof rv, "%lld", (long long)kv->mod_revision);
        if (c->req->shared_answer) {
            /* a caller that only reads the answer gets the tree itself
             * (shared with the watch cache, which stamps the same version) */
            const char *cur = api_meta_str(c->written, "resourceVersion");
            if (!cur || strcmp(cur, rv) != 0)
                json_object_set_new(api_meta(c->written), "resourceVersion", json_string(rv));
            c->resp->ops->send_object(c->resp, code, json_incref(c->written));
            return;
        }
        /* in process: a copy of the tree just stored (the tree itself is
         * shared with the watch cache), not text to parse again */
        json_t *ans = skiff_json_copy(c->written);
        if (ans) {
            json_object_set_new(api_meta(ans), "resourceVersion", json_string(rv));
            c->resp->ops->send_object(c->resp, code, ans);
            return;
        }
    }
    if (whole && !c->table && registry_storage_kind(c->kind) == c->kind) {
        /* the common case: answer with the stored bytes, no re-encoding */
        size_t n;
        char *body = api_splice_rv(kv->value, kv->value_len, kv->mod_revision, &n);
        if (body) {
            c->resp->ops->send(c->resp, code, "application/json", body, n);
            free(body);
            return;
        }
    }
    json_t *obj = api_object_from_kv(kv);
    if (!obj) {
        status_reply(c->resp, 500, "InternalError", NULL, "stored object is not valid JSON");
        return;
    }
    if (api_call_is_scale(c)) {
        json_t *scale = api_scale_view_of(c->kind, obj);
        json_decref(obj);
        obj = scale;
    }
    api_reply_object(c, code, obj);
    json_decref(obj);
}

static void already_exists_reply(api_call_t *c);

static void on_created(void *data, int status, const skiff_kv_t *kv)
{
    api_call_t *c = data;
    if (status == 0) {
        reply_written(c, kv);
    } else if (status == SKIFF_EEXIST) {
        already_exists_reply(c);
    } else {
        store_error_reply(c, status);
    }
    api_call_free(c);
}

static void already_exists_reply(api_call_t *c)
{
    char rn[256];
    const char *name = api_meta_str(c->obj, "name");
    status_resource_name(c->kind, rn, sizeof rn);
    status_reply(c->resp, 409, "AlreadyExists", status_details(c->kind, name),
                 "%s \"%s\" already exists", rn, name);
}

static void on_dry_run_create_read(void *data, int status, const skiff_kv_t *kv)
{
    api_call_t *c = data;
    if (status == 0) already_exists_reply(c);
    else api_reply_object(c, 201, c->obj);
    api_call_free(c);
}

static void generate_name(json_t *meta)
{
    const char *gen = json_string_value(json_object_get(meta, "generateName"));
    const char *name = json_string_value(json_object_get(meta, "name"));
    if ((name && *name) || !gen || !*gen) return;
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    char suffix[6];
    unsigned char rnd[5];
    char uid[40];
    api_new_uid(uid);
    for (int i = 0; i < 5; i++) rnd[i] = (unsigned char)uid[i * 3 + (i > 2)];
    for (int i = 0; i < 5; i++) suffix[i] = alphabet[(rnd[i] * 7 + (unsigned)i * 13 + (unsigned)uid[30 + i]) % (sizeof alphabet - 1)];
    suffix[5] = '\0';
    char full[320];
    snprintf(full, sizeof full, "%.58s%s", gen, suffix);
    json_object_set_new(meta, "name", json_string(full));
}

/* A namespace is created with the "kubernetes" finalizer in
 * spec.finalizers, whatever the request says (Kubernetes' namespace
 * strategy): the namespace controller removes it once the namespace is
 * empty, through namespaces/NAME/finalize. */
static void require_kubernetes_finalizer(json_t *ns)
{
    json_t *spec = json_object_get(ns, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(ns, "spec", spec);
    }
    json_t *fin = json_object_get(spec, "finalizers");
    if (!json_is_array(fin)) {
        fin = json_array();
        json_object_set_new(spec, "finalizers", fin);
    }
    size_t i;
    json_t *v;
    json_array_foreach(fin, i, v) if (json_string_value(v) && !strcmp(json_string_value(v), "kubernetes")) return;
    json_array_append_new(fin, json_string("kubernetes"));
}

/* The finalizers a terminating namespace waits for in spec.finalizers
 * (metadata.finalizers count as for any object). */
static size_t namespace_spec_finalizers(const json_t *obj)
{
    return json_array_size(json_object_get(json_object_get(obj, "spec"), "finalizers"));
}

/* Jobs get a generated selector, as the Kubernetes API server gives them
 * (the batch Job strategy): unless spec.manualSelector is true, the pod
 * template is labelled with the Job's name and uid (current and legacy
 * keys) and spec.selector becomes {matchLabels: {controller-uid: uid}}.
 * A selector the user wrote is then refused as not auto-generated. 0, or
 * -1 when a 422 was sent. */
static int job_generate_selector(api_call_t *c, json_t *obj)
{
    json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(spec)) return 0; /* the schema walk reports it */
    const char *name = api_meta_str(obj, "name");
    const char *uid = api_meta_str(obj, "uid");
    json_t *sel = json_object_get(spec, "selector");
    int have_sel = json_is_object(sel);
    validation_error_t e = {0};
    if (json_is_true(json_object_get(spec, "manualSelector"))) {
        if (have_sel) return 0;
        e = (validation_error_t){"spec.selector", "FieldValueRequired", "Required value"};
    } else {
        json_t *tmpl = json_object_get(spec, "template");
        if (!json_is_object(tmpl)) return 0;
        json_t *tm = json_object_get(tmpl, "metadata");
        if (!json_is_object(tm)) {
            tm = json_object();
            json_object_set_new(tmpl, "metadata", tm);
        }
        json_t *labels = json_object_get(tm, "labels");
        if (!json_is_object(labels)) {
            labels = json_object();
            json_object_set_new(tm, "labels", labels);
        }
        static const char *const name_keys[] = {"job-name", "batch.kubernetes.io/job-name"};
        static const char *const uid_keys[] = {"controller-uid",
                                               "batch.kubernetes.io/controller-uid"};
        for (int i = 0; i < 2; i++) {
            if (!json_object_get(labels, name_keys[i]))
                json_object_set_new(labels, name_keys[i], json_string(name));
            if (!json_object_get(labels, uid_keys[i]))
                json_object_set_new(labels, uid_keys[i], json_string(uid));
        }
        json_t *want = json_pack("{s:{s:s}}", "matchLabels", "batch.kubernetes.io/controller-uid",
                                 uid);
        if (!have_sel) {
            json_object_set_new(spec, "selector", want);
            return 0;
        }
        int same = json_equal(sel, want);
        json_decref(want);
        if (same) return 0;
        e = (validation_error_t){"spec.selector", "FieldValueInvalid",
                                 "Invalid value: `selector` not auto-generated"};
    }
    status_reply_invalid_field(c->resp, c->kind, name, e.field, e.reason, e.message);
    return -1;
}

void api_handle_create(api_call_t *c)
{
    if (c->sub) {
        status_reply(c->resp, 405, "MethodNotAllowed", NULL, "POST is not allowed on %s/%s",
                     c->kind->resource, c->sub);
        goto done;
    }
    json_t *obj = decode_body(c, 0);
    if (!obj) goto done;
    c->obj = obj;
    if (check_type(c, obj) != 0 || to_storage(c, &c->obj) != 0) goto done;
    if (!registry_verb_allowed(c->kind, "get")) {
        /* a create-only review kind: answered, never stored */
        api_handle_review(c, c->obj);
        goto done;
    }
    obj = c->obj;
    if (check_object_namespace(c, obj) != 0) goto done;
    json_t *meta = api_meta(obj);
    generate_name(meta);
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (check_name(c, name) != 0) goto done;
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    if (rv && *rv) {
        status_reply(c->resp, 422, "Invalid", status_details(c->kind, name),
                     "%s \"%s\" is invalid: metadata.resourceVersion: Invalid value: \"%s\": "
                     "must be empty on create",
                     c->kind->kind, name, rv);
        goto done;
    }
    /* mutating admission (core/admission): NamespaceLifecycle, LimitRanger, ... */
    if (admission_run(c->srv->admission, c, ADMISSION_MUTATE, SKIFF_ADMISSION_CREATE, obj, NULL) != 0)
        goto done;
    char uid[40], ts[32];
    api_new_uid(uid);
    api_now_rfc3339(ts, sizeof ts);
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(ts));
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "deletionTimestamp");
    json_object_del(meta, "deletionGracePeriodSeconds");
    json_object_del(meta, "selfLink");
    if (api_kind_has_generation(c->kind)) json_object_set_new(meta, "generation", json_integer(1));
    else json_object_del(meta, "generation");
    if (api_kind_is_core(c->kind, "Namespace")) {
        json_t *labels = json_object_get(meta, "labels");
        if (!json_is_object(labels)) {
            labels = json_object();
            json_object_set_new(meta, "labels", labels);
        }
        json_object_set_new(labels, "kubernetes.io/metadata.name", json_string(name));
        require_kubernetes_finalizer(obj);
    }
    api_reset_status_for_create(c->kind, obj);
    if (strcmp(c->kind->group, "batch") == 0 && strcmp(c->kind->kind, "Job") == 0 &&
        job_generate_selector(c, obj) != 0)
        goto done;
    if (default_and_validate(c, obj) != 0) goto done;
    if (is_csr(c->kind) && api_csr_admit_create(c, obj) != 0) goto done;
    if (admission_run(c->srv->admission, c, ADMISSION_VALIDATE, SKIFF_ADMISSION_CREATE, obj, NULL) != 0)
        goto done;
    c->created = 1;
    api_key_for(c, c->ns, name);
    if (c->dry_run) {
        /* a dry run answers what the create would: 409 if the name is taken */
        if (c->srv->store->vt->get(c->srv->store, c->key, 0, on_dry_run_create_read, c) == 0)
            return;
        api_reply_object(c, 201, obj);
        goto done;
    }
    write_encoded(c, obj, 1, 0, on_created);
    return;
done:
    api_call_free(c);
}

/* ---- update, patch, status and scale ------------------------------------ */

typedef enum { WRITE_UPDATE, WRITE_PATCH } write_kind_t;

static void read_then_write(api_call_t *c);
static void read_then_delete(api_call_t *c);
static void finish_delete(api_call_t *c);

static void on_updated(void *data, int status, const skiff_kv_t *kv)
{
    api_call_t *c = data;
    if (status == 0) {
        reply_written(c, kv);
    } else if (status == SKIFF_ECONFLICT || status == SKIFF_ENOENT) {
        int is_patch = strcmp(c->req->method, "PATCH") == 0;
        int is_delete = strcmp(c->req->method, "DELETE") == 0;
        if (status == SKIFF_ENOENT) {
            api_not_found(c, c->name);
        } else if ((is_patch || c->unconditional || (is_delete && !c->preconditions)) &&
                   c->retries++ < PATCH_RETRIES) {
            json_decref(c->obj);
            json_decref(c->old);
            c->obj = c->old = NULL;
            /* what the failed attempt wrote is not the answer of the next */
            json_decref(c->written);
            c->written = NULL;
            c->written_len = 0;
            if (is_delete) read_then_delete(c);
            else read_then_write(c);
            return;
        } else {
            conflict_reply(c, c->name);
        }
    } else {
        store_error_reply(c, status);
    }
    api_call_free(c);
}

static void on_deleted(void *data, int status, const skiff_kv_t *kv)
{
    api_call_t *c = data;
    if (status == 0) {
        c->created = 0;
        reply_written(c, kv);
    } else if (status == SKIFF_ENOENT) {
        api_not_found(c, c->name);
    } else if (status == SKIFF_ECONFLICT && !c->preconditions && c->retries++ < PATCH_RETRIES) {
        /* changed between our read and the delete: read again, delete again */
        json_decref(c->obj);
        json_decref(c->old);
        c->obj = c->old = NULL;
        read_then_delete(c);
        return;
    } else if (status == SKIFF_ECONFLICT) {
        conflict_reply(c, c->name);
    } else {
        store_error_reply(c, status);
    }
    api_call_free(c);
}

/* Apply the update rules to c->obj given c->old, then store it. */
static void write_new_state(api_call_t *c)
{
    json_t *obj = c->obj, *old = c->old;
    json_t *meta = api_meta(obj), *ometa = api_meta(old);
    /* what an update may not change */
    static const char *const fixed[] = {"uid", "creationTimestamp", "deletionTimestamp",
                                        "deletionGracePeriodSeconds", "namespace", "name"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        json_t *v = json_object_get(ometa, fixed[i]);
        if (v) json_object_set(meta, fixed[i], v);
        else json_object_del(meta, fixed[i]);
    }
    json_object_del(meta, "resourceVersion");
    json_object_del(meta, "selfLink");
    if (c->kind->has_status && !c->sub) {
        json_t *st = json_object_get(old, "status");
        if (st) json_object_set(obj, "status", st);
        else json_object_del(obj, "status");
    }
    if (api_kind_is_core(c->kind, "Namespace") && !c->sub) {
        /* a namespace's spec.finalizers change only through namespaces/NAME/finalize */
        json_t *ofin = json_object_get(json_object_get(old, "spec"), "finalizers");
        json_t *spec = json_object_get(obj, "spec");
        if (!json_is_object(spec)) {
            spec = json_object();
            json_object_set_new(obj, "spec", spec);
        }
        if (ofin) json_object_set(spec, "finalizers", ofin);
        else json_object_del(spec, "finalizers");
    }
    if (admission_run(c->srv->admission, c, ADMISSION_MUTATE, SKIFF_ADMISSION_UPDATE, obj, old) != 0) {
        api_call_free(c);
        return;
    }
    /* Compare defaulted forms: a re-applied manifest that leaves out
     * defaulted fields is not a spec change. */
    drop_empty_metadata(obj);
    registry_set_defaults(registry_storage_kind(c->kind), obj);
    if (api_kind_has_generation(c->kind)) {
        json_int_t gen = json_integer_value(json_object_get(ometa, "generation"));
        if (gen <= 0) gen = 1;
        /* a custom resource without the status subresource counts status
         * changes too, as Kubernetes does */
        if (api_spec_changed(old, obj) ||
            (c->kind->crd && !c->kind->has_status &&
             !json_equal(json_object_get(old, "status"), json_object_get(obj, "status"))))
            gen++;
        json_object_set_new(meta, "generation", json_integer(gen));
    } else {
        json_object_del(meta, "generation");
    }
    if (default_and_validate(c, obj) != 0 ||
        (is_csr(c->kind) && api_csr_admit_update(c, obj, old) != 0) ||
        crd_admit_update(c, obj, old) != 0 || pod_admit_update(c, obj, old) != 0 ||
        admission_run(c->srv->admission, c, ADMISSION_VALIDATE, SKIFF_ADMISSION_UPDATE, obj, old) != 0) {
        api_call_free(c);
        return;
    }
    /* A write that changes nothing is not written: the object keeps its
     * resourceVersion and watchers see no event, as in Kubernetes. */
    json_t *old_meta_rv = json_object_get(ometa, "resourceVersion");
    json_incref(old_meta_rv);
    json_object_del(ometa, "resourceVersion");
    int unchanged = json_equal(obj, old) &&
                    !(c->srv->rewrite_unchanged &&
                      c->srv->rewrite_unchanged(c->srv->rewrite_unchanged_data, c->key));
    if (old_meta_rv) json_object_set_new(ometa, "resourceVersion", old_meta_rv);
    if (unchanged) {
        if (api_call_is_scale(c)) {
            json_t *scale = api_scale_view_of(c->kind, old);
            reply_json(c->resp, 200, scale);
            json_decref(scale);
        } else {
            api_reply_object(c, 200, old);
        }
        api_call_free(c);
        return;
    }
    /* A terminating object whose last finalizer is removed is deleted; a
     * namespace also waits for its spec.finalizers, and a pod still within
     * its grace period for its node to stop it (the node's delete with
     * grace 0 ends it), as in Kubernetes. */
    json_t *dt = json_object_get(meta, "deletionTimestamp");
    json_t *fin = json_object_get(meta, "finalizers");
    if (dt && !json_is_null(dt) && json_array_size(fin) == 0 &&
        json_integer_value(json_object_get(meta, "deletionGracePeriodSeconds")) == 0 &&
        (!api_kind_is_core(c->kind, "Namespace") || namespace_spec_finalizers(obj) == 0)) {
        finish_delete(c);
        return;
    }
    if (c->dry_run) {
        /* nothing was written: the object keeps its current resourceVersion */
        const char *orv = api_meta_str(old, "resourceVersion");
        if (orv) json_object_set_new(meta, "resourceVersion", json_string(orv));
        api_reply_object(c, 200, obj);
        api_call_free(c);
        return;
    }
    write_encoded(c, obj, 0, c->old_rev, on_updated);
}


/* c->obj holds the request's new state for the addressed (sub)resource;
 * turn it into the whole new object. */
static int merge_subresource(api_call_t *c)
{
    if (!c->sub) return 0;
    if (strcmp(c->sub, "approval") == 0) return api_csr_merge_approval(c);
    if (strcmp(c->sub, "finalize") == 0) {
        /* namespaces/NAME/finalize: only spec.finalizers is taken (absent
         * means none left); the rest stays as stored */
        json_t *whole = skiff_json_copy(c->old);
        json_t *fin = json_object_get(json_object_get(c->obj, "spec"), "finalizers");
        json_t *spec = json_object_get(whole, "spec");
        if (!json_is_object(spec)) {
            spec = json_object();
            json_object_set_new(whole, "spec", spec);
        }
        json_object_set_new(spec, "finalizers", json_is_array(fin) ? skiff_json_copy(fin) : json_array());
        json_decref(c->obj);
        c->obj = whole;
        return 0;
    }
    if (api_call_is_status(c)) {
        json_t *whole = skiff_json_copy(c->old);
        json_t *st = json_object_get(c->obj, "status");
        if (st) json_object_set(whole, "status", st);
        else json_object_del(whole, "status");
        json_decref(c->obj);
        c->obj = whole;
        return 0;
    }
    /* scale: only spec.replicas goes back into the object */
    json_t *r = json_object_get(json_object_get(c->obj, "spec"), "replicas");
    if (r && !json_is_integer(r)) {
        status_reply(c->resp, 422, "Invalid", status_details(c->kind, c->name),
                     "Scale.autoscaling \"%s\" is invalid: spec.replicas: Invalid value: must be "
                     "an integer",
                     c->name);
        return -1;
    }
    json_int_t n = r ? json_integer_value(r) : 0;
    if (n < 0) {
        status_reply(c->resp, 422, "Invalid", status_details(c->kind, c->name),
                     "Scale.autoscaling \"%s\" is invalid: spec.replicas: Invalid value: %lld: "
                     "must be greater than or equal to 0",
                     c->name, (long long)n);
        return -1;
    }
    json_t *whole = skiff_json_copy(c->old);
    if (c->kind->crd) {
        crd_scale_set(c->kind, whole, n); /* at the CRD's specReplicasPath */
        json_decref(c->obj);
        c->obj = whole;
        return 0;
    }
    json_t *spec = json_object_get(whole, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(whole, "spec", spec);
    }
    json_object_set_new(spec, "replicas", json_integer(n));
    json_decref(c->obj);
    c->obj = whole;
    return 0;
}

static int patch_type_of(const char *ct)
{
    if (media_is(ct, "application/json-patch+json")) return SKIFF_PATCH_JSON;
    if (media_is(ct, "application/merge-patch+json")) return SKIFF_PATCH_MERGE;
    if (media_is(ct, "application/strategic-merge-patch+json")) return SKIFF_PATCH_STRATEGIC;
    return 0;
}

static json_t *apply_patch(api_call_t *c, const json_t *target, int *code, char *err, size_t len)
{
    int type = patch_type_of(c->req->content_type);
    json_error_t e;
    json_t *p = json_loadb(c->req->body ? c->req->body : "", c->req->body_len, 0, &e);
    *code = 400;
    if (!p) {
        snprintf(err, len, "the patch is not valid JSON: %s (line %d, column %d)", e.text, e.line,
                 e.column);
        return NULL;
    }
    json_t *out = NULL;
    if (type == SKIFF_PATCH_JSON) {
        if (!json_is_array(p)) {
            snprintf(err, len, "a JSON patch must be a list of operations");
        } else {
            out = patch_json_apply(target, p, err, len);
            if (!out) *code = patch_last_error_is_invalid_patch() ? 400 : 422;
        }
    } else if (!json_is_object(p)) {
        snprintf(err, len, "a %s patch must be a JSON object",
                 type == SKIFF_PATCH_MERGE ? "merge" : "strategic merge");
    } else if (type == SKIFF_PATCH_MERGE) {
        out = patch_merge_apply(target, p, err, len);
    } else {
        const schema_type_t *st = api_call_is_scale(c)
                                      ? schema_lookup("io.k8s.api.autoscaling.v1.Scale")
                                      : c->kind->schema;
        out = patch_strategic_apply(target, p, st, err, len);
        if (!out) *code = patch_last_error_is_invalid_patch() ? 400 : 422;
    }
    json_decref(p);
    return out;
}

/* The object as read before a write: kept in c->old with its revision.
 * 0, or -1 after answering (404, store failure). */
static int take_current(api_call_t *c, int status, const skiff_kv_t *kv)
{
    if (status == SKIFF_ENOENT) {
        api_not_found(c, c->name);
        return -1;
    }
    if (status != 0) {
        store_error_reply(c, status);
        return -1;
    }
    c->old = api_object_from_kv(kv);
    c->old_rev = kv->mod_revision;
    if (!c->old) {
        status_reply(c->resp, 500, "InternalError", NULL, "stored object is not valid JSON");
        return -1;
    }
    return 0;
}

/* A uid in the new state must be the stored one: it is how a writer makes
 * sure it writes to the object it read (a kubelet puts the pod's uid in
 * its status patches, so that a pod recreated under the same name is not
 * given the old one's status). Another one is refused with 422, as
 * Kubernetes' update validation does; no uid keeps the stored one. 1
 * after answering. */
static int refuse_uid_change(api_call_t *c)
{
    const char *nu = api_meta_str(c->obj, "uid"), *ou = api_meta_str(c->old, "uid");
    if (!nu || !*nu || !ou || strcmp(nu, ou) == 0) return 0;
    char msg[512];
    snprintf(msg, sizeof msg, "Invalid value: \"%s\": field is immutable", nu);
    status_reply_invalid_field(c->resp, c->kind, c->name, "metadata.uid", "FieldValueInvalid",
                               msg);
    return 1;
}

/* A merge patch of the status subresource in the storage version: of what
 * it makes only the status is kept (merge_subresource), and a merge patch
 * treats each member apart (RFC 7386), so it is applied to the stored
 * object without its spec, the bulk of it (a kubelet patches every pod's
 * status: the spec was copied for nothing). A JSON patch may address the
 * spec (an error either way), a strategic one carries directives about
 * it: both get the whole object. */
static int status_merge(const api_call_t *c)
{
    return api_call_is_status(c) && registry_storage_kind(c->kind) == c->kind &&
           patch_type_of(c->req->content_type) == SKIFF_PATCH_MERGE;
}

static void on_read_for_write(void *data, int status, const skiff_kv_t *kv)
{
    api_call_t *c = data;
    int is_patch = strcmp(c->req->method, "PATCH") == 0;
    if (take_current(c, status, kv) != 0) goto fail;
    if (is_patch) {
        int code;
        char err[1024];
        int scale = api_call_is_scale(c);
        /* The patch is written against the version of the request. */
        json_t *target = scale             ? api_scale_view_of(c->kind, c->old)
                         : status_merge(c) ? without_spec(c->old)
                                           : registry_convert_from_storage(c->kind, c->old);
        if (!target) {
            status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
            goto fail;
        }
        json_t *patched = apply_patch(c, target, &code, err, sizeof err);
        json_decref(target);
        if (!patched) {
            status_reply(c->resp, code, code == 422 ? "Invalid" : "BadRequest",
                         status_details(c->kind, c->name), "%s", err);
            goto fail;
        }
        if (!json_is_object(patched)) {
            json_decref(patched);
            status_reply(c->resp, 422, "Invalid", status_details(c->kind, c->name),
                         "the patch turned the object into something that is not an object");
            goto fail;
        }
        c->obj = patched;
        /* A patch may carry a resourceVersion precondition. */
        const char *prv = api_meta_str(c->obj, "resourceVersion");
        const char *orv = api_meta_str(c->old, "resourceVersion");
        if (prv && orv && strcmp(prv, orv) != 0) {
            conflict_reply(c, c->name);
            goto fail;
        }
        if (!scale && (check_type(c, c->obj) != 0 || to_storage(c, &c->obj) != 0)) goto fail;
    } else {
        if (!c->obj) c->obj = skiff_json_copy(c->body); /* a retry */
        const char *rv = api_meta_str(c->obj, "resourceVersion");
        const char *orv = api_meta_str(c->old, "resourceVersion");
        if (rv && *rv && orv && strcmp(rv, orv) != 0) {
            conflict_reply(c, c->name);
            goto fail;
        }
        /* without a resourceVersion an update applies to whatever is there:
         * a race with another writer is retried, not reported */
        c->unconditional = !rv || !*rv;
    }
    if (!api_call_is_scale(c) && refuse_uid_change(c)) goto fail;
    if (merge_subresource(c) != 0) goto fail;
    write_new_state(c);
    return;
fail:
    api_call_free(c);
}

static void read_then_write(api_call_t *c)
{
    int rc = c->srv->store->vt->get(c->srv->store, c->key, 0, on_read_for_write, c);
    if (rc != 0) {
        store_error_reply(c, rc);
        api_call_free(c);
    }
}

void api_handle_update(api_call_t *c)
{
    json_t *obj = decode_body(c, 0);
    if (!obj) goto fail;
    c->obj = obj;
    if (api_call_is_scale(c)) {
        /* body is an autoscaling/v1 Scale */
    } else if (check_type(c, obj) != 0 || to_storage(c, &c->obj) != 0) {
        goto fail;
    }
    obj = c->obj;
    json_t *meta = api_meta(obj);
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (name && *name && strcmp(name, c->name) != 0) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the name of the object (%s) does not match the name on the URL (%s)", name,
                     c->name);
        goto fail;
    }
    json_object_set_new(meta, "name", json_string(c->name));
    if (!c->sub && check_object_namespace(c, obj) != 0) goto fail;
    /* kept to start again when an unconditional update races another write */
    c->body = skiff_json_copy(obj);
    api_key_for(c, c->ns, c->name);
    read_then_write(c);
    return;
fail:
    api_call_free(c);
}

void api_handle_patch(api_call_t *c)
{
    const char *ct = c->req->content_type;
    if (media_is(ct, "application/apply-patch+yaml") ||
        media_is(ct, "application/apply-patch+cbor")) {
        status_reply(c->resp, 415, "UnsupportedMediaType", NULL,
                     "server-side apply is not supported by this server yet: use client-side "
                     "`kubectl apply` (without --server-side)");
        api_call_free(c);
        return;
    }
    if (c->kind->crd && patch_type_of(ct) == SKIFF_PATCH_STRATEGIC &&
        !api_call_is_scale(c)) {
        /* custom resources have no patch strategies, as in Kubernetes */
        status_reply(c->resp, 415, "UnsupportedMediaType", NULL,
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/apply-patch+yaml");
        api_call_free(c);
        return;
    }
    if (!patch_type_of(ct)) {
        status_reply(c->resp, 415, "UnsupportedMediaType", NULL,
                     "the body of the request was in an unknown format - accepted media types "
                     "include: application/json-patch+json, application/merge-patch+json, "
                     "application/strategic-merge-patch+json");
        api_call_free(c);
        return;
    }
    if (!c->req->body || c->req->body_len == 0) {
        status_reply(c->resp, 400, "BadRequest", NULL, "the patch is empty");
        api_call_free(c);
        return;
    }
    api_key_for(c, c->ns, c->name);
    read_then_write(c);
}

/* ---- delete ----------------------------------------------------------- */

static void finish_delete(api_call_t *c)
{
    if (c->dry_run) {
        api_reply_object(c, 200, c->old);
        api_call_free(c);
        return;
    }
    int rc = c->srv->store->vt->remove(c->srv->store, c->key, c->old_rev, on_deleted, c);
    if (rc != 0) {
        store_error_reply(c, rc);
        api_call_free(c);
    }
}

/* Does any object name `uid` as an owner? */
static int owned_by(cache_obj_t *o, void *data)
{
    const char *uid = data;
    int named = cache_obj_text_has(o, uid);
    /* a snapshot that cannot be unpacked (out of memory) counts as a
     * dependent: a deletion then waits rather than missing one */
    if (named < 0) return 1;
    if (!named) return 0; /* cheap pre-filter */
    json_t *obj = cache_obj_decode(o);
    const json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
    size_t i;
    json_t *r;
    int found = 0;
    json_array_foreach((json_t *)refs, i, r)
    {
        const char *u = json_string_value(json_object_get(r, "uid"));
        if (u && strcmp(u, uid) == 0) found = 1;
    }
    json_decref(obj);
    return found;
}

static int has_dependents(api_server_t *s, const char *uid)
{
    return uid && api_any_object(s, 0, owned_by, (void *)uid);
}

static void add_finalizer(json_t *meta, const char *f)
{
    json_t *fin = json_object_get(meta, "finalizers");
    if (!json_is_array(fin)) {
        fin = json_array();
        json_object_set_new(meta, "finalizers", fin);
    }
    size_t i;
    json_t *v;
    json_array_foreach(fin, i, v) if (json_string_value(v) && !strcmp(json_string_value(v), f)) return;
    json_array_append_new(fin, json_string(f));
}

/* Mark the object as terminating (deletionTimestamp) instead of removing it. */
static int has_finalizer(const json_t *obj, const char *f)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "finalizers"), i, v)
    {
        if (json_string_value(v) && strcmp(json_string_value(v), f) == 0) return 1;
    }
    return 0;
}

static void mark_terminating(api_call_t *c, long long grace, const char *finalizer)
{
    const char *terminating = api_meta_str(c->old, "deletionTimestamp");
    long long current = json_integer_value(
        json_object_get(json_object_get(c->old, "metadata"), "deletionGracePeriodSeconds"));
    /* a second delete may only shorten the grace period (a node's delete
     * with grace 0 ends a pod's) */
    int shorten = terminating && grace >= 0 && grace < current;
    if (terminating && !shorten && (!finalizer || has_finalizer(c->old, finalizer))) {
        /* already terminating: deleting again changes nothing */
        api_reply_object(c, 200, c->old);
        api_call_free(c);
        return;
    }
    c->obj = skiff_json_copy(c->old);
    json_t *meta = api_meta(c->obj);
    char ts[32];
    api_rfc3339(time(NULL) + (grace > 0 ? grace : 0), ts, sizeof ts);
    if (!json_object_get(meta, "deletionTimestamp") || shorten) {
        json_object_set_new(meta, "deletionTimestamp", json_string(ts));
        json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(grace > 0 ? grace : 0));
    }
    if (finalizer) add_finalizer(meta, finalizer);
    json_object_del(meta, "resourceVersion");
    if (api_kind_is_core(c->kind, "Namespace")) {
        json_t *st = json_object_get(c->obj, "status");
        if (!json_is_object(st)) {
            st = json_object();
            json_object_set_new(c->obj, "status", st);
        }
        json_object_set_new(st, "phase", json_string("Terminating"));
    }
    if (c->dry_run) {
        api_reply_object(c, 200, c->obj);
        api_call_free(c);
        return;
    }
    char *body = store_dump(c->obj);
    int rc = body ? c->srv->store->vt->update(c->srv->store, c->key, body, strlen(body),
                                              c->old_rev, on_updated, c)
                  : SKIFF_ENOMEM;
    free(body);
    if (rc != 0) {
        store_error_reply(c, rc);
        api_call_free(c);
    }
}

static void on_read_for_delete(void *data, int status, const skiff_kv_t *kv)
{
    api_call_t *c = data;
    if (take_current(c, status, kv) != 0) goto fail;
    /* DeleteOptions (checked in api_handle_delete), or the query. */
    const json_t *opts = c->opts;
    const char *policy = json_string_value(json_object_get(opts, "propagationPolicy"));
    if (!policy) policy = api_query_get(c, "propagationPolicy");
    /* the deprecated DeleteOptions.orphanDependents */
    const json_t *orphan = json_object_get(opts, "orphanDependents");
    if (!policy && json_is_boolean(orphan)) policy = json_is_true(orphan) ? "Orphan" : "Background";
    const json_t *gp = json_object_get(opts, "gracePeriodSeconds");
    long long grace = -1;
    if (json_is_integer(gp)) grace = json_integer_value(gp);
    else if (api_query_get(c, "gracePeriodSeconds")) grace = atoll(api_query_get(c, "gracePeriodSeconds"));
    const json_t *pre = json_object_get(opts, "preconditions");
    const char *puid = json_string_value(json_object_get(pre, "uid"));
    const char *prv = json_string_value(json_object_get(pre, "resourceVersion"));
    c->preconditions = puid || prv;
    const json_t *dry = json_object_get(opts, "dryRun");
    if (json_is_array(dry) && json_array_size(dry) > 0) c->dry_run = 1;
    char policy_buf[32] = "";
    if (policy) snprintf(policy_buf, sizeof policy_buf, "%s", policy);
    if (policy_buf[0] && strcmp(policy_buf, "Background") && strcmp(policy_buf, "Foreground") &&
        strcmp(policy_buf, "Orphan")) {
        status_reply(c->resp, 422, "Invalid", NULL,
                     "propagationPolicy %s is not one of Background, Foreground, Orphan",
                     policy_buf);
        goto fail;
    }
    const char *uid = api_meta_str(c->old, "uid");
    if ((puid && uid && strcmp(puid, uid) != 0) ||
        (prv && strcmp(prv, api_meta_str(c->old, "resourceVersion")) != 0)) {
        char rn[256];
        status_resource_name(c->kind, rn, sizeof rn);
        status_reply(c->resp, 409, "Conflict", status_details(c->kind, c->name),
                     "Operation cannot be fulfilled on %s \"%s\": the precondition (uid or "
                     "resourceVersion) does not match the object",
                     rn, c->name);
        goto fail;
    }
    const json_t *meta = json_object_get(c->old, "metadata");
    const json_t *fin = json_object_get(meta, "finalizers");
    const char *kind = c->kind->kind;
    /* admission (core/admission): NamespaceLifecycle keeps the system's namespaces */
    if (admission_run(c->srv->admission, c, ADMISSION_MUTATE, SKIFF_ADMISSION_DELETE, NULL, c->old) != 0 ||
        admission_run(c->srv->admission, c, ADMISSION_VALIDATE, SKIFF_ADMISSION_DELETE, NULL, c->old) != 0)
        goto fail;
    if (api_kind_is_core(c->kind, "Namespace") && namespace_spec_finalizers(c->old) > 0) {
        /* Terminating until the namespace controller has emptied it and
         * removed its finalizer (namespaces/NAME/finalize). */
        if (api_meta_str(c->old, "deletionTimestamp")) {
            char rn[256];
            status_resource_name(c->kind, rn, sizeof rn);
            status_reply(c->resp, 409, "Conflict", status_details(c->kind, c->name),
                         "Operation cannot be fulfilled on %s \"%s\": The system is ensuring all "
                         "content is removed from this namespace.  Upon completion, this "
                         "namespace will automatically be purged by the system.",
                         rn, c->name);
            goto fail;
        }
        mark_terminating(c, 0, NULL);
        return;
    }
    /* A pod on a node stops gracefully: its node removes it once stopped
     * (with finalizers or a propagation policy too, as in Kubernetes). */
    long long pod_grace = 0;
    if (strcmp(kind, "Pod") == 0) {
        const json_t *spec = json_object_get(c->old, "spec");
        const char *node = json_string_value(json_object_get(spec, "nodeName"));
        const char *phase = json_string_value(json_object_get(json_object_get(c->old, "status"), "phase"));
        int finished = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
        if (grace < 0) {
            const json_t *t = json_object_get(spec, "terminationGracePeriodSeconds");
            grace = json_is_integer(t) ? json_integer_value(t) : 30;
        }
        if (node && *node && grace > 0 && !finished) pod_grace = grace;
    }
    if (strcmp(policy_buf, "Foreground") == 0 && has_dependents(c->srv, uid)) {
        mark_terminating(c, pod_grace, "foregroundDeletion");
        return;
    }
    if (strcmp(policy_buf, "Orphan") == 0 && has_dependents(c->srv, uid)) {
        mark_terminating(c, pod_grace, "orphan");
        return;
    }
    if (json_array_size(fin) > 0 || pod_grace > 0) {
        mark_terminating(c, pod_grace, NULL);
        return;
    }
    finish_delete(c);
    return;
fail:
    api_call_free(c);
}

/* The DeleteOptions body, if any: 0, or -1 after answering 400. */
static int parse_delete_options(api_call_t *c)
{
    if (!c->req->body || c->req->body_len == 0) return 0;
    json_error_t e;
    c->opts = json_loadb(c->req->body, c->req->body_len, 0, &e);
    if (!c->opts) {
        status_reply(c->resp, 400, "BadRequest", NULL,
                     "the DeleteOptions in the request body are not valid JSON: %s (line %d, "
                     "column %d)",
                     e.text, e.line, e.column);
        return -1;
    }
    static const struct {
        const char *field;
        int type;
    } fields[] = {{"propagationPolicy", JSON_STRING}, {"gracePeriodSeconds", JSON_INTEGER},
                  {"preconditions", JSON_OBJECT},     {"dryRun", JSON_ARRAY},
                  {"orphanDependents", JSON_TRUE}};
    if (!json_is_object(c->opts)) goto bad;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        json_t *v = json_object_get(c->opts, fields[i].field);
        if (!v || json_is_null(v)) continue;
        int t = json_typeof(v);
        if (fields[i].type == JSON_TRUE ? !json_is_boolean(v) : t != fields[i].type) {
            status_reply(c->resp, 400, "BadRequest", NULL,
                         "DeleteOptions.%s has the wrong type: see the Kubernetes API "
                         "reference for DeleteOptions",
                         fields[i].field);
            return -1;
        }
    }
    return 0;
bad:
    status_reply(c->resp, 400, "BadRequest", NULL,
                 "the request body of a delete must be a DeleteOptions object");
    return -1;
}

void api_handle_delete(api_call_t *c)
{
    if (c->sub) {
        status_reply(c->resp, 405, "MethodNotAllowed", NULL, "DELETE is not allowed on %s/%s",
                     c->kind->resource, c->sub);
        api_call_free(c);
        return;
    }
    if (parse_delete_options(c) != 0) {
        api_call_free(c);
        return;
    }
    api_key_for(c, c->ns, c->name);
    read_then_delete(c);
}

static void read_then_delete(api_call_t *c)
{
    int rc = c->srv->store->vt->get(c->srv->store, c->key, 0, on_read_for_delete, c);
    if (rc != 0) {
        store_error_reply(c, rc);
        api_call_free(c);
    }
}

int api_delete_cached(api_server_t *s, const kind_def_t *k, cache_obj_t *o,
                      skiff_store_write_cb cb, void *data)
{
    char key[1024];
    if (api_object_key(key, sizeof key, k->group, k->resource, k->namespaced ? o->ns : NULL,
                       o->name) != 0)
        return SKIFF_EINVAL;
    json_t *obj = cache_obj_decode(o);
    if (!obj) return SKIFF_ENOMEM;
    json_t *meta = api_meta(obj);
    int rc;
    if (json_array_size(json_object_get(meta, "finalizers")) == 0) {
        json_decref(obj);
        rc = s->store->vt->remove(s->store, key, o->rev, cb, data);
        return rc == 0 ? API_DELETE_REMOVING : rc;
    }
    if (json_object_get(meta, "deletionTimestamp")) {
        json_decref(obj);
        return API_DELETE_WAITING;
    }
    char ts[32];
    api_now_rfc3339(ts, sizeof ts);
    json_object_set_new(meta, "deletionTimestamp", json_string(ts));
    json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(0));
    char *body = store_dump(obj);
    json_decref(obj);
    if (!body) return SKIFF_ENOMEM;
    rc = s->store->vt->update(s->store, key, body, strlen(body), o->rev, cb, data);
    free(body);
    return rc == 0 ? API_DELETE_MARKING : rc;
}

/* deletecollection: every matching object is deleted as a delete without
 * options deletes it (objects with finalizers are marked and wait); the
 * answer lists what was deleted or marked. */
typedef struct collection_delete {
    api_call_t *call;
    json_t *items;
    int pending;
    int failed;
} collection_delete_t;

static void collection_done(collection_delete_t *d)
{
    api_call_t *c = d->call;
    json_t *list = json_pack("{s:s, s:s, s:{}, s:o}", "kind", c->kind->list_kind, "apiVersion",
                             registry_api_version(c->kind), "metadata", "items", d->items);
    if (d->failed)
        status_reply(c->resp, 500, "InternalError", NULL,
                     "%d objects could not be deleted; try again", d->failed);
    else
        api_reply_object(c, 200, list);
    json_decref(list);
    api_call_free(c);
    free(d);
}

static void on_collection_item_deleted(void *data, int status, const skiff_kv_t *kv)
{
    collection_delete_t *d = data;
    if (status == 0) {
        json_t *o = api_object_from_kv(kv);
        if (o) json_array_append_new(d->items, o);
    } else if (status != SKIFF_ENOENT) {
        d->failed++;
    }
    if (--d->pending == 0) collection_done(d);
}

void api_handle_delete_collection(api_call_t *c)
{
    api_selectors_t sel;
    if (api_selectors_parse(c, &sel) != 0) {
        api_call_free(c);
        return;
    }
    collection_delete_t *d = calloc(1, sizeof *d);
    json_t *items_arr = json_array();
    if (!d || !items_arr) {
        free(d);
        json_decref(items_arr);
        api_selectors_free(&sel);
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
        api_call_free(c);
        return;
    }
    d->call = c;
    d->items = items_arr;
    d->pending = 1;
    cache_obj_t **items;
    size_t n = watch_cache_list(c->cache, c->ns, sel.ls, sel.fs, &items);
    /* every delete is admitted first (NamespaceLifecycle keeps the system's
     * namespaces): one refusal answers for the whole collection and nothing
     * is deleted */
    for (size_t i = 0; i < n; i++) {
        json_t *p = cache_obj_decode(items[i]);
        int refused = p && (admission_run(c->srv->admission, c, ADMISSION_MUTATE,
                                          SKIFF_ADMISSION_DELETE, NULL, p) != 0 ||
                            admission_run(c->srv->admission, c, ADMISSION_VALIDATE,
                                          SKIFF_ADMISSION_DELETE, NULL, p) != 0);
        json_decref(p);
        if (!refused) continue;
        watch_cache_list_free(items, n);
        api_selectors_free(&sel);
        json_decref(d->items);
        free(d);
        api_call_free(c);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = cache_obj_decode(items[i]);
        if (c->dry_run) {
            if (p) json_array_append(d->items, p);
        } else {
            d->pending++;
            int rc = api_delete_cached(c->srv, c->kind, items[i], on_collection_item_deleted, d);
            if (rc == API_DELETE_WAITING && p) json_array_append(d->items, p);
            if (rc != API_DELETE_REMOVING && rc != API_DELETE_MARKING) {
                d->pending--;
                if (rc < 0) d->failed++;
            }
        }
        json_decref(p);
    }
    watch_cache_list_free(items, n);
    api_selectors_free(&sel);
    if (--d->pending == 0) collection_done(d);
}
