/* skiff/runtime.h - the container runtime interface: what a runtime plugin
 * (runtime-process, runtime-oci) implements for the node agent.
 *
 * NEW AND NOT YET CALLED: no core code calls these functions yet. This
 * header is the contract the node agent and the first runtime plugins will
 * be written against; it may still change (its own SKIFF_RUNTIME_ABI is
 * bumped when it does) until a runtime plugin ships.
 *
 * The shape follows Kubernetes' CRI (k8s.io/cri-api, RuntimeService and
 * ImageService), cut down to what the kubelet loop uses:
 *   - a pod is a *sandbox* (shared network namespace, cgroup parent, log
 *     directory) holding *containers*; both are identified by ids the
 *     runtime makes up and that stay valid until removed;
 *   - container states are CRI's: created, running, exited, unknown;
 *   - a container's output goes to the file config.log_path in the CRI log
 *     format ("<RFC 3339 nano time> stdout|stderr F|P <line>"); the agent
 *     serves `kubectl logs` and `logs -f` from those files, so the runtime
 *     never streams logs itself (reopen_log rotates them);
 *   - exec and attach are byte streams (stdin in, stdout/stderr out, exit
 *     code at the end, a terminal size for tty sessions) that the agent
 *     joins to the API server's WebSocket;
 *   - stats are cumulative CPU time and current memory, as the summary API
 *     and metrics.k8s.io need.
 *
 * Objects and specs are passed as jansson values in the Kubernetes wire
 * format (the v1.Pod, the v1.Container) rather than as a second set of C
 * structs: the agent resolves what needs resolving (env from ConfigMaps,
 * volume paths) before the call and fills the small structs below.
 *
 * Every call is asynchronous on ctx->loop (skiff/loop.h): it returns 0 when
 * queued (its callback runs exactly once, possibly before the call returns)
 * or a negative SKIFF_E* code (the callback never runs). Strings handed to a
 * callback are valid during the callback only.
 *
 * A runtime plugin is a descriptor of kind SKIFF_PLUGIN_RUNTIME whose vtable
 * points to a skiff_runtime_vtable_t. */
#ifndef SKIFF_RUNTIME_H
#define SKIFF_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <skiff/errors.h>
#include <skiff/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKIFF_RUNTIME_ABI 1u

typedef struct skiff_runtime skiff_runtime_t; /* the plugin's, opaque to the agent */

typedef enum skiff_container_state {
    SKIFF_CONTAINER_CREATED = 0,
    SKIFF_CONTAINER_RUNNING = 1,
    SKIFF_CONTAINER_EXITED = 2,
    SKIFF_CONTAINER_UNKNOWN = 3,
} skiff_container_state_t;

typedef enum skiff_sandbox_state {
    SKIFF_SANDBOX_READY = 0,
    SKIFF_SANDBOX_NOTREADY = 1,
} skiff_sandbox_state_t;

/* One mount, resolved by the agent to a host path. */
typedef struct skiff_mount {
    const char *container_path;
    const char *host_path;
    int read_only;
} skiff_mount_t;

typedef struct skiff_sandbox_config {
    const char *pod_uid;
    const char *pod_name;
    const char *pod_namespace;
    uint32_t attempt;          /* 0, then +1 each time the sandbox is recreated */
    const char *hostname;
    const char *log_directory; /* containers' log files go under it */
    const char *cgroup_parent; /* NULL: the runtime's default */
    /* Network set up by the agent (CNI) before the call, or NULL for the
     * host network: the namespace path to join ("/var/run/netns/..."). */
    const char *netns_path;
    json_t *pod;               /* the v1.Pod, borrowed */
} skiff_sandbox_config_t;

typedef struct skiff_container_config {
    const char *name;          /* the container's name in the pod */
    uint32_t attempt;          /* restart count */
    const char *image;         /* the image reference as resolved by pull_image */
    const char *const *argv;   /* command then args, NULL-terminated, resolved */
    const char *const *env;    /* "NAME=value", NULL-terminated, resolved */
    const char *working_dir;   /* NULL: the image's */
    const skiff_mount_t *mounts;
    size_t n_mounts;
    const char *log_path;      /* where the CRI-format log goes */
    int tty, stdin_open, stdin_once;
    json_t *container;         /* the v1.Container, borrowed (resources, securityContext) */
} skiff_container_config_t;

typedef struct skiff_container_status {
    const char *id;
    const char *name;
    skiff_container_state_t state;
    int64_t created_at_ns, started_at_ns, finished_at_ns; /* 0 when not yet */
    int exit_code;
    const char *reason;        /* "Completed", "Error", "OOMKilled", or NULL */
    const char *message;
    const char *image_ref;     /* digest or id of the image run */
    const char *log_path;
} skiff_container_status_t;

typedef struct skiff_sandbox_status {
    const char *id;
    const char *pod_uid;
    skiff_sandbox_state_t state;
    int64_t created_at_ns;
    const char *const *pod_ips; /* NULL-terminated, first is primary; may be empty */
} skiff_sandbox_status_t;

typedef struct skiff_container_stats {
    const char *id;
    int64_t timestamp_ns;
    uint64_t cpu_usage_core_ns;       /* cumulative */
    uint64_t memory_working_set_bytes;
    uint64_t memory_rss_bytes;
    uint64_t writable_layer_bytes;    /* 0 when unknown */
} skiff_container_stats_t;

typedef struct skiff_image_info {
    const char *id;            /* content id ("sha256:...") */
    const char *const *tags;   /* NULL-terminated repo:tag list */
    uint64_t size_bytes;
} skiff_image_info_t;

/* Callbacks. status is 0 or a SKIFF_E* code; id is the new sandbox or
 * container id (create calls) or NULL. */
typedef void (*skiff_runtime_cb)(void *data, int status, const char *id);
typedef void (*skiff_sandbox_status_cb)(void *data, int status, const skiff_sandbox_status_t *s);
typedef void (*skiff_container_status_cb)(void *data, int status,
                                          const skiff_container_status_t *s);
/* Lists: n entries, valid during the call. */
typedef void (*skiff_container_list_cb)(void *data, int status, const skiff_container_status_t *s,
                                        size_t n);
typedef void (*skiff_stats_cb)(void *data, int status, const skiff_container_stats_t *s, size_t n);
typedef void (*skiff_image_cb)(void *data, int status, const skiff_image_info_t *img);

/* ---- exec and attach streams ------------------------------------------------ */

typedef struct skiff_stream skiff_stream_t; /* the plugin's */

enum { SKIFF_STREAM_STDOUT = 1, SKIFF_STREAM_STDERR = 2 };

/* What the agent hands the runtime for one session: output and the end. */
typedef struct skiff_stream_handler {
    /* A chunk of output on fd SKIFF_STREAM_STDOUT or SKIFF_STREAM_STDERR. */
    void (*on_output)(void *data, int fd, const char *buf, size_t len);
    /* The session is over: exit code of the command (exec) or container
     * (attach), or status < 0 when it failed. Runs exactly once, last. */
    void (*on_exit)(void *data, int status, int exit_code);
    void *data;
} skiff_stream_handler_t;

typedef struct skiff_stream_ops {
    /* stdin bytes; len 0 closes stdin. */
    int (*write_stdin)(skiff_stream_t *s, const char *buf, size_t len);
    /* New terminal size (tty sessions). */
    int (*resize)(skiff_stream_t *s, uint16_t cols, uint16_t rows);
    /* Ends the session early (the client went away); on_exit still runs. */
    void (*close)(skiff_stream_t *s);
} skiff_stream_ops_t;

struct skiff_stream {
    const skiff_stream_ops_t *ops;
};

/* ---- the vtable a runtime plugin exports -------------------------------------- */

typedef struct skiff_runtime_vtable {
    uint32_t abi_version; /* SKIFF_RUNTIME_ABI */
    /* "process", "oci": shown as the Node's containerRuntimeVersion
     * ("<name>://<version>"). */
    const char *runtime_name;

    int (*open)(skiff_plugin_ctx_t *ctx, skiff_runtime_t **out);
    void (*close)(skiff_runtime_t *rt);

    /* Sandboxes (CRI RunPodSandbox, StopPodSandbox, RemovePodSandbox,
     * PodSandboxStatus). stop kills every container of the sandbox; remove
     * forgets it (and its containers). */
    int (*run_sandbox)(skiff_runtime_t *rt, const skiff_sandbox_config_t *cfg, skiff_runtime_cb cb,
                       void *data);
    int (*stop_sandbox)(skiff_runtime_t *rt, const char *sandbox_id, skiff_runtime_cb cb,
                        void *data);
    int (*remove_sandbox)(skiff_runtime_t *rt, const char *sandbox_id, skiff_runtime_cb cb,
                          void *data);
    int (*sandbox_status)(skiff_runtime_t *rt, const char *sandbox_id, skiff_sandbox_status_cb cb,
                          void *data);

    /* Containers (CreateContainer, StartContainer, StopContainer with a
     * grace period in seconds after which SIGKILL follows, RemoveContainer,
     * ContainerStatus, ListContainers of one sandbox or all with NULL). */
    int (*create_container)(skiff_runtime_t *rt, const char *sandbox_id,
                            const skiff_container_config_t *cfg, skiff_runtime_cb cb, void *data);
    int (*start_container)(skiff_runtime_t *rt, const char *container_id, skiff_runtime_cb cb,
                           void *data);
    int (*stop_container)(skiff_runtime_t *rt, const char *container_id, int64_t timeout_s,
                          skiff_runtime_cb cb, void *data);
    int (*remove_container)(skiff_runtime_t *rt, const char *container_id, skiff_runtime_cb cb,
                            void *data);
    int (*container_status)(skiff_runtime_t *rt, const char *container_id,
                            skiff_container_status_cb cb, void *data);
    int (*list_containers)(skiff_runtime_t *rt, const char *sandbox_id,
                           skiff_container_list_cb cb, void *data);
    /* Reopen the container's log file (after the agent rotated it). */
    int (*reopen_log)(skiff_runtime_t *rt, const char *container_id, skiff_runtime_cb cb,
                      void *data);

    /* Streams (Exec, Attach). On 0 *out is the session; h runs until
     * on_exit. argv is NULL-terminated. */
    int (*exec)(skiff_runtime_t *rt, const char *container_id, const char *const *argv, int tty,
                int with_stdin, const skiff_stream_handler_t *h, skiff_stream_t **out);
    int (*attach)(skiff_runtime_t *rt, const char *container_id, int tty, int with_stdin,
                  const skiff_stream_handler_t *h, skiff_stream_t **out);

    /* ContainerStats / ListContainerStats (NULL id: every container). */
    int (*stats)(skiff_runtime_t *rt, const char *container_id, skiff_stats_cb cb, void *data);

    /* Images (PullImage with the pod's pull secrets as a JSON array of
     * dockerconfigjson auths or NULL, ImageStatus, RemoveImage). A runtime
     * without images (process) sets these to NULL. */
    int (*pull_image)(skiff_runtime_t *rt, const char *image, json_t *auths, skiff_image_cb cb,
                      void *data);
    int (*image_status)(skiff_runtime_t *rt, const char *image, skiff_image_cb cb, void *data);
    int (*remove_image)(skiff_runtime_t *rt, const char *image, skiff_runtime_cb cb, void *data);
} skiff_runtime_vtable_t;

#ifdef __cplusplus
}
#endif
#endif
