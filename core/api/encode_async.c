/* core/api/encode_async.c - JSON encoding off the event loop: the bytes of
 * a store write made by json_dumps on a libuv worker thread while the loop
 * serves other requests, for the writes the server makes most (pod
 * bindings). Encoding only reads the tree, and nothing changes a tree
 * handed to a write, so the worker and the loop never touch the same
 * memory in a conflicting way; jansson allocates through malloc, which is
 * thread-safe. The server stays alive until every encoding has answered. */
#include "api/encode_async.h"

#include <stdlib.h>
#include <string.h>

#include <skiff/errors.h>
#include <uv.h>

#include "api/apiserver_int.h"

typedef struct encode_job {
    uv_work_t work;
    api_server_t *srv;
    json_t *tree;
    char *bytes;
    api_encoded_cb cb;
    void *data;
} encode_job_t;

static void encode_work(uv_work_t *w)
{
    encode_job_t *j = w->data;
    j->bytes = json_dumps(j->tree, JSON_COMPACT);
}

static void encode_done(uv_work_t *w, int status)
{
    encode_job_t *j = w->data;
    api_server_t *srv = j->srv;
    if (status != 0 || srv->closing) {
        /* the server is stopping (or the work was cancelled): no new store
         * write may start, the server may be freed once this releases it */
        free(j->bytes);
        j->bytes = NULL;
    }
    j->cb(j->data, j->bytes, j->tree);
    json_decref(j->tree);
    free(j);
    api_server_release(srv);
}

void api_encode_failed_reply(api_call_t *c)
{
    if (c->srv->closing)
        status_reply(c->resp, 503, "ServiceUnavailable", NULL, "the server is shutting down");
    else
        status_reply(c->resp, 500, "InternalError", NULL, "out of memory");
}

int api_write_encoded(api_call_t *c, json_t *tree, const char *bytes, int create, int64_t rev,
                      skiff_store_write_cb cb, void *cb_data)
{
    size_t len = strlen(bytes);
    skiff_store_t *st = c->srv->store;
    api_fresh_put(c->srv, c->cache, c->key, tree, bytes, len);
    int rc = create ? st->vt->create(st, c->key, bytes, len, cb, cb_data)
                    : st->vt->update(st, c->key, bytes, len, rev, cb, cb_data);
    if (rc != 0) api_fresh_forget(c->srv, c->key);
    return rc;
}

int api_encode_async(api_server_t *s, json_t *tree, api_encoded_cb cb, void *data)
{
    encode_job_t *j = calloc(1, sizeof *j);
    if (!j) return SKIFF_ENOMEM;
    j->work.data = j;
    j->srv = s;
    j->tree = json_incref(tree);
    j->cb = cb;
    j->data = data;
    api_server_hold(s);
    if (uv_queue_work(s->loop, &j->work, encode_work, encode_done) != 0) {
        json_decref(j->tree);
        free(j);
        api_server_release(s);
        return SKIFF_ENOMEM;
    }
    return 0;
}
