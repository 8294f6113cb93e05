/* core/api/client_inproc.c - a rest_transport_t that hands each request to
 * api_server_handle() in the same process.
 *
 * The request is built as the HTTP server would build it (decoded path, raw
 * query, Content-Type, body); the answer is caught by a response sink and
 * delivered from a uv_async callback, so SDK callbacks never run inside the
 * server's own code (a controller may call the client from any callback).
 * Watch events come over as the watch cache's parsed objects (shared and
 * read-only), not as text to parse again. */
#include "api/client_inproc.h"

#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>

#include "api/client_rest.h"
#include "api/request.h"
#include "util/percent.h"

typedef struct inproc_transport inproc_transport_t;

typedef struct delivery {
    struct delivery *next;
    int done;       /* 0: a chunk; 1: the end */
    int status;
    json_t *obj;    /* a watch event as an object (type in data), or NULL */
    size_t len;
    char data[];
} delivery_t;

typedef struct ipcall {
    api_response_t resp;        /* first: the sink handed to the server */
    api_request_t req;
    inproc_transport_t *t;
    struct ipcall *prev, *next; /* live calls */
    struct ipcall *next_ready;
    int in_ready;
    int busy;                   /* frames of ours using it: do not free */
    int lost;                   /* the final answer could not be queued */
    char *method, *path, *query, *content_type, *body;
    json_t *body_obj;
    json_t *base_obj;
    int stream;
    int status;
    int server_done;            /* the server finished the response */
    int client_done;            /* on_done delivered, or cancelled */
    delivery_t *head, *tail;
    void (*on_chunk)(void *data, const char *chunk, size_t len);
    void (*on_done)(void *data, int status, const char *body, size_t len);
    void (*on_event)(void *data, const char *type, json_t *obj);
    void (*on_done_object)(void *data, int status, json_t *obj);
    void *data;
} ipcall_t;

struct inproc_transport {
    rest_transport_t base;
    uv_loop_t *loop;
    api_server_t *srv;
    uv_async_t async;
    ipcall_t *live;
    ipcall_t *ready_head, *ready_tail;
    int closed;
    int async_closed;
};

static void transport_maybe_free(inproc_transport_t *t)
{
    if (t->closed && t->async_closed && !t->live) free(t);
}

static void delivery_free(delivery_t *d)
{
    json_decref(d->obj);
    free(d);
}

static void call_free(ipcall_t *c)
{
    inproc_transport_t *t = c->t;
    if (c->prev) c->prev->next = c->next;
    else t->live = c->next;
    if (c->next) c->next->prev = c->prev;
    while (c->head) {
        delivery_t *d = c->head;
        c->head = d->next;
        delivery_free(d);
    }
    free(c->method);
    free(c->path);
    free(c->query);
    free(c->content_type);
    free(c->body);
    json_decref(c->body_obj);
    json_decref(c->base_obj);
    free(c);
    transport_maybe_free(t);
}

static void call_maybe_free(ipcall_t *c)
{
    if (c->server_done && c->client_done && !c->in_ready && !c->busy) call_free(c);
}

static void make_ready(ipcall_t *c)
{
    inproc_transport_t *t = c->t;
    if (c->in_ready || t->closed) return;
    c->in_ready = 1;
    c->next_ready = NULL;
    if (t->ready_tail) t->ready_tail->next_ready = c;
    else t->ready_head = c;
    t->ready_tail = c;
    uv_async_send(&t->async);
}

static void queue_delivery(ipcall_t *c, int done, int status, const char *data, size_t len)
{
    delivery_t *d = malloc(sizeof *d + len + 1);
    if (d) d->obj = NULL;
    if (!d) {
        /* the end must still be told: as a lost connection */
        if (done) {
            c->lost = 1;
            make_ready(c);
        }
        return;
    }
    d->next = NULL;
    d->done = done;
    d->status = status;
    d->len = len;
    if (len) memcpy(d->data, data, len);
    d->data[len] = '\0';
    if (c->tail) c->tail->next = d;
    else c->head = d;
    c->tail = d;
    make_ready(c);
}

/* ---- the response sink the server writes to -------------------------------- */

static void sink_send(api_response_t *r, int status, const char *ct, const char *body,
                      size_t len)
{
    ipcall_t *c = (ipcall_t *)r;
    c->server_done = 1;
    if (!c->client_done) queue_delivery(c, 1, status, body, len);
    call_maybe_free(c);
}

static void sink_send_object(api_response_t *r, int status, json_t *obj)
{
    ipcall_t *c = (ipcall_t *)r;
    c->server_done = 1;
    if (!c->client_done && c->on_done_object) {
        delivery_t *tail = c->tail;
        queue_delivery(c, 1, status, "", 0);
        if (c->tail != tail) c->tail->obj = obj;
        else json_decref(obj);
    } else if (!c->client_done) {
        /* a caller without on_done_object gets the text */
        char *text = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
        queue_delivery(c, 1, status, text ? text : "", text ? strlen(text) : 0);
        free(text);
    } else {
        json_decref(obj);
    }
    call_maybe_free(c);
}

static void sink_stream_begin(api_response_t *r, int status, const char *ct)
{
    ((ipcall_t *)r)->status = status;
}

static int sink_stream_write(api_response_t *r, const char *data, size_t len)
{
    ipcall_t *c = (ipcall_t *)r;
    if (c->client_done || c->lost) return SKIFF_ECLOSED;
    delivery_t *tail = c->tail;
    queue_delivery(c, 0, c->status, data, len);
    if (c->tail == tail) {
        /* a dropped piece would corrupt the stream: end it instead */
        c->lost = 1;
        make_ready(c);
        return SKIFF_ENOMEM;
    }
    return 0;
}

static int sink_stream_write_event(api_response_t *r, const char *type, json_t *obj)
{
    ipcall_t *c = (ipcall_t *)r;
    if (!type) return c->on_event ? 0 : SKIFF_ENOTSUP;
    if (c->client_done || c->lost) return SKIFF_ECLOSED;
    delivery_t *tail = c->tail;
    queue_delivery(c, 0, c->status, type, strlen(type));
    if (c->tail == tail) {
        c->lost = 1;
        make_ready(c);
        return SKIFF_ENOMEM;
    }
    c->tail->obj = json_incref(obj);
    return 0;
}

static void sink_stream_end(api_response_t *r)
{
    ipcall_t *c = (ipcall_t *)r;
    c->server_done = 1;
    if (!c->client_done) queue_delivery(c, 1, c->status, "", 0);
    call_maybe_free(c);
}

static const api_response_ops_t sink_ops = {
    .send = sink_send,
    .stream_begin = sink_stream_begin,
    .stream_write = sink_stream_write,
    .stream_end = sink_stream_end,
    .stream_write_event = sink_stream_write_event,
    .send_object = sink_send_object,
};

/* ---- delivery --------------------------------------------------------------- */

static void deliver(ipcall_t *c)
{
    while (c->head && !c->client_done) {
        delivery_t *d = c->head;
        c->head = d->next;
        if (!c->head) c->tail = NULL;
        if (d->done) {
            c->client_done = 1;
            if (d->obj && c->on_done_object) {
                json_t *obj = d->obj;
                d->obj = NULL;
                c->on_done_object(c->data, d->status, obj);
            } else {
                c->on_done(c->data, d->status, d->data, d->len);
            }
        } else if (d->obj) {
            /* queued only for a call with on_event (the sink's probe) */
            if (c->on_event && d->status >= 200 && d->status < 300)
                c->on_event(c->data, d->data, d->obj);
        } else if (c->on_chunk && d->status >= 200 && d->status < 300) {
            c->on_chunk(c->data, d->data, d->len);
        }
        delivery_free(d);
    }
    if (c->lost && !c->client_done) {
        c->client_done = 1;
        c->on_done(c->data, 0, "", 0);
    }
}

static void on_async(uv_async_t *h)
{
    inproc_transport_t *t = h->data;
    ipcall_t *list = t->ready_head;
    t->ready_head = t->ready_tail = NULL;
    while (list && !t->closed) {
        ipcall_t *c = list;
        list = c->next_ready;
        c->in_ready = 0;
        c->busy++;
        deliver(c);
        c->busy--;
        call_maybe_free(c);
    }
    while (list) { /* closed meanwhile: free() already ended them */
        ipcall_t *c = list;
        list = c->next_ready;
        c->in_ready = 0;
        call_maybe_free(c);
    }
}

/* ---- transport ops ------------------------------------------------------------ */



static int ip_send(rest_transport_t *base, const rest_request_t *r, void **handle)
{
    inproc_transport_t *t = (inproc_transport_t *)base;
    if (t->closed) {
        json_decref(r->body_obj);
        return SKIFF_ECLOSED;
    }
    ipcall_t *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(r->body_obj);
        return SKIFF_ENOMEM;
    }
    c->resp.ops = &sink_ops;
    c->t = t;
    c->stream = r->stream;
    c->on_chunk = r->on_chunk;
    c->on_done = r->on_done;
    c->on_event = r->stream ? r->on_event : NULL;
    c->on_done_object = r->stream ? NULL : r->on_done_object;
    c->body_obj = r->body_obj; /* handed over */
    c->base_obj = json_incref(r->base_obj);
    c->data = r->data;
    const char *q = strchr(r->path, '?');
    c->method = strdup(r->method);
    /* the HTTP server hands the API server a percent-decoded path */
    c->path = percent_decode_dup(r->path, q ? (size_t)(q - r->path) : strlen(r->path), 0);
    c->query = q ? strdup(q + 1) : NULL;
    c->content_type = r->content_type ? strdup(r->content_type) : NULL;
    if (r->body) {
        c->body = malloc(r->body_len + 1);
        if (c->body) {
            memcpy(c->body, r->body, r->body_len);
            c->body[r->body_len] = '\0';
        }
    }
    if (!c->method || !c->path || (q && !c->query) || (r->content_type && !c->content_type) ||
        (r->body && !c->body)) {
        c->server_done = c->client_done = 1;
        c->next = t->live;
        if (t->live) t->live->prev = c;
        t->live = c;
        call_free(c);
        return SKIFF_ENOMEM;
    }
    c->req.method = c->method;
    c->req.path = c->path;
    c->req.query = c->query;
    c->req.content_type = c->content_type;
    c->req.body = c->body;
    c->req.body_len = r->body ? r->body_len : 0;
    c->req.body_obj = c->body_obj;
    c->req.base_obj = c->base_obj;
    c->req.shared_answer = r->shared_answer;
    c->next = t->live;
    if (t->live) t->live->prev = c;
    t->live = c;
    *handle = c;
    api_server_handle(t->srv, &c->req, &c->resp);
    return 0;
}

/* The client is gone: stop a stream in the server, drop what was queued. */
static void end_call(ipcall_t *c)
{
    c->client_done = 1;
    while (c->head) {
        delivery_t *d = c->head;
        c->head = d->next;
        delivery_free(d);
    }
    c->tail = NULL;
    if (!c->server_done && c->resp.on_abort) {
        void (*abort_fn)(api_response_t *, void *) = c->resp.on_abort;
        c->resp.on_abort = NULL;
        abort_fn(&c->resp, c->resp.abort_data);
    }
}

static void ip_cancel(rest_transport_t *base, void *handle)
{
    ipcall_t *c = handle;
    if (!c || c->client_done) return;
    c->busy++; /* keep it while the server ends the stream */
    end_call(c);
    c->busy--;
    call_maybe_free(c);
}

static void on_async_closed(uv_handle_t *h)
{
    inproc_transport_t *t = h->data;
    t->async_closed = 1;
    transport_maybe_free(t);
}

static void ip_free(rest_transport_t *base)
{
    inproc_transport_t *t = (inproc_transport_t *)base;
    /* Every call still open ends now, with status 0 (as a lost connection
     * would); calls the server has not answered yet stay allocated, without
     * callbacks, until it does. */
    t->closed = 1;
    for (ipcall_t *c = t->live; c; c = c->next) c->busy++;
    ipcall_t *c = t->live;
    while (c) {
        ipcall_t *next = c->next;
        if (!c->client_done) {
            c->client_done = 1;
            c->on_done(c->data, 0, "", 0);
            c->client_done = 0;
            end_call(c);
        }
        c = next;
    }
    for (ipcall_t *r = t->ready_head; r; r = r->next_ready) r->in_ready = 0;
    t->ready_head = t->ready_tail = NULL;
    c = t->live;
    while (c) {
        ipcall_t *next = c->next;
        c->busy--;
        call_maybe_free(c);
        c = next;
    }
    uv_close((uv_handle_t *)&t->async, on_async_closed);
}

static const rest_transport_ops_t inproc_ops = {
    .send = ip_send,
    .cancel = ip_cancel,
    .free = ip_free,
    .objects = 1,
};

skiff_client_t *client_inproc_new(uv_loop_t *loop, api_server_t *srv)
{
    inproc_transport_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->base.ops = &inproc_ops;
    t->loop = loop;
    t->srv = srv;
    if (uv_async_init(loop, &t->async, on_async) != 0) {
        free(t);
        return NULL;
    }
    t->async.data = t;
    return client_rest_new(&t->base);
}
