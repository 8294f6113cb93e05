/* core/api/apiserver_int.h - what the API server's own files share: the
 * server state and one parsed call. Not for use outside core/api. */
#ifndef SKIFF_APISERVER_INT_H
#define SKIFF_APISERVER_INT_H

#include <string.h>

#include <jansson.h>

#include "api/apiserver.h"
#include "api/pipeline.h"
#include "api/selector.h"
#include "api/status.h"
#include "api/watch_cache.h"
#include "object/registry.h"
#include "util/strmap.h"

#define API_MAX_QUERY 32
#define API_MAX_BODY (3u * 1024u * 1024u)

struct api_server {
    uv_loop_t *loop;
    skiff_store_t *store;
    strmap_t *caches;            /* "<group>/<resource>" -> watch_cache_t* */
    strmap_t *fresh;             /* store key -> api_fresh_t*: trees just written */
    skiff_store_watch_t *watch;  /* the one store watch feeding every cache */
    uv_timer_t bookmark_timer;
    uv_timer_t compact_timer;
    int64_t compact_next;
    int64_t last_rev;            /* latest revision delivered by the store watch */        /* revision to compact to at the next tick */
    int closing_handles;
    int inflight;                /* the server's own store operations in progress */
    int freed;
    int bookmark_interval_ms;
    int (*rewrite_unchanged)(void *data, const char *key);
    void *rewrite_unchanged_data;
    api_pipeline_t pipeline;
    const struct pki *pki;       /* signs approved CSRs (csr.c); NULL without TLS */
    rbac_index_t *rbac;          /* RBAC objects, fed from the store watch */
    int watch_timeout_max_s;
    size_t ring_capacity;
    int ready;
    int closing;
    void (*on_ready)(void *data, int status);
    void *on_ready_data;
    int pending_boot;            /* writes outstanding while creating system namespaces */
    struct api_stream *streams;  /* open watch streams, ended on free */
    void (*free_done)(void *data);
    void *free_done_data;
    struct admission_chain *admission; /* core/admission: run on every write; owned */
    uv_timer_t event_ttl_timer;  /* event_ttl.c: Events expire */
    int64_t event_ttl_ms;
    int event_ttl_removing;      /* removals of expired Events in progress */
};

typedef struct api_query {
    char *key[API_MAX_QUERY];
    char *value[API_MAX_QUERY];
    int n;
} api_query_t;

/* One request, parsed: which resource, which verb, which options. Owned
 * by the handler until the response is finished. */
typedef struct api_call {
    api_server_t *srv;
    const api_request_t *req;
    api_response_t *resp;
    api_query_t q;
    const kind_def_t *kind;
    watch_cache_t *cache;
    char *ns;          /* NULL for cluster-scoped or all-namespaces */
    char *name;        /* NULL for collections */
    char *sub;         /* NULL, "status", "scale" */
    int dry_run;
    int table;         /* answer as meta.k8s.io Table */
    /* write state */
    json_t *obj;       /* object being written */
    json_t *old;       /* state read before the write */
    int64_t old_rev;
    int retries;
    int created;       /* respond 201 */
    char *warnings;    /* Warning header lines for the answer */
    json_t *opts;      /* DeleteOptions of a delete */
    json_t *body;      /* an update's object as sent, to start again after a race */
    int unconditional; /* an update without resourceVersion */
    int preconditions; /* a delete with uid/resourceVersion preconditions */
    /* the tree last encoded for the store and the length of its bytes: an
     * in-process caller is answered with a copy of it, not with text */
    json_t *written;
    size_t written_len;
    char key[1024];
} api_call_t;

const char *api_query_get(const api_call_t *c, const char *key);
void api_call_free(api_call_t *c);
/* A call on the scale subresource, whose object is an autoscaling/v1
 * Scale rather than the resource's own kind. */
static inline int api_call_is_scale(const api_call_t *c)
{
    return c->sub && strcmp(c->sub, "scale") == 0;
}
/* A call on the status subresource. */
static inline int api_call_is_status(const api_call_t *c)
{
    return c->sub && strcmp(c->sub, "status") == 0;
}

/* A tree just written to the store under key (as bytes), kept until the
 * store's event for key reaches the watch cache, which then hands it to
 * in-process watchers instead of decoding the bytes again. Only when the
 * cache c has such watchers; tree (a reference is taken) must not change
 * afterwards. api_fresh_forget after a write that was not made. */
void api_fresh_put(api_server_t *s, watch_cache_t *c, const char *key, json_t *tree,
                   const char *bytes, size_t len);
void api_fresh_forget(api_server_t *s, const char *key);

/* the labelSelector and fieldSelector of a call (handle_read.c) */
typedef struct api_selectors {
    label_selector_t *ls;
    field_selector_t *fs;
} api_selectors_t;
/* 0, or -1 after answering 400 (malformed, unsupported field, bad limit). */
int api_selectors_parse(api_call_t *c, api_selectors_t *s);
void api_selectors_free(api_selectors_t *s);

/* read path (handle_read.c) */
void api_handle_get(api_call_t *c);
void api_handle_list(api_call_t *c);
void api_handle_watch(api_call_t *c);
void api_streams_close_all(api_server_t *s);
/* End the watches of one resource (its CRD was deleted). */
void api_streams_close_resource(api_server_t *s, const char *group, const char *resource);

/* inputs of the node authorizer (node_inputs.c) */
json_t *api_node_inputs(void *srv, const api_path_t *p, rbac_node_inputs_t *in);

/* TokenRequest on serviceaccounts/<name>/token (tokens_api.c) */
void api_handle_token_request(api_call_t *c);
int api_service_account_exists(void *data, const char *ns, const char *name, const char *uid);
/* A bootstrap token "<id>.<secret>" against Secret kube-system/bootstrap-token-<id>:
 * 0 with *out (system:bootstrap:<id>, system:bootstrappers + extra groups),
 * -1 refused (err says why), 1 not shaped like a bootstrap token. */
int api_bootstrap_authenticate(void *data, const char *token, token_identity_t *out, char *err,
                               size_t errlen);

/* CertificateSigningRequests (csr.c): on create, the requester fills the
 * spec, the request is validated, auto-approved and signed when due; on
 * update, what the approval and status subresources may change. 0, or -1
 * after answering 422. */
int api_csr_admit_create(api_call_t *c, json_t *obj);
int api_csr_admit_update(api_call_t *c, json_t *obj, const json_t *old);
/* certificatesigningrequests/approval: the stored object with the
 * request's status.conditions, into c->obj. */
int api_csr_merge_approval(api_call_t *c);

/* pods/binding: a scheduler assigns a pod to a node (binding.c) */
void api_handle_binding(api_call_t *c);

/* pod priority admission and PriorityClass rules (priority.c); 0, or -1
 * after answering 403/422 */
int api_pod_resolve_priority(api_call_t *c, json_t *pod);
int api_priority_class_check(api_call_t *c, json_t *pc, int create);
/* system-node-critical and system-cluster-critical, as a new array */
json_t *api_system_priority_classes_new(void);

/* review kinds, answered and not stored (reviews.c); obj is the decoded body */
void api_handle_review(api_call_t *c, json_t *obj);

/* write path (handle_write.c) */
void api_handle_create(api_call_t *c);
void api_handle_update(api_call_t *c);
void api_handle_patch(api_call_t *c);
void api_handle_delete(api_call_t *c);
void api_handle_delete_collection(api_call_t *c);
/* Delete one cached object as a delete without options would: objects
 * with finalizers get a deletionTimestamp and wait. Returns one of these
 * (cb runs for the first two) or a negative SKIFF_E* code. */
enum { API_DELETE_REMOVING = 0, API_DELETE_MARKING = 2, API_DELETE_WAITING = 1 };
int api_delete_cached(api_server_t *s, const kind_def_t *k, cache_obj_t *o,
                      skiff_store_write_cb cb, void *data);

/* A store operation of the server's own (admission's quota status) keeps
 * the server alive until released, as boot and compaction writes do. */
void api_server_hold(api_server_t *s);
void api_server_release(api_server_t *s);

/* shared helpers (server.c) */
watch_cache_t *api_cache_for(api_server_t *s, const kind_def_t *k);
/* k's cache, made (complete up to the last revision) if the resource has
 * none yet; an existing one takes k as its kind. NULL when memory runs out. */
watch_cache_t *api_cache_ensure(api_server_t *s, const kind_def_t *k);
/* The end of one of the server's own store operations begun with
 * s->inflight++; 1 when the server is closing (do nothing more). */
int api_op_end(api_server_t *s);
void api_key_for(api_call_t *c, const char *ns, const char *name);
/* Respond with an object (or a Table of it when asked). */
void api_reply_object(api_call_t *c, int code, const json_t *obj);
/* Parse a stored value and set resourceVersion. New reference. */
json_t *api_object_from_kv(const skiff_kv_t *kv);
void api_not_found(api_call_t *c, const char *name);
/* Is there an object (in any resource; namespaced ones only if asked) for which pred holds? */
int api_any_object(api_server_t *s, int namespaced_only, int (*pred)(cache_obj_t *o, void *data),
                   void *data);

#endif
