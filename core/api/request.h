/* core/api/request.h - one API request and the sink its answer goes to.
 *
 * The HTTP server (core/http/server.c) and the in-process client
 * (core/api/client_inproc.c) both turn what they receive into an
 * api_request_t and hand it to api_server_handle() with a response sink;
 * that is why both clients have the same semantics. Nothing here knows
 * about sockets or about Kubernetes resources. */
#ifndef SKIFF_API_REQUEST_H
#define SKIFF_API_REQUEST_H

#include <stddef.h>
#include <jansson.h>

typedef struct api_request {
    const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" */
    const char *path;         /* percent-decoded path, no query: "/api/v1/namespaces/x/pods" */
    const char *query;        /* raw query string without '?', or NULL */
    const char *content_type; /* Content-Type header, or NULL */
    const char *accept;       /* Accept header, or NULL */
    const char *user_agent;   /* User-Agent header, or NULL */
    const char *body;         /* NUL-terminated body (may contain NULs before body_len), or NULL */
    size_t body_len;
    /* A create or update from the in-process client carries its object
     * instead of text (body is NULL then): owned by the request's owner and
     * kept as long as the request; a handler may take a reference and
     * change it, nobody else reads it. */
    json_t *body_obj;
    /* In process only, optional: the object as the caller last saw it (a
     * watch object the server handed out, shared and read-only; borrowed
     * for the request's life). A pods/binding request applies the binding
     * to it when it is still the stored version, instead of decoding the
     * pod again. */
    json_t *base_obj;
    /* In process only: the caller only reads the answer object, so the
     * server may answer with the tree it stored (shared, read-only)
     * instead of a copy. */
    int shared_answer;
    /* Who the verified TLS client certificate names (CN = user, each O a
     * group; groups NULL-terminated), or NULL for none or plain HTTP. */
    const char *tls_user;
    const char *const *tls_groups;
    /* 1 when the request came over TLS: then a request without a verified
     * client certificate is anonymous. 0 for the plain-HTTP development
     * listener and the in-process client, which act as the administrator. */
    int secure;
    const char *authorization;       /* Authorization header, or NULL */
    const char *remote_addr;         /* the client's IP address, or NULL (in-process) */
    const char *host;                /* Host header, or NULL */
    /* kubectl --as / --as-group: Impersonate-User and every Impersonate-Group
     * (NULL-terminated), or NULL */
    const char *impersonate_user;
    const char *const *impersonate_groups;
} api_request_t;

typedef struct api_response api_response_t;

typedef struct api_response_ops {
    /* Whole answer at once; the response is finished after this. */
    void (*send)(api_response_t *r, int status, const char *content_type, const char *body,
                 size_t len);
    /* Streamed answer (watch): begin, any number of writes, end. */
    void (*stream_begin)(api_response_t *r, int status, const char *content_type);
    /* Returns 0, or a negative code when the peer is gone (stop writing; end() still due). */
    int (*stream_write)(api_response_t *r, const char *data, size_t len);
    void (*stream_end)(api_response_t *r);
    /* Optional (NULL: text only): one watch event as an object, for sinks in
     * the same process that would parse the text again. obj is borrowed and
     * shared (the sink takes its own reference and must not modify it).
     * type NULL probes: 0 when the sink takes objects, else a negative code.
     * Returns as stream_write does. */
    int (*stream_write_event)(api_response_t *r, const char *type, json_t *obj);
    /* Optional (NULL: text only): the whole answer as an object, for sinks
     * in the same process. obj is handed over (the sink owns the reference
     * and may change it); the response is finished after this. */
    void (*send_object)(api_response_t *r, int status, json_t *obj);
} api_response_ops_t;

/* The sink. Its owner (HTTP connection, in-process client) keeps the request
 * valid until the response is finished (send or stream_end). When the peer
 * goes away before that, the owner calls on_abort (if set) once; the handler
 * must then finish the response (stream_end) soon, without writing more. */
struct api_response {
    const api_response_ops_t *ops;
    /* Extra header lines ("Warning: 299 - \"...\"\r\n"), set by the handler
     * before it answers and kept valid until send or stream_begin returns;
     * NULL for none. Sinks without headers ignore them. */
    const char *extra_headers;
    void (*on_abort)(api_response_t *r, void *abort_data);
    void *abort_data;
};

#endif
