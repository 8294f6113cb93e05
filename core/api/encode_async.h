/* core/api/encode_async.h - json_dumps on a worker thread (encode_async.c). */
#ifndef SKIFF_API_ENCODE_ASYNC_H
#define SKIFF_API_ENCODE_ASYNC_H

#include <jansson.h>

#include "api/apiserver.h"

/* bytes: the compact JSON of tree, owned by the callback (NULL when memory
 * ran out or the server is stopping: api_server_t.closing tells which);
 * tree as it was passed (borrowed). */
typedef void (*api_encoded_cb)(void *data, char *bytes, json_t *tree);

/* Encodes tree (a reference is kept; nothing may change it until cb runs)
 * on a worker thread; cb runs on the server's loop. 0 or SKIFF_ENOMEM (cb
 * does not run then). */
int api_encode_async(api_server_t *s, json_t *tree, api_encoded_cb cb, void *data);

typedef struct api_call api_call_t;
/* For a callback that got no bytes: answers c 503 when the server is
 * stopping, else 500 (out of memory). */
void api_encode_failed_reply(api_call_t *c);
/* The bytes of tree (what api_encode_async gave) written under c->key: a
 * create, or an update over rev; in-process watchers of the resource will
 * get tree itself. 0, or the store's error code (nothing is pending then). */
int api_write_encoded(api_call_t *c, json_t *tree, const char *bytes, int create, int64_t rev,
                      skiff_store_write_cb cb, void *cb_data);

#endif
