/* core/api/client_rest.h - the SDK client's semantics, over any transport.
 *
 * client_rest turns every skiff/client.h call into the Kubernetes REST call
 * (method, URL with query, Content-Type, body) and turns answers back into
 * the SDK's callbacks, including reassembling watch events from a stream.
 * A transport only carries requests: the HTTP one (client_http.c) over
 * sockets, the in-process one (client_inproc.c) straight into the API
 * server. Both clients therefore behave the same by construction. */
#ifndef SKIFF_API_CLIENT_REST_H
#define SKIFF_API_CLIENT_REST_H

#include <stddef.h>

#include <skiff/client.h>

typedef struct rest_transport rest_transport_t;

typedef struct rest_request {
    const char *method;
    const char *path;         /* path and query, percent-encoded */
    const char *content_type; /* of the body, or NULL */
    const char *body;         /* or NULL */
    size_t body_len;
    /* For a transport with `objects` set: the body as an object instead of
     * text (body NULL); the transport takes this reference. */
    json_t *body_obj;
    /* For a transport with `objects` set, optional: the object as the
     * caller last saw it (api_request_t.base_obj; the transport takes a
     * reference), and whether the answer object may be shared and
     * read-only (api_request_t.shared_answer). Other transports ignore
     * both. */
    json_t *base_obj;
    int shared_answer;
    int stream;               /* a watch: answered piece by piece, may last long */
    /* stream mode: each piece of a 2xx body as it arrives */
    void (*on_chunk)(void *data, const char *chunk, size_t len);
    /* once at the end (unless cancelled): status 0 when no answer came;
     * body is the whole body (empty after a 2xx stream) */
    void (*on_done)(void *data, int status, const char *body, size_t len);
    /* stream mode, optional: a watch event the transport has as an object
     * already (in process); obj is borrowed and shared, not to be changed.
     * Without it such a transport hands over the event as text. */
    void (*on_event)(void *data, const char *type, json_t *obj);
    /* optional, plain requests: the answer as an object the transport has
     * already (in process) instead of on_done; obj is handed over. */
    void (*on_done_object)(void *data, int status, json_t *obj);
    void *data;
} rest_request_t;

typedef struct rest_transport_ops {
    /* Queue a request (everything in r is copied). *handle identifies it for cancel. */
    int (*send)(rest_transport_t *t, const rest_request_t *r, void **handle);
    /* No callback runs for the request after this. */
    void (*cancel)(rest_transport_t *t, void *handle);
    /* Pending plain requests complete with status 0; open streams end. */
    void (*free)(rest_transport_t *t);
    /* 1: takes request bodies as objects (rest_request_t.body_obj) */
    int objects;
} rest_transport_ops_t;

struct rest_transport {
    const rest_transport_ops_t *ops;
};

/* A client over t (which it owns and frees with the client). NULL on ENOMEM. */
skiff_client_t *client_rest_new(rest_transport_t *t);

/* skiff_client_create with options for the in-process transport:
 * handover (obj's reference is taken, also on failure, and the server
 * changes obj itself instead of a copy), base_obj and shared_answer as in
 * rest_request_t (then cb's obj must only be read). On a client that is
 * not a client_rest this is skiff_client_create (base and shared ignored). */
int client_rest_create_ex(skiff_client_t *c, const skiff_resource_t *r, const char *ns,
                         json_t *obj, const skiff_write_opts_t *o, int handover,
                         json_t *base_obj, int shared_answer, skiff_client_cb cb, void *data);

/* Path (no query) of a resource URL into buf; the length needed, or SKIFF_EINVAL. */
int client_rest_path(char *buf, size_t len, const skiff_resource_t *r, const char *ns,
                     const char *name);

#endif
