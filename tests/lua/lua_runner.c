/* tests/lua/lua_runner.c - runs one Lua test file (tests/lua/test_*.lua)
 * as a plugin through the real loader, next to a real API server (SQLite
 * store in a temporary directory, in-process client, shared informers).
 * The script prints TAP; it is done when its start callback has returned
 * and nothing of it waits any more. A script that fails to load or is
 * stopped by the Lua host bails out. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skiff/controller.h>
#include <uv.h>

#include "api/client_inproc.h"
#include "lua/lua_host.h"
#include "plugin/loader.h"

#include "../unit/api_fixture.h"

#define TIMEOUT_MS 120000

static uv_loop_t loop;

static void run_ms(int ms)
{
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(500);
        uv_update_time(&loop);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: lua_runner TEST.lua\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    api_fixture_t fx;
    api_server_opts_t ao = {0};
    if (api_fixture_start(&fx, &loop, ao, 0) != 0) {
        printf("Bail out! cannot start an API server\n");
        return 1;
    }
    skiff_client_t *client = client_inproc_new(&loop, fx.api);
    skiff_informer_factory_t *inf = NULL;
    skiff_informer_factory_new(&loop, client, &inf);
    char err[1024];
    loaded_plugin_t *p = plugin_load(argv[1], &loop, fx.dir, err, sizeof err);
    int rc = 0;
    if (!p) {
        printf("Bail out! %s\n", err);
        rc = 1;
        goto out;
    }
    p->ctx.client = client;
    p->ctx.informers = inf;
    p->ctx.component = "lua-test";
    if (plugin_start(p, err, sizeof err) != 0) {
        printf("Bail out! %s\n", err);
        rc = 1;
    } else {
        lua_plugin_t *lp = p->handle;
        int waited = 0;
        while (lua_plugin_busy(lp) > 0 && !lua_plugin_failure(lp) && waited < TIMEOUT_MS) {
            run_ms(5);
            waited += 5;
        }
        if (lua_plugin_failure(lp)) {
            printf("Bail out! the plugin was stopped: %s\n", lua_plugin_failure(lp));
            rc = 1;
        } else if (waited >= TIMEOUT_MS) {
            printf("Bail out! the test did not finish within %d s\n", TIMEOUT_MS / 1000);
            rc = 1;
        }
        plugin_stop(p);
    }
    run_ms(20);
out:
    skiff_informer_factory_free(inf);
    run_ms(20);
    if (p) plugin_unload(p);
    client->vt->free(client);
    run_ms(20);
    api_fixture_stop(&fx);
    return rc;
}
