/* skiff/cloud.h - the cloud provider interface: what a cloud plugin
 * (cloud-local, or one for a real provider) implements so the cloud
 * controllers can give LoadBalancer Services their addresses and Nodes
 * their addresses and provider identity.
 *
 * NEW AND NOT YET CALLED: no core code calls these functions yet. This
 * header is the contract the service and node cloud controllers and the
 * first cloud plugin will be written against; it may still change
 * (SKIFF_CLOUD_ABI is bumped when it does) until a cloud plugin ships.
 *
 * The shape is Kubernetes' cloud-provider interfaces (k8s.io/cloud-provider):
 *   - LoadBalancer: get / ensure (create or update) / ensure deleted, for
 *     a Service of type LoadBalancer and the nodes that may carry its
 *     traffic; the answer fills status.loadBalancer.ingress;
 *   - InstancesV2: whether a node's machine still exists, whether it is
 *     shut down, and its metadata (providerID, instance type, addresses,
 *     zone and region) for spec.providerID, status.addresses and the
 *     topology.kubernetes.io labels.
 * Routes and Clusters are left out: CNI and the profile cover them here.
 * Either group may be NULL in the vtable when the provider lacks it.
 *
 * Every call is asynchronous on ctx->loop; the Service and Node are
 * borrowed jansson values in the wire format; results handed to callbacks
 * are valid during the callback only. */
#ifndef SKIFF_CLOUD_H
#define SKIFF_CLOUD_H

#include <stddef.h>

#include <jansson.h>
#include <skiff/errors.h>
#include <skiff/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKIFF_CLOUD_ABI 1u

typedef struct skiff_cloud skiff_cloud_t; /* the plugin's */

/* status.loadBalancer.ingress[] entry. */
typedef struct skiff_lb_ingress {
    const char *ip;       /* or NULL */
    const char *hostname; /* or NULL */
} skiff_lb_ingress_t;

/* exists: 0 when the provider has no balancer for the Service (get). */
typedef void (*skiff_lb_cb)(void *data, int status, int exists, const skiff_lb_ingress_t *ingress,
                            size_t n);
typedef void (*skiff_cloud_cb)(void *data, int status);

typedef struct skiff_cloud_lb_ops {
    /* The balancer's name for a Service, as GetLoadBalancerName: stable
     * across updates (usually from the Service's uid), into buf. */
    int (*name)(skiff_cloud_t *c, json_t *service, char *buf, size_t len);
    int (*get)(skiff_cloud_t *c, json_t *service, skiff_lb_cb cb, void *data);
    /* Creates or updates the balancer so it forwards the Service's ports to
     * the NodePorts of nodes (a JSON array of v1.Node, borrowed). */
    int (*ensure)(skiff_cloud_t *c, json_t *service, json_t *nodes, skiff_lb_cb cb, void *data);
    /* Only the set of nodes changed. */
    int (*update)(skiff_cloud_t *c, json_t *service, json_t *nodes, skiff_cloud_cb cb, void *data);
    /* Releases the balancer and its addresses; 0 also when none existed. */
    int (*ensure_deleted)(skiff_cloud_t *c, json_t *service, skiff_cloud_cb cb, void *data);
} skiff_cloud_lb_ops_t;

/* v1.NodeAddress: type "InternalIP", "ExternalIP", "Hostname", ... */
typedef struct skiff_node_address {
    const char *type;
    const char *address;
} skiff_node_address_t;

typedef struct skiff_instance_metadata {
    const char *provider_id;   /* "local://node-1" */
    const char *instance_type; /* node.kubernetes.io/instance-type, or NULL */
    const skiff_node_address_t *addresses;
    size_t n_addresses;
    const char *zone;          /* topology.kubernetes.io/zone, or NULL */
    const char *region;        /* topology.kubernetes.io/region, or NULL */
} skiff_instance_metadata_t;

/* answer: 1 or 0 (exists / shut down). */
typedef void (*skiff_instance_bool_cb)(void *data, int status, int answer);
typedef void (*skiff_instance_meta_cb)(void *data, int status, const skiff_instance_metadata_t *m);

typedef struct skiff_cloud_instance_ops {
    int (*exists)(skiff_cloud_t *c, json_t *node, skiff_instance_bool_cb cb, void *data);
    int (*shutdown)(skiff_cloud_t *c, json_t *node, skiff_instance_bool_cb cb, void *data);
    int (*metadata)(skiff_cloud_t *c, json_t *node, skiff_instance_meta_cb cb, void *data);
} skiff_cloud_instance_ops_t;

typedef struct skiff_cloud_vtable {
    uint32_t abi_version;  /* SKIFF_CLOUD_ABI */
    const char *provider;  /* "local": the scheme of providerIDs */
    int (*open)(skiff_plugin_ctx_t *ctx, skiff_cloud_t **out);
    void (*close)(skiff_cloud_t *c);
    const skiff_cloud_lb_ops_t *load_balancers;  /* NULL: no LoadBalancer support */
    const skiff_cloud_instance_ops_t *instances; /* NULL: nodes keep their own addresses */
} skiff_cloud_vtable_t;

#ifdef __cplusplus
}
#endif
#endif
