/* core/agent/hollow.c - the fleet of hollow nodes: registration (or
 * adoption) of the Nodes, their Leases and status heartbeats spread over
 * the period, and an orderly stop. Pods are hollow_pods.c's business.
 *
 * One timer ticks every 100 ms and queues what is due; every write goes
 * through the bounded write queue, so 5,000 nodes cost a steady trickle of
 * requests rather than bursts. The nodes' writes go ahead of the pods':
 * a node whose Lease expires is declared lost with all its pods. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <skiff/errors.h>
#include <skiff/objects.h>

#include "agent/hollow_int.h"
#include "util/log.h"

#define TICK_MS 100
#define STOP_DEADLINE_MS 20000

static const skiff_resource_t NODES = {"", "v1", "nodes", NULL};
static const skiff_resource_t NODES_STATUS = {"", "v1", "nodes", "status"};
static const skiff_resource_t LEASES = {"coordination.k8s.io", "v1", "leases", NULL};

static int op_start(void *owner, int kind, const char *key, write_op_t *op);
static int64_t op_done(void *owner, int kind, const char *key, int status, json_t *obj);
static const write_queue_ops_t wq_ops = {op_start, op_done};

static char *dup_or(const char *s, const char *def)
{
    return strdup(s ? s : def);
}

static int check_quantity(const char *what, const char *v, char *err, size_t errlen)
{
    int64_t m;
    if (skiff_quantity_milli(v, &m) != 0 || m < 0) {
        snprintf(err, errlen, "--%s %s: not a resource quantity (like 4, 500m, 16Gi)", what, v);
        return -1;
    }
    return 0;
}

int hollow_new(uv_loop_t *loop, skiff_client_t *client, const hollow_opts_t *o, hollow_t **out,
               char *err, size_t errlen)
{
    *out = NULL;
    if (o->count < 1 || o->count > 100000) {
        snprintf(err, errlen, "--hollow takes a number of nodes from 1 to 100000");
        return -1;
    }
    hollow_t *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->loop = loop;
    h->client = client;
    h->o = *o;
    h->writers = o->writers;
    h->nwriters = o->nwriters;
    h->o.writers = NULL;
    h->prefix = dup_or(o->prefix, "hollow-");
    h->cpu = dup_or(o->cpu, "4");
    h->memory = dup_or(o->memory, "16Gi");
    h->pods = dup_or(o->pods, "110");
    h->storage = dup_or(o->ephemeral_storage, "100Gi");
    if (!h->o.lease_period_ms) h->o.lease_period_ms = 10000;
    if (!h->o.status_period_ms) h->o.status_period_ms = 60000;
    if (!h->o.max_in_flight) h->o.max_in_flight = 64;
    h->o.prefix = h->o.cpu = h->o.memory = h->o.pods = h->o.ephemeral_storage = NULL;
    h->o.labels = h->o.taints = NULL;
    if (check_quantity("cpu", h->cpu, err, errlen) || check_quantity("memory", h->memory, err, errlen) ||
        check_quantity("ephemeral-storage", h->storage, err, errlen))
        goto fail;
    char *end;
    long max_pods = strtol(h->pods, &end, 10);
    if (*end || end == h->pods || max_pods < 1 || max_pods > 65000) {
        snprintf(err, errlen, "--pods %s: a whole number from 1 to 65000", h->pods);
        goto fail;
    }
    if (strlen(h->prefix) + 12 > 253) {
        snprintf(err, errlen, "--node-prefix is too long for a node name");
        goto fail;
    }
    h->labels = hollow_parse_labels(o->labels, err, errlen);
    if (!h->labels) goto fail;
    h->taints = hollow_parse_taints(o->taints, err, errlen);
    if (!h->taints) goto fail;
    struct utsname u;
    const char *arch = "amd64";
    if (uname(&u) == 0) {
        if (!strcmp(u.machine, "aarch64")) arch = "arm64";
        else if (strcmp(u.machine, "x86_64") != 0) arch = u.machine;
        snprintf(h->kernel, sizeof h->kernel, "%s", u.release);
    }
    snprintf(h->arch, sizeof h->arch, "%s", arch);
    h->shape = (hollow_node_shape_t){.cpu = h->cpu, .memory = h->memory, .pods = h->pods,
                                     .ephemeral_storage = h->storage, .labels = h->labels,
                                     .taints = h->taints, .arch = h->arch, .kernel = h->kernel};
    h->n = (size_t)o->count;
    h->nodes = calloc(h->n, sizeof *h->nodes);
    h->by_name = strmap_new();
    h->wq = write_queue_new(&wq_ops, h, (size_t)h->o.max_in_flight);
    if (!h->nodes || !h->by_name || !h->wq) goto fail;
    for (size_t i = 0; i < h->n; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s%zu", h->prefix, i);
        h->nodes[i].name = strdup(name);
        h->nodes[i].index = i;
        if (!h->nodes[i].name) goto fail;
        strmap_put(h->by_name, name, &h->nodes[i]);
    }
    h->podsim = hollow_pods_new(h);
    if (!h->podsim) goto fail;
    uv_timer_init(loop, &h->tick);
    uv_timer_init(loop, &h->deadline);
    h->tick.data = h->deadline.data = h;
    h->timers_init = 1;
    *out = h;
    return 0;
fail:
    if (!err[0]) snprintf(err, errlen, "out of memory");
    hollow_free(h);
    return -1;
}

size_t hollow_ready_nodes(const hollow_t *h)
{
    return h->ready;
}

/* ---- registration --------------------------------------------------------------- */

static void node_ready(hollow_t *h, hnode_t *nd)
{
    if (nd->exists) return;
    nd->exists = 1;
    h->ready++;
    int64_t now = hollow_mono_ms();
    /* spread over the period: node i renews at (i+1)/n of it, then every period */
    nd->next_status = now + h->o.status_period_ms * (int64_t)(nd->index + 1) / (int64_t)h->n;
    if (!nd->lease_ok) write_queue_add_urgent(h->wq, OP_LEASE_CREATE, nd->name);
    if (h->ready == h->n && !h->all_ready_logged) {
        h->all_ready_logged = 1;
        log_info("agent", "%zu hollow nodes registered and Ready in %.1f s", h->n,
                 (double)(now - h->start_mono) / 1000.0);
    }
}

static void node_lost(hollow_t *h, hnode_t *nd)
{
    if (nd->exists) h->ready--;
    nd->exists = 0;
    nd->lease_ok = 0;
    nd->adopt = 0;
    free(nd->uid);
    nd->uid = NULL;
    if (!h->stopping) write_queue_add_urgent(h->wq, OP_NODE_CREATE, nd->name);
}

static const char *internal_ip_of(json_t *node)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(json_object_get(node, "status"), "addresses"), i, a) {
        const char *t = json_string_value(json_object_get(a, "type"));
        if (t && strcmp(t, "InternalIP") == 0) return json_string_value(json_object_get(a, "address"));
    }
    return NULL;
}

static int setup_addresses(hollow_t *h)
{
    int prefix = ipam_prefix_for(atoi(h->pods));
    for (size_t i = 0; i < h->n; i++) {
        hnode_t *nd = &h->nodes[i];
        uint32_t base;
        int p = prefix;
        if (!nd->cidr[0] || ipam_parse_cidr(nd->cidr, &base, &p) != 0 || p < 16 || p > 24) {
            p = prefix;
            if (ipam_take(&h->ipam, p, &base) != 0) {
                log_error("agent", "no room left in 10.64.0.0/10 for the pods of %s", nd->name);
                return -1;
            }
            if (!nd->cidr[0]) {
                char ip[20];
                ipam_format(base, ip, sizeof ip);
                snprintf(nd->cidr, sizeof nd->cidr, "%s/%d", ip, p);
            }
        }
        if (!nd->ip[0]) ipam_format(ipam_node_ip(base), nd->ip, sizeof nd->ip);
        pod_range_free(&nd->range);
        if (pod_range_init(&nd->range, base, p) != 0) return -1;
    }
    return 0;
}

static void on_nodes_listed(void *data, int status, json_t *list)
{
    hollow_t *h = data;
    h->listing = 0;
    if (h->stopping) return;
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(list, "message"));
        log_error("agent", "cannot list nodes (status %d%s%s); retrying", status,
                  msg ? ": " : "", msg ? msg : "");
        h->list_due = hollow_mono_ms() + 2000;
        return;
    }
    size_t i, adopted = 0;
    json_t *node;
    json_array_foreach(json_object_get(list, "items"), i, node) {
        json_t *spec = json_object_get(node, "spec");
        const char *cidr = json_string_value(json_object_get(spec, "podCIDR"));
        if (cidr) ipam_mark(&h->ipam, cidr);
        const char *name =
            json_string_value(json_object_get(json_object_get(node, "metadata"), "name"));
        hnode_t *nd = name ? strmap_get(h->by_name, name) : NULL;
        if (!nd) continue;
        nd->adopt = 1;
        adopted++;
        if (cidr) snprintf(nd->cidr, sizeof nd->cidr, "%s", cidr);
        const char *ip = internal_ip_of(node);
        if (ip) snprintf(nd->ip, sizeof nd->ip, "%s", ip);
    }
    if (setup_addresses(h) != 0) {
        h->list_due = hollow_mono_ms() + 10000;
        return;
    }
    h->listed = 1;
    log_info("agent", "registering %zu hollow nodes %s0..%s%zu (%zu exist already)", h->n,
             h->prefix, h->prefix, h->n - 1, adopted);
    for (i = 0; i < h->n; i++)
        write_queue_add_urgent(h->wq, h->nodes[i].adopt ? OP_NODE_ADOPT : OP_NODE_CREATE,
                        h->nodes[i].name);
    write_queue_pump(h->wq);
    if (hollow_pods_start(h->podsim) != 0) log_error("agent", "cannot watch pods");
}

static void list_nodes(hollow_t *h)
{
    h->listing = 1;
    h->list_due = 0;
    skiff_list_opts_t lo = {0};
    if (skiff_client_list(h->client, &NODES, NULL, &lo, on_nodes_listed, h) != 0) {
        h->listing = 0;
        h->list_due = hollow_mono_ms() + 2000;
    }
}

/* ---- heartbeats ----------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    hollow_t *h = t->data;
    int64_t now = hollow_mono_ms();
    if (!h->listed && !h->listing && !h->stopping && now >= h->list_due) list_nodes(h);
    if (h->listed && !h->stopping) {
        for (size_t i = 0; i < h->n; i++) {
            hnode_t *nd = &h->nodes[i];
            if (!nd->exists) continue;
            if (nd->lease_ok && now >= nd->next_lease) {
                write_queue_add_urgent(h->wq, OP_LEASE_RENEW, nd->name);
                nd->next_lease += h->o.lease_period_ms;
                if (nd->next_lease <= now) nd->next_lease = now + h->o.lease_period_ms;
            }
            if (now >= nd->next_status) {
                write_queue_add_urgent(h->wq, OP_NODE_STATUS, nd->name);
                nd->next_status += h->o.status_period_ms;
                if (nd->next_status <= now) nd->next_status = now + h->o.status_period_ms;
            }
        }
    }
    write_queue_tick(h->wq, now);
}

int hollow_start(hollow_t *h)
{
    h->start_mono = hollow_mono_ms();
    list_nodes(h);
    return uv_timer_start(&h->tick, on_tick, TICK_MS, TICK_MS);
}

/* ---- the writes ----------------------------------------------------------------- */

static int send_patch(hollow_t *h, const hnode_t *nd, const skiff_resource_t *r, const char *ns,
                      const char *name, json_t *patch, write_op_t *op)
{
    char *body = json_dumps(patch, JSON_COMPACT);
    json_decref(patch);
    if (!body) return SKIFF_ENOMEM;
    skiff_write_opts_t wo = {.grace_period_seconds = -1};
    int rc = skiff_client_patch(hollow_node_writer(h, nd), r, ns, name, SKIFF_PATCH_MERGE, body, &wo,
                                write_queue_client_cb, op);
    free(body);
    return rc;
}

static int node_op_start(hollow_t *h, int kind, hnode_t *nd, write_op_t *op)
{
    int64_t now = skiff_now_ms();
    skiff_write_opts_t wo = {.grace_period_seconds = -1};
    char stamp[40];
    switch (kind) {
    case OP_NODE_CREATE: {
        if (h->stopping || nd->exists) return 1;
        nd->since_ms = now;
        json_t *node = hollow_node_new(&h->shape, nd->name, nd->ip, nd->cidr, now);
        if (!node) return SKIFF_ENOMEM;
        int rc = skiff_client_create(hollow_node_writer(h, nd), &NODES, NULL, node, &wo, write_queue_client_cb, op);
        json_decref(node);
        return rc;
    }
    case OP_NODE_ADOPT: {
        if (h->stopping) return 1;
        json_t *labels = hollow_node_labels(&h->shape, nd->name);
        return send_patch(h, nd, &NODES, NULL, nd->name, json_pack("{s:{s:o}}", "metadata", "labels", labels), op);
    }
    case OP_NODE_STATUS: {
        if (h->stopping) return 1;
        if (!nd->since_ms) nd->since_ms = now;
        json_t *st = hollow_node_status(&h->shape, nd->name, nd->ip, now, nd->since_ms);
        return send_patch(h, nd, &NODES_STATUS, NULL, nd->name, json_pack("{s:o}", "status", st), op);
    }
    case OP_LEASE_CREATE: {
        if (h->stopping || !nd->exists) return 1;
        json_t *lease = hollow_lease_new(nd->name, nd->uid, now);
        if (!lease) return SKIFF_ENOMEM;
        int rc = skiff_client_create(hollow_node_writer(h, nd), &LEASES, HOLLOW_LEASE_NS, lease, &wo,
                                     write_queue_client_cb, op);
        json_decref(lease);
        return rc;
    }
    case OP_LEASE_RENEW:
        if (h->stopping || !nd->exists || !nd->lease_ok) return 1;
        hollow_micro_time(now, stamp, sizeof stamp);
        return send_patch(h, nd, &LEASES, HOLLOW_LEASE_NS, nd->name,
                          json_pack("{s:{s:s, s:i, s:s}}", "spec", "holderIdentity", nd->name,
                                    "leaseDurationSeconds", HOLLOW_LEASE_SECONDS, "renewTime",
                                    stamp),
                          op);
    case OP_NODE_DELETE:
        return skiff_client_delete(hollow_node_writer(h, nd), &NODES, NULL, nd->name, &wo, write_queue_client_cb, op);
    case OP_LEASE_DELETE:
        return skiff_client_delete(hollow_node_writer(h, nd), &LEASES, HOLLOW_LEASE_NS, nd->name, &wo,
                                   write_queue_client_cb, op);
    }
    return 1;
}

static int op_start(void *owner, int kind, const char *key, write_op_t *op)
{
    hollow_t *h = owner;
    if (h->stop_done) return 1;
    if (kind == OP_POD_STATUS || kind == OP_POD_DELETE)
        return hollow_pods_op_start(h->podsim, kind, key, op);
    hnode_t *nd = strmap_get(h->by_name, key);
    return nd ? node_op_start(h, kind, nd, op) : 1;
}

static void warn_status(const char *what, const char *name, int status, json_t *obj)
{
    const char *msg = json_string_value(json_object_get(obj, "message"));
    log_warn("agent", "%s %s: status %d%s%s", what, name, status, msg ? ": " : "", msg ? msg : "");
}

/* Transient failures are retried soon, others rarely (and said once). */
static int64_t retry_delay(int status)
{
    return status == 0 || status == 409 || status == 429 || status >= 500 ? 1000 : 10000;
}

static void set_uid(hnode_t *nd, json_t *obj)
{
    const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
    if (!uid) return;
    free(nd->uid);
    nd->uid = strdup(uid);
}

static int64_t node_op_done(hollow_t *h, int kind, hnode_t *nd, int status, json_t *obj)
{
    if (h->stopping && kind != OP_NODE_DELETE && kind != OP_LEASE_DELETE) return 0;
    int ok = status >= 200 && status < 300;
    switch (kind) {
    case OP_NODE_CREATE:
        if (ok) {
            set_uid(nd, obj);
            node_ready(h, nd);
            return 0;
        }
        if (status == 409) { /* made meanwhile (another agent, a restart): adopt it */
            nd->adopt = 1;
            write_queue_add_urgent(h->wq, OP_NODE_ADOPT, nd->name);
            return 0;
        }
        if (status != 0) warn_status("creating node", nd->name, status, obj);
        return retry_delay(status);
    case OP_NODE_ADOPT:
        if (ok) {
            set_uid(nd, obj);
            write_queue_add_urgent(h->wq, OP_NODE_STATUS, nd->name);
            return 0;
        }
        if (status == 404) {
            node_lost(h, nd);
            return 0;
        }
        if (status != 0) warn_status("adopting node", nd->name, status, obj);
        return retry_delay(status);
    case OP_NODE_STATUS:
        if (ok) {
            if (!nd->uid) set_uid(nd, obj);
            node_ready(h, nd);
            return 0;
        }
        if (status == 404) { /* deleted behind our back: register again, as a kubelet does */
            log_warn("agent", "node %s was deleted; registering it again", nd->name);
            node_lost(h, nd);
            return 0;
        }
        if (status != 0) warn_status("updating the status of node", nd->name, status, obj);
        return nd->exists ? 0 : retry_delay(status); /* a heartbeat comes again anyway */
    case OP_LEASE_CREATE:
        if (ok || status == 409) {
            nd->lease_ok = 1;
            int64_t now = hollow_mono_ms();
            nd->next_lease = now + h->o.lease_period_ms * (int64_t)(nd->index + 1) / (int64_t)h->n;
            return 0;
        }
        if (status != 0) warn_status("creating the lease of node", nd->name, status, obj);
        return retry_delay(status);
    case OP_LEASE_RENEW:
        if (status == 404) {
            nd->lease_ok = 0;
            write_queue_add_urgent(h->wq, OP_LEASE_CREATE, nd->name);
        } else if (!ok && status != 0) {
            warn_status("renewing the lease of node", nd->name, status, obj);
        }
        return 0; /* the next renewal is due soon enough */
    case OP_NODE_DELETE:
        if (ok || status == 404) {
            if (nd->exists) h->ready--;
            nd->exists = 0;
        } else {
            warn_status("deleting node", nd->name, status, obj);
        }
        return 0;
    }
    return 0;
}

static int64_t op_done(void *owner, int kind, const char *key, int status, json_t *obj)
{
    hollow_t *h = owner;
    int64_t again;
    if (kind == OP_POD_STATUS || kind == OP_POD_DELETE) {
        again = hollow_pods_op_done(h->podsim, kind, key, status, obj);
    } else {
        hnode_t *nd = strmap_get(h->by_name, key);
        again = nd ? node_op_done(h, kind, nd, status, obj) : 0;
    }
    /* once stopping, nothing is retried; the stop tick notices the end */
    return h->stopping ? 0 : again;
}

/* ---- stopping ------------------------------------------------------------------- */

static void finish_stop(hollow_t *h)
{
    if (h->stop_done) return;
    h->stop_done = 1;
    /* the clients go after this: nothing may be sent any more */
    write_queue_clear(h->wq);
    uv_timer_stop(&h->tick);
    uv_timer_stop(&h->deadline);
    if (h->on_stopped) h->on_stopped(h->on_stopped_data);
}

static void maybe_stopped(hollow_t *h)
{
    if (h->stopping && !h->stop_done && write_queue_in_flight(h->wq) == 0 &&
        write_queue_waiting(h->wq) == 0)
        finish_stop(h);
}

static void on_stop_tick(uv_timer_t *t)
{
    hollow_t *h = t->data;
    write_queue_tick(h->wq, hollow_mono_ms());
    maybe_stopped(h);
}

static void on_deadline(uv_timer_t *t)
{
    hollow_t *h = t->data;
    log_warn("agent", "%zu writes still unanswered after %d s; stopping anyway",
             write_queue_in_flight(h->wq), STOP_DEADLINE_MS / 1000);
    finish_stop(h);
}

void hollow_stop(hollow_t *h, void (*done)(void *data), void *data)
{
    if (h->stopping) return;
    h->stopping = 1;
    h->on_stopped = done;
    h->on_stopped_data = data;
    hollow_pods_stop(h->podsim);
    write_queue_clear(h->wq);
    if (h->o.delete_nodes_on_exit) {
        size_t n = 0;
        for (size_t i = 0; i < h->n; i++) {
            if (!h->nodes[i].exists && !h->nodes[i].adopt) continue;
            write_queue_add_urgent(h->wq, OP_NODE_DELETE, h->nodes[i].name);
            write_queue_add_urgent(h->wq, OP_LEASE_DELETE, h->nodes[i].name);
            n++;
        }
        log_info("agent", "deleting %zu hollow nodes", n);
        write_queue_pump(h->wq);
    }
    uv_timer_start(&h->tick, on_stop_tick, TICK_MS, TICK_MS);
    uv_timer_start(&h->deadline, on_deadline, STOP_DEADLINE_MS, 0);
    maybe_stopped(h);
}

void hollow_close(hollow_t *h)
{
    if (!h || !h->timers_init) return;
    h->timers_init = 0;
    uv_close((uv_handle_t *)&h->tick, NULL);
    uv_close((uv_handle_t *)&h->deadline, NULL);
    hollow_pods_close(h->podsim);
}

void hollow_free(hollow_t *h)
{
    if (!h) return;
    hollow_pods_free(h->podsim);
    write_queue_free(h->wq);
    for (size_t i = 0; h->nodes && i < h->n; i++) {
        free(h->nodes[i].name);
        free(h->nodes[i].uid);
        pod_range_free(&h->nodes[i].range);
    }
    free(h->nodes);
    strmap_free(h->by_name, NULL);
    json_decref(h->labels);
    json_decref(h->taints);
    free(h->prefix);
    free(h->cpu);
    free(h->memory);
    free(h->pods);
    free(h->storage);
    free(h);
}
