/* core/api/apiserver.h - the API server: routes requests to resources,
 * keeps the watch caches fed from the store, and answers the Kubernetes
 * REST verbs. The HTTP server and the in-process client both call
 * api_server_handle(). */
#ifndef SKIFF_APISERVER_H
#define SKIFF_APISERVER_H

#include <stdint.h>

#include <skiff/store.h>
#include <uv.h>

#include "api/request.h"

typedef struct api_server api_server_t;

typedef struct api_server_opts {
    uv_loop_t *loop;
    skiff_store_t *store;
    size_t ring_capacity;          /* events kept per resource for watch replay (0: default) */
    int bookmark_interval_ms;      /* 0: default (10 s) */
    int watch_timeout_max_s;       /* server-side cap for a watch (0: default 1800 s) */
    int compaction_interval_s;     /* history older than one interval is compacted (0: 300 s) */
    int64_t event_ttl_ms;          /* Events expire this long after their last write (0: never) */
    /* Keys whose writes are stored even when nothing changed: values the
     * store transforms (encryption at rest), so that rewriting every
     * secret with `kubectl replace` re-encrypts it with the current key.
     * NULL: none. */
    int (*rewrite_unchanged)(void *data, const char *key);
    void *rewrite_unchanged_data;
    /* Audit log and abuse limits (NULL: none); owned by the caller. */
    struct audit *audit;
    struct limits *limits;
    /* Bearer tokens: static tokens and ServiceAccount JWTs (issued by
     * TokenRequest, published at /openid/v1/jwks). NULL: none. */
    struct tokens *tokens;
    int anonymous; /* accept requests without credentials as system:anonymous */
    int any_host;  /* plain HTTP: answer requests naming any Host, not only loopback ones */
    /* The admission chain (core/admission/admission.h), owned by the server
     * from now on; NULL: the default built-in chain. */
    struct admission_chain *admission;
} api_server_opts_t;

/* Creates the server and starts loading the caches from the store; on_ready
 * runs once (status 0, or a SKIFF_E* code) when the server can serve and the
 * system namespaces exist. */
int api_server_new(const api_server_opts_t *opts, void (*on_ready)(void *data, int status),
                   void *data, api_server_t **out);
int api_server_is_ready(const api_server_t *s);
void api_server_handle(api_server_t *s, const api_request_t *req, api_response_t *resp);
/* The cluster CA that signs approved CertificateSigningRequests of the
 * kube-apiserver-client(-kubelet) signers (borrowed; NULL: none). */
struct pki;
void api_server_set_signer(api_server_t *s, const struct pki *pki);
/* Ends watches (their streams end), stops timers; done runs when closed. */
void api_server_free(api_server_t *s, void (*done)(void *data), void *data);

/* Store key of an object: "/registry/<group|core>/<resource>/<ns>/<name>". */
int api_object_key(char *buf, size_t len, const char *group, const char *resource, const char *ns,
                   const char *name);

#endif
