/* core/agent/local_nodes.c - runs hollow nodes on the server's own loop
 * (see local_nodes.h). Only the wiring lives here: the nodes themselves
 * are core/agent/hollow.c, unchanged. */
#include "agent/local_nodes.h"

#include <stdlib.h>

#include "agent/hollow.h"
#include "api/client_inproc.h"
#include "util/log.h"

struct local_nodes {
    skiff_client_t *client;
    hollow_t *hollow;
    void (*done)(void *data);
    void *done_data;
};

int local_nodes_start(uv_loop_t *loop, api_server_t *api, int count, local_nodes_t **out)
{
    *out = NULL;
    if (count <= 0) return 0;
    local_nodes_t *n = calloc(1, sizeof *n);
    if (!n) return -1;
    n->client = client_inproc_new(loop, api);
    hollow_opts_t ho = {.count = count, .prefix = "hollow-", .ready_delay_ms = 200};
    char err[512] = "";
    if (!n->client || hollow_new(loop, n->client, &ho, &n->hollow, err, sizeof err) != 0) {
        log_error("server", "hollow nodes: %s", err[0] ? err : "out of memory");
        if (n->client) n->client->vt->free(n->client);
        free(n);
        return -1;
    }
    if (hollow_start(n->hollow) != 0) {
        log_error("server", "hollow nodes: cannot start");
        hollow_close(n->hollow);
        n->client->vt->free(n->client);
        n->client = NULL;
        *out = n; /* freed with local_nodes_free once the loop ends */
        return -1;
    }
    log_info("server", "%d hollow node(s) run in this server (hollow-0...)", count);
    *out = n;
    return 0;
}

static void on_stopped(void *data)
{
    local_nodes_t *n = data;
    /* requests still pending end with status 0; the nodes ignore them now */
    n->client->vt->free(n->client);
    n->client = NULL;
    hollow_close(n->hollow);
    if (n->done) n->done(n->done_data);
}

void local_nodes_stop(local_nodes_t *n, void (*done)(void *data), void *data)
{
    if (!n || !n->client) {
        if (done) done(data);
        return;
    }
    n->done = done;
    n->done_data = data;
    hollow_stop(n->hollow, on_stopped, n);
}

void local_nodes_free(local_nodes_t *n)
{
    if (!n) return;
    hollow_free(n->hollow);
    free(n);
}
