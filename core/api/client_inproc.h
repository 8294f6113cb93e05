/* core/api/client_inproc.h - the SDK client inside `skiff server`: requests
 * go straight to the API server's handler, with no socket and no HTTP, and
 * mean exactly what they mean over HTTP (both use client_rest.c). */
#ifndef SKIFF_API_CLIENT_INPROC_H
#define SKIFF_API_CLIENT_INPROC_H

#include <uv.h>

#include <skiff/client.h>

#include "api/apiserver.h"

/* Callbacks always run from the loop, never inside the call that caused
 * them. The server must outlive the client. NULL on ENOMEM. */
skiff_client_t *client_inproc_new(uv_loop_t *loop, api_server_t *srv);

#endif
