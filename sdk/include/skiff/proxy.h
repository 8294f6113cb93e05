/* skiff/proxy.h - the Service proxy interface: what a proxy plugin
 * (proxy-userspace, proxy-nftables) implements to turn Services and
 * EndpointSlices into forwarding rules on a node.
 *
 * NEW AND NOT YET CALLED: no core code calls these functions yet. This
 * header is the contract the node agent's proxy loop and the first proxy
 * plugins will be written against; it may still change (SKIFF_PROXY_ABI
 * is bumped when it does) until a proxy plugin ships.
 *
 * As kube-proxy does, the core watches Services and EndpointSlices, and
 * the plugin only programs the data path. The split here is kube-proxy's
 * "full sync": the core computes the whole desired state (every service
 * port with its frontends and its usable endpoints, after the traffic
 * policies, topology and terminating-endpoint rules are applied) and hands
 * it to sync(); the plugin makes the data path match it and answers. The
 * core calls sync again, at most every min_sync_ms, whenever anything
 * changed, and after a failed sync with back-off. A plugin that can do
 * partial updates compares with the state it applied last.
 *
 * Frontends cover ClusterIP (both families), NodePort, externalIPs and
 * LoadBalancer ingress IPs; a headless Service (clusterIP None) never
 * appears. Everything handed to sync is borrowed for the call.
 *
 * A proxy plugin is a descriptor of kind SKIFF_PLUGIN_PROXY whose vtable
 * points to a skiff_proxy_vtable_t. */
#ifndef SKIFF_PROXY_H
#define SKIFF_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <skiff/errors.h>
#include <skiff/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKIFF_PROXY_ABI 1u

typedef struct skiff_proxy skiff_proxy_t; /* the plugin's */

typedef enum skiff_proxy_protocol {
    SKIFF_PROTO_TCP = 1,
    SKIFF_PROTO_UDP = 2,
    SKIFF_PROTO_SCTP = 3,
} skiff_proxy_protocol_t;

/* One address:port the Service answers on. */
typedef enum skiff_frontend_kind {
    SKIFF_FRONTEND_CLUSTER_IP = 1,
    SKIFF_FRONTEND_NODE_PORT = 2,     /* address NULL: every node address */
    SKIFF_FRONTEND_EXTERNAL_IP = 3,
    SKIFF_FRONTEND_LOAD_BALANCER = 4, /* status.loadBalancer.ingress[].ip */
} skiff_frontend_kind_t;

typedef struct skiff_proxy_frontend {
    skiff_frontend_kind_t kind;
    const char *address; /* "10.43.0.10", "fd00:43::a"; NULL for a NodePort on all */
    uint16_t port;
    /* externalTrafficPolicy: Local (only this node's endpoints, keep the
     * client address) applies to NodePort and LoadBalancer frontends. */
    int local_only;
} skiff_proxy_frontend_t;

/* One endpoint from an EndpointSlice, already filtered to those usable:
 * ready ones, or serving-and-terminating ones when none is ready. */
typedef struct skiff_proxy_endpoint {
    const char *address;
    uint16_t port;
    int local;           /* on this node (for local_only frontends) */
    int ready;           /* 0: serving but terminating, a fallback */
    const char *zone;    /* topology hint, or NULL */
} skiff_proxy_endpoint_t;

/* One port of one Service. */
typedef struct skiff_proxy_service {
    const char *namespace_;
    const char *name;
    const char *port_name;   /* spec.ports[].name, "" when unnamed */
    skiff_proxy_protocol_t protocol;
    const skiff_proxy_frontend_t *frontends;
    size_t n_frontends;
    const skiff_proxy_endpoint_t *endpoints; /* empty: reject (ICMP unreachable / RST) */
    size_t n_endpoints;
    /* sessionAffinity: ClientIP with its timeout, or 0. */
    int32_t affinity_timeout_s;
    /* internalTrafficPolicy: Local (ClusterIP frontends use local endpoints only) */
    int internal_local_only;
} skiff_proxy_service_t;

typedef struct skiff_proxy_state {
    const skiff_proxy_service_t *services;
    size_t n_services;
    const char *node_name;
    const char *const *node_addresses; /* NULL-terminated, for NodePorts */
} skiff_proxy_state_t;

/* status: 0 once the data path matches, or a SKIFF_E* code (retried). */
typedef void (*skiff_proxy_cb)(void *data, int status);

typedef struct skiff_proxy_vtable {
    uint32_t abi_version; /* SKIFF_PROXY_ABI */
    const char *mode;     /* "userspace", "nftables": shown in the agent's log */
    /* The smallest interval between two syncs the plugin wants (0: 1000). */
    int min_sync_ms;

    int (*open)(skiff_plugin_ctx_t *ctx, skiff_proxy_t **out);
    /* Makes the data path match state; cb runs exactly once. A new sync is
     * never started before the previous one's cb ran. */
    int (*sync)(skiff_proxy_t *px, const skiff_proxy_state_t *state, skiff_proxy_cb cb,
                void *data);
    /* Removes every rule the plugin made (the agent stops or changes mode). */
    int (*cleanup)(skiff_proxy_t *px, skiff_proxy_cb cb, void *data);
    void (*close)(skiff_proxy_t *px);
} skiff_proxy_vtable_t;

#ifdef __cplusplus
}
#endif
#endif
