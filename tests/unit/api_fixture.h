/* tests/unit/api_fixture.h - a real API server for unit tests: the SQLite
 * store plugin in a fresh temporary directory, an API server on it and,
 * when asked, an HTTP listener on a free loopback port. */
#ifndef SKIFF_TEST_API_FIXTURE_H
#define SKIFF_TEST_API_FIXTURE_H

#include <skiff/store.h>
#include <uv.h>

#include "api/apiserver.h"
#include "http/server.h"
#include "plugin/loader.h"

typedef struct api_fixture {
    uv_loop_t *loop;
    loaded_plugin_t *plugin;
    skiff_store_t *store;
    api_server_t *api;
    http_server_t *http; /* NULL without with_http */
    char dir[256];
} api_fixture_t;

/* Initialises *loop and starts everything on it; opts gives the API
 * server's tuning (loop and store are filled in). 0, or -1 with a message
 * on stderr. */
int api_fixture_start(api_fixture_t *f, uv_loop_t *loop, api_server_opts_t opts, int with_http);
/* Stops everything, removes the directory and closes the loop. 0 or -1. */
int api_fixture_stop(api_fixture_t *f);
/* Runs the loop until *flag is set (bounded); returns *flag. */
int api_fixture_wait(api_fixture_t *f, int *flag);

#endif
