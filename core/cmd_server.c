/* core/cmd_server.c - `skiff server`: loads the store plugin, starts the API
 * server and its HTTP listener (HTTPS with --tls), writes the admin
 * kubeconfig, and shuts down cleanly on SIGINT/SIGTERM. */
#include "cmd_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <jansson.h>
#include <openssl/ssl.h>
#include <skiff/store.h>
#include <uv.h>

#include "admission/admission.h"
#include "api/apiserver.h"
#include "cli/options.h"
#include "controller/host.h"
#include "http/server.h"
#include "object/registry.h"
#include "plugin/loader.h"
#include "plugin/loaded.h"
#include "plugin/registry.h"
#include "plugin/sources.h"
#include "agent/local_nodes.h"
#include "profile/addons.h"
#include "profile/profile.h"
#include "util/duration.h"
#include "util/json_alloc.h"
#include "http/limits.h"
#include "security/audit.h"
#include "security/encrypting_store.h"
#include "security/encryption.h"
#include "security/tokens.h"
#include "security/pki.h"
#include "util/log.h"

typedef struct server_settings {
    /* profile.h: a profile fills the rest of these through the table */
    const char *profile;
    int print_profile;
    const char *service_cluster_ip_range;
    const char *cluster_cidr;
    int hollow_nodes;
    const char *data_dir;
    int port;
    const char *bind_address;
    int insecure_allow_remote;
    const char *kubeconfig;
    option_list_t plugin_dir;
    const char *plugins;
    const char *store;
    const char *log_level;
    int compaction_interval;
    const char *event_ttl;
    int64_t event_ttl_ms;
    int tls;
    int plain_http;
    const char *tls_san;
    const char *encryption_config;
    const char *token_auth_file;
    int anonymous_auth;
    const char *audit_log_path;
    const char *audit_policy_file;
    int max_inflight;
    int max_mutating_inflight;
    int client_qps;
    int client_burst;
    int max_watches_per_client;
    const char *controllers;
    const char *scheduler;
    const char *plugin_settings;
    int leader_lease_duration;
    const char *enable_admission;
    const char *disable_admission;
    const char *admission_settings;
} server_settings_t;

static const option_t server_options[] = {
    {"profile", OPT_STRING, "NAME|FILE", PROFILE_DEFAULT,
     "cluster profile: a built-in one (single-node, edge, bench) or a JSON or Lua file; "
     "options given here override it (--no-FLAG turns off a flag it sets)",
     offsetof(server_settings_t, profile)},
    {"print-profile", OPT_FLAG, NULL, NULL,
     "print the resolved configuration (profile and command line) as JSON and exit",
     offsetof(server_settings_t, print_profile)},
    {"data-dir", OPT_STRING, "DIR", "$HOME/.local/share/skiff",
     "where the store, the kubeconfig and other state live",
     offsetof(server_settings_t, data_dir)},
    {"port", OPT_INT, "N", "6443", "port of the API server (0 picks a free one)",
     offsetof(server_settings_t, port)},
    {"bind-address", OPT_STRING, "ADDR", "127.0.0.1",
     "address the API server listens on (with --plain-http: loopback only unless "
     "--insecure-allow-remote)",
     offsetof(server_settings_t, bind_address)},
    {"insecure-allow-remote", OPT_FLAG, NULL, NULL,
     "with --plain-http, allow a non-loopback --bind-address although the API then has no "
     "authentication",
     offsetof(server_settings_t, insecure_allow_remote)},
    {"kubeconfig", OPT_STRING, "FILE", "DATA_DIR/kubeconfig",
     "where to write the admin kubeconfig", offsetof(server_settings_t, kubeconfig)},
    {"plugin-dir", OPT_LIST, "DIR", NULL,
     "folder of plugins: every .so (and .lua) in it loads at start, and it is searched first "
     "for plugins named elsewhere; repeat it or separate folders with ':'",
     offsetof(server_settings_t, plugin_dir)},
    {"plugins", OPT_STRING, "NAME,...", NULL,
     "more plugins to load, by name (looked up in the plugin folders) or path; a profile sets "
     "this list", offsetof(server_settings_t, plugins)},
    {"store", OPT_STRING, "sqlite:PATH", "sqlite:DATA_DIR/store.db",
     "the store backend and its location", offsetof(server_settings_t, store)},
    {"compaction-interval", OPT_INT, "SECONDS", "300",
     "how much store history is kept for watches; older revisions are compacted",
     offsetof(server_settings_t, compaction_interval)},
    {"event-ttl", OPT_STRING, "DURATION", "1h",
     "how long an Event is kept after its last write (\"0\": for ever), as kube-apiserver's "
     "--event-ttl", offsetof(server_settings_t, event_ttl)},
    {"encryption-provider-config", OPT_STRING, "FILE", NULL,
     "EncryptionConfiguration (Kubernetes format) for data at rest; without it secrets are "
     "encrypted with AES-GCM under DATA_DIR/secrets.key",
     offsetof(server_settings_t, encryption_config)},
    {"anonymous-auth", OPT_FLAG, NULL, NULL,
     "accept requests without credentials as user system:anonymous (group "
     "system:unauthenticated); RBAC decides what it may do",
     offsetof(server_settings_t, anonymous_auth)},
    {"token-auth-file", OPT_STRING, "FILE", NULL,
     "static bearer tokens, one per line: token,user,uid,\"group1,group2\"",
     offsetof(server_settings_t, token_auth_file)},
    {"audit-log-path", OPT_STRING, "FILE", NULL,
     "write audit events (audit.k8s.io/v1 JSON lines) to FILE (\"-\": standard output)",
     offsetof(server_settings_t, audit_log_path)},
    {"audit-policy-file", OPT_STRING, "FILE", NULL,
     "audit Policy (Kubernetes format, YAML or JSON); default: every request at Metadata",
     offsetof(server_settings_t, audit_policy_file)},
    {"max-requests-inflight", OPT_INT, "N", "400",
     "read-only requests served at once (0: no limit); more get 429",
     offsetof(server_settings_t, max_inflight)},
    {"max-mutating-requests-inflight", OPT_INT, "N", "200",
     "mutating requests served at once (0: no limit); more get 429",
     offsetof(server_settings_t, max_mutating_inflight)},
    {"client-qps", OPT_INT, "N", "200",
     "requests per second per authenticated client (0: no limit); system:masters is exempt",
     offsetof(server_settings_t, client_qps)},
    {"client-burst", OPT_INT, "N", "400", "requests a client may send at once above client-qps",
     offsetof(server_settings_t, client_burst)},
    {"max-watches-per-client", OPT_INT, "N", "1000",
     "watches one authenticated client may hold open (0: no limit)",
     offsetof(server_settings_t, max_watches_per_client)},
    {"controllers", OPT_STRING, "LIST", "all",
     "controller plugins to run: all, none, or names (deployment,replicaset,...); -NAME "
     "leaves one out of all",
     offsetof(server_settings_t, controllers)},
    {"scheduler", OPT_STRING, "NAME", "scheduler-default",
     "scheduler plugin to run, or none", offsetof(server_settings_t, scheduler)},
    {"plugin-settings", OPT_STRING, "P.S=V;...", NULL,
     "settings of controller and scheduler plugins, e.g. "
     "\"scheduler-default.scoring-strategy=MostAllocated\" (separate several with ';')",
     offsetof(server_settings_t, plugin_settings)},
    {"leader-lease-duration", OPT_INT, "SECONDS", "15",
     "how long another server waits before taking over the controllers and the scheduler "
     "from a leader that stopped renewing its Lease",
     offsetof(server_settings_t, leader_lease_duration)},
    {"enable-admission-plugins", OPT_STRING, "LIST", NULL,
     "admission plugins to run besides the default ones (NamespaceLifecycle, LimitRanger, "
     "ServiceAccount, PodSecurity, Priority, DefaultStorageClass, ResourceQuota): built-in "
     "names or admission plugins from the plugin directories, comma-separated",
     offsetof(server_settings_t, enable_admission)},
    {"disable-admission-plugins", OPT_STRING, "LIST", NULL,
     "built-in admission plugins to turn off, comma-separated",
     offsetof(server_settings_t, disable_admission)},
    {"admission-plugin-settings", OPT_STRING, "P.S=V;...", NULL,
     "settings of admission plugins loaded from the plugin directories (separate several "
     "with ';')",
     offsetof(server_settings_t, admission_settings)},
    {"log-level", OPT_STRING, "LEVEL", "info", "error, warn, info or debug",
     offsetof(server_settings_t, log_level)},
    {"tls", OPT_FLAG, NULL, NULL,
     "serve HTTPS (the default): a cluster CA, a serving certificate and an admin client "
     "certificate are created in DATA_DIR/pki (kept across restarts) and embedded in the "
     "kubeconfig; clients authenticate with certificates signed by that CA",
     offsetof(server_settings_t, tls)},
    {"plain-http", OPT_FLAG, NULL, NULL,
     "development only: serve plain HTTP without authentication (every client is the "
     "administrator), on a loopback address only",
     offsetof(server_settings_t, plain_http)},
    {"tls-san", OPT_STRING, "NAME,...", NULL,
     "extra DNS names and IP addresses for the serving certificate (with --tls)",
     offsetof(server_settings_t, tls_san)},
    {"service-cluster-ip-range", OPT_STRING, "CIDR[,CIDR]", NULL,
     "Service address range(s), one per family; recorded and shown (profile, cluster-info "
     "addon), no allocator uses it yet",
     offsetof(server_settings_t, service_cluster_ip_range)},
    {"cluster-cidr", OPT_STRING, "CIDR[,CIDR]", NULL,
     "pod address range(s), one per family; recorded and shown, no allocator uses it yet",
     offsetof(server_settings_t, cluster_cidr)},
    {"hollow-nodes", OPT_INT, "N", "0",
     "run N simulated nodes (hollow-0...) inside the server, as skiff agent --hollow N does, "
     "for benchmarks", offsetof(server_settings_t, hollow_nodes)},
};

typedef struct server_state {
    uv_loop_t *loop;
    server_settings_t set;
    char data_dir[1024];
    char kubeconfig[1100];
    loaded_plugin_t *store_plugin;
    skiff_store_t *store;         /* what the API server uses (encrypting) */
    skiff_store_t *backend;       /* the plugin's store under it */
    encryption_t *enc;
    audit_t *audit;
    limits_t *limits;
    tokens_t *tokens;
    api_server_t *api;
    controller_host_t *host;      /* controller and scheduler plugins */
    plugin_sources_t *sources;    /* plugins of --plugins and --plugin-dir */
    const char *plugin_dirs[64];
    size_t n_plugin_dirs;
    char *plugin_dir_bufs[OPTION_LIST_MAX];
    profile_t *profile;
    addons_t *addons;             /* the profile's manifests */
    local_nodes_t *nodes;         /* --hollow-nodes */
    http_server_t *http;
    pki_t *pki; /* with --tls */
    uv_signal_t sigint, sigterm;
    uint64_t start_ns;
    int exit_code;
    int stopping;
} server_state_t;

static int mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(addr, "localhost") == 0) return 1;
    if (inet_pton(AF_INET, addr, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* With --tls: the cluster's CA and the admin's client certificate, as
 * kubeconfig's *-data fields (base64 of the PEM text). */
static int kubeconfig_add_tls(json_t *kc, const pki_t *pki)
{
    char *ca = pki_base64_new(pki_ca_pem(pki));
    char *cert = pki_base64_new(pki_admin_cert_pem(pki));
    char *key = pki_base64_new(pki_admin_key_pem(pki));
    json_t *cluster = json_object_get(json_array_get(json_object_get(kc, "clusters"), 0), "cluster");
    json_t *user = json_object_get(json_array_get(json_object_get(kc, "users"), 0), "user");
    int rc = -1;
    if (ca && cert && key && cluster && user &&
        json_object_set_new(cluster, "certificate-authority-data", json_string(ca)) == 0 &&
        json_object_set_new(user, "client-certificate-data", json_string(cert)) == 0 &&
        json_object_set_new(user, "client-key-data", json_string(key)) == 0)
        rc = 0;
    free(ca);
    free(cert);
    if (key) OPENSSL_cleanse(key, strlen(key));
    free(key);
    return rc;
}

static int write_kubeconfig(server_state_t *st, int port)
{
    const char *host = st->set.bind_address;
    const char *scheme = st->pki ? "https" : "http";
    char server[300];
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (strcmp(host, "::") == 0) host = "::1";
    if (strchr(host, ':'))
        snprintf(server, sizeof server, "%s://[%s]:%d", scheme, host, port);
    else
        snprintf(server, sizeof server, "%s://%s:%d", scheme, host, port);
    /* JSON is valid YAML: kubectl reads it as a kubeconfig. */
    json_t *kc = json_pack(
        "{s:s, s:s, s:[{s:s, s:{s:s}}], s:[{s:s, s:{}}], s:[{s:s, s:{s:s, s:s}}], s:s}",
        "apiVersion", "v1", "kind", "Config", "clusters", "name", "skiff", "cluster", "server",
        server, "users", "name", "skiff-admin", "user", "contexts", "name", "skiff", "context",
        "cluster", "skiff", "user", "skiff-admin", "current-context", "skiff");
    if (kc && st->pki && kubeconfig_add_tls(kc, st->pki) != 0) {
        json_decref(kc);
        kc = NULL;
    }
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", st->kubeconfig);
    /* created 0600 before anything is written: it may hold a private key */
    unlink(tmp);
    int fd = kc ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    int rc = fd < 0 || fchmod(fd, 0600) != 0 || json_dumpfd(kc, fd, JSON_INDENT(2)) != 0;
    if (fd >= 0 && close(fd) != 0) rc = -1;
    json_decref(kc);
    if (rc != 0 || rename(tmp, st->kubeconfig) != 0) {
        log_error("server", "cannot write the kubeconfig %s: %s", st->kubeconfig,
                  strerror(errno));
        return -1;
    }
    return 0;
}

/* Encrypted resources are rewritten even when unchanged (see apiserver.h). */
static int rewrite_encrypted(void *data, const char *key)
{
    server_state_t *st = data;
    char group[128], resource[128];
    /* "/registry/<group>/<resource>/..." */
    if (sscanf(key, "/registry/%127[^/]/%127[^/]/", group, resource) != 2) return 0;
    return encryption_applies(st->enc, strcmp(group, "core") == 0 ? "" : group, resource);
}

static void on_http_request(void *data, const api_request_t *req, api_response_t *resp)
{
    server_state_t *st = data;
    api_server_handle(st->api, req, resp);
}

static void on_store_closed(void *data)
{
    server_state_t *st = data;
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    /* last: every request (and its audit event) has ended */
    if (st->audit) audit_close(st->audit, NULL, NULL);
    st->audit = NULL;
}

static int open_audit_and_limits(server_state_t *st)
{
    char err[512];
    if (st->set.audit_log_path) {
        if (audit_open(st->loop, st->set.audit_log_path, st->set.audit_policy_file, &st->audit,
                       err, sizeof err) != 0) {
            log_error("server", "audit log: %s", err);
            return -1;
        }
        log_info("server", "audit log: %s", st->set.audit_log_path);
    } else if (st->set.audit_policy_file) {
        log_error("server", "--audit-policy-file needs --audit-log-path");
        return -1;
    }
    /* ServiceAccount tokens are signed with DATA_DIR/pki/sa.key */
    char pkidir[1100], sakey[1200];
    snprintf(pkidir, sizeof pkidir, "%s/pki", st->data_dir);
    snprintf(sakey, sizeof sakey, "%s/sa.key", pkidir);
    if ((mkdir(pkidir, 0700) != 0 && errno != EEXIST) ||
        tokens_new(sakey, st->set.token_auth_file,
                   "https://kubernetes.default.svc.cluster.local", &st->tokens, err,
                   sizeof err) != 0) {
        log_error("server", "tokens: %s", errno && !err[0] ? strerror(errno) : err);
        return -1;
    }
    limits_opts_t lo = {.rate = st->set.client_qps,
                        .burst = st->set.client_burst,
                        .max_mutating = (unsigned)st->set.max_mutating_inflight,
                        .max_readonly = (unsigned)st->set.max_inflight,
                        .max_watches_per_user = (unsigned)st->set.max_watches_per_client};
    if (limits_new(&lo, &st->limits) != 0) {
        log_error("server", "request limits: invalid settings");
        return -1;
    }
    return 0;
}

static void on_api_freed(void *data)
{
    server_state_t *st = data;
    st->api = NULL;
    /* the encrypting wrapper closes the plugin's store under it */
    skiff_store_t *top = st->store ? st->store : st->backend;
    st->store = st->backend = NULL;
    if (top) top->vt->close(top, on_store_closed, st);
    else on_store_closed(st);
}

static void on_http_stopped(void *data)
{
    server_state_t *st = data;
    st->http = NULL;
    if (st->api) api_server_free(st->api, on_api_freed, st);
    else on_api_freed(st);
}

static void on_host_stopped(void *data)
{
    server_state_t *st = data;
    if (st->http) http_server_stop(st->http, on_http_stopped, st);
    else on_http_stopped(st);
}

static void on_nodes_stopped(void *data)
{
    server_state_t *st = data;
    controller_host_stop(st->host, on_host_stopped, st);
}

static void on_addons_stopped(void *data)
{
    server_state_t *st = data;
    st->addons = NULL;
    local_nodes_stop(st->nodes, on_nodes_stopped, st);
}

/* Stop everything in order: addons, in-server hollow nodes, controllers
 * (their Leases released), listener, API server, store, then the signal
 * handles, after which the loop has nothing left and uv_run returns. */
static void begin_shutdown(server_state_t *st)
{
    if (st->stopping) return;
    st->stopping = 1;
    uv_signal_stop(&st->sigint);
    uv_signal_stop(&st->sigterm);
    addons_stop(st->addons, on_addons_stopped, st);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_state_t *st = h->data;
    log_info("server", "received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    begin_shutdown(st);
}

static void on_api_ready(void *data, int status)
{
    server_state_t *st = data;
    if (status != 0) {
        log_error("server", "the API server could not start: %s", skiff_strerror(status));
        st->exit_code = 1;
        begin_shutdown(st);
        return;
    }
    if (st->stopping) return;
    /* --plugins and --plugin-dir: failures are recorded, never fatal */
    plugin_sources_opts_t so = {.loop = st->loop, .data_dir = st->data_dir,
                                .names = st->set.plugins, .dirs = st->plugin_dirs,
                                .ndirs = st->n_plugin_dirs};
    if (plugin_sources_load(&so, &st->sources) != 0) {
        log_error("server", "out of memory loading plugins");
        st->exit_code = 1;
        begin_shutdown(st);
        return;
    }
    size_t nc = 0, ns = 0;
    loaded_plugin_t **ctl = plugin_sources_take(st->sources, SKIFF_PLUGIN_CONTROLLER, &nc);
    loaded_plugin_t **sch = plugin_sources_take(st->sources, SKIFF_PLUGIN_SCHEDULER, &ns);
    loaded_plugin_t *extra[nc + ns + 1];
    for (size_t i = 0; i < nc; i++) extra[i] = ctl[i];
    for (size_t i = 0; i < ns; i++) extra[nc + i] = sch[i];
    free(ctl);
    free(sch);
    /* Admission plugins found in folders stay loaded but out of the chain
     * (the chain, built at start, runs those --enable-admission-plugins
     * names, in that order); plugin_sources_settle says so in the list. */
    controller_host_opts_t co = {.loop = st->loop,
                                 .extra = extra,
                                 .n_extra = nc + ns,
                                 .api = st->api,
                                 .data_dir = st->data_dir,
                                 .controllers = st->set.controllers,
                                 .scheduler = st->set.scheduler,
                                 .settings = st->set.plugin_settings,
                                 .lease_duration_ms = st->set.leader_lease_duration * 1000,
                                 .renew_deadline_ms = st->set.leader_lease_duration * 1000 * 2 / 3,
                                 .retry_period_ms = st->set.leader_lease_duration * 1000 / 7};
    if (controller_host_start(&co, &st->host) != 0) {
        st->exit_code = 1;
        begin_shutdown(st);
        return;
    }
    plugin_sources_settle(st->sources);
    int rc;
    json_t *vars = profile_addon_vars(st->profile, server_options,
                                      sizeof server_options / sizeof *server_options, &st->set);
    addons_opts_t ad = {.loop = st->loop, .api = st->api,
                        .paths = profile_addons(st->profile), .vars = vars};
    rc = addons_start(&ad, &st->addons);
    json_decref(vars);
    if (rc != 0) log_error("server", "addons: out of memory; none applied");
    local_nodes_start(st->loop, st->api, st->set.hollow_nodes, &st->nodes);
    double ms = (double)(uv_hrtime() - st->start_ns) / 1e6;
    log_info("server", "controllers: %s", controller_host_summary(st->host));
    log_info("server", "ready in %.1f ms; point kubectl at it with: export KUBECONFIG=%s", ms,
             st->kubeconfig);
}

static int parse_log_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static int open_store(server_state_t *st)
{
    const char *spec = st->set.store;
    char path[1100];
    const char *plugin = "storage-sqlite";
    if (!spec) {
        snprintf(path, sizeof path, "%s/store.db", st->data_dir);
    } else if (strncmp(spec, "sqlite:", 7) == 0) {
        snprintf(path, sizeof path, "%s", spec + 7);
    } else if (strncmp(spec, "etcd:", 5) == 0) {
        plugin = "storage-etcd";
        snprintf(path, sizeof path, "%s", spec + 5);
    } else {
        log_error("server", "--store %s: expected sqlite:PATH or etcd:URL[,URL...]", spec);
        return -1;
    }
    char err[1024];
    st->store_plugin = plugin_load(plugin, st->loop, st->data_dir, err, sizeof err);
    if (!st->store_plugin) {
        log_error("server", "%s", err);
        return -1;
    }
    const skiff_plugin_t *d = st->store_plugin->desc;
    if (d->kind != SKIFF_PLUGIN_STORAGE || !d->vtable) {
        log_error("server", "plugin %s is not a storage plugin", d->name);
        return -1;
    }
    if (plugin_start(st->store_plugin, err, sizeof err) != 0) {
        log_error("server", "%s", err);
        return -1;
    }
    plugin_registry_add(d->name, st->store_plugin->path, st->store_plugin,
                        plugin_registry_origin_of(st->store_plugin->path), PLUGIN_REC_STARTED,
                        NULL);
    const skiff_store_vtable_t *vt = d->vtable;
    if (!vt->open || !vt->close || !vt->create || !vt->update || !vt->remove || !vt->get ||
        !vt->range || !vt->watch || !vt->watch_cancel || !vt->compact || !vt->revision ||
        !vt->compacted_revision) {
        log_error("server", "plugin %s does not implement the whole store interface "
                  "(every entry of skiff_store_vtable_t is required)", d->name);
        return -1;
    }
    int rc = vt->open(&st->store_plugin->ctx, path, &st->backend);
    if (rc != 0) {
        log_error("server", "cannot open the store at %s: %s", path, skiff_strerror(rc));
        return -1;
    }
    /* Secrets (or what the encryption configuration names) are sealed on
     * their way into the store. */
    rc = encryption_load(st->data_dir, st->set.encryption_config, &st->enc, err, sizeof err);
    if (rc != 0) {
        log_error("server", "encryption at rest: %s", err);
        return -1;
    }
    if (encrypting_store_new(st->backend, st->enc, &st->store) != 0) return -1;
    log_info("server", "data at rest: %s", encryption_source(st->enc));
    return 0;
}

/* --tls: the PKI in DATA_DIR/pki and the listener's TLS context. The
 * names in --tls-san are DNS names or IP addresses, comma-separated. */
static int setup_tls(server_state_t *st, SSL_CTX **ctx)
{
    enum { MAX_SANS = 32 };
    const char *names[MAX_SANS + 2] = {0}, *ips[MAX_SANS + 2] = {0};
    size_t nn = 0, ni = 0;
    char sans[1024] = "";
    if (st->set.tls_san) snprintf(sans, sizeof sans, "%s", st->set.tls_san);
    char *save = NULL;
    for (char *tok = strtok_r(sans, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        unsigned char a[16];
        int is_ip = inet_pton(AF_INET, tok, a) == 1 || inet_pton(AF_INET6, tok, a) == 1;
        if ((is_ip ? ni : nn) >= MAX_SANS) {
            log_error("server", "--tls-san: at most %d names and %d addresses", MAX_SANS,
                      MAX_SANS);
            return -1;
        }
        if (is_ip) ips[ni++] = tok;
        else names[nn++] = tok;
    }
    /* the address we listen on, when it is a specific one, is a name too */
    const char *bind = st->set.bind_address;
    unsigned char a[16];
    if ((inet_pton(AF_INET, bind, a) == 1 || inet_pton(AF_INET6, bind, a) == 1) &&
        strcmp(bind, "0.0.0.0") != 0 && strcmp(bind, "::") != 0)
        ips[ni++] = bind;
    char dir[1100], err[512];
    snprintf(dir, sizeof dir, "%s/pki", st->data_dir);
    pki_opts_t po = {.extra_names = names, .extra_ips = ips};
    int rc = pki_ensure(dir, &po, &st->pki, err, sizeof err);
    if (rc != 0) {
        log_error("server", "--tls: %s", err[0] ? err : skiff_strerror(rc));
        return -1;
    }
    int wrote = pki_written(st->pki);
    if (wrote)
        log_info("server", "TLS: new%s%s%s in %s", (wrote & PKI_WROTE_CA) ? " cluster CA," : "",
                 (wrote & PKI_WROTE_SERVER) ? " serving certificate," : "",
                 (wrote & PKI_WROTE_ADMIN) ? " admin certificate," : "", dir);
    *ctx = pki_server_ctx_new(st->pki, err, sizeof err);
    if (!*ctx) {
        log_error("server", "--tls: %s", err);
        return -1;
    }
    return 0;
}

/* What the options table cannot check by type alone. */
static int server_check_profile(server_state_t *st)
{
    char err[512];
    if (profile_check_ranges("service-cluster-ip-range", st->set.service_cluster_ip_range, err,
                             sizeof err) != 0 ||
        profile_check_ranges("cluster-cidr", st->set.cluster_cidr, err, sizeof err) != 0) {
        fprintf(stderr, "skiff server: %s\n", err);
        return -1;
    }
    return 0;
}

/* Ends a start refused before anything runs: says why (fmt, when not NULL,
 * after "skiff server: "), frees what was parsed, and gives the exit
 * status 2. */
__attribute__((format(printf, 2, 3))) static int refuse(server_state_t *st, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs("skiff server: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    profile_free(st->profile);
    free(st);
    return 2;
}

/* libuv's thread pool (store commits, encodings of stored objects,
 * packing of the watch cache, file writes) gets one thread per CPU,
 * between 2 and libuv's default of 4, unless UV_THREADPOOL_SIZE says
 * otherwise: more threads than CPUs only take turns with the event loop.
 * Measured on 2 vCPUs: 2 threads bound 3-9% more pods per second than 4.
 * Before the pool starts (its first job). */
static void size_thread_pool(void)
{
    if (getenv("UV_THREADPOOL_SIZE")) return;
    unsigned n = uv_available_parallelism();
    char v[16];
    snprintf(v, sizeof v, "%u", n < 2 ? 2 : n > 4 ? 4 : n);
    setenv("UV_THREADPOOL_SIZE", v, 0);
}

int cmd_server(int argc, char **argv)
{
#if defined(__GLIBC__) && defined(M_MXFAST)
    /* JSON trees are many small blocks freed in bursts; with glibc's fast
     * bins every larger allocation that follows first consolidates them
     * all (malloc_consolidate was 5% of the server's time binding pods).
     * Without fast bins the thread cache still serves small sizes. */
    mallopt(M_MXFAST, 0);
#endif
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    /* Large blocks (over 128 KiB) come from mmap and go back to the system
     * when freed. glibc otherwise raises that threshold to the largest
     * block freed so far, and the watch cache's dictionary training (10 MB
     * at a time) and index tables growing then leave their space behind
     * in the heap: 6 MB of resident memory with 20,000 ConfigMaps (42 MB
     * against 36), for no measured change in pods bound per second.
     * MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES in the environment still
     * decide. */
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (!getenv("MALLOC_MMAP_THRESHOLD_") && !(tunables && strstr(tunables, "mmap_threshold")))
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    json_alloc_install();
    size_thread_pool();
    server_state_t *st = calloc(1, sizeof *st);
    if (!st) return 1;
    st->start_ns = uv_hrtime();
    st->set.port = 6443;
    st->set.max_inflight = 400;
    st->set.max_mutating_inflight = 200;
    st->set.client_qps = 200;
    st->set.client_burst = 400;
    st->set.max_watches_per_client = 1000;
    st->set.controllers = "all";
    st->set.scheduler = "scheduler-default";
    st->set.leader_lease_duration = 15;
    st->set.compaction_interval = 300;
    st->set.event_ttl = "1h";
    st->set.bind_address = "127.0.0.1";
    st->set.log_level = "info";
    /* built-in defaults < profile < command line */
    int rc = profile_parse_args("skiff server",
                                "Runs the control plane: API server on the embedded store.",
                                server_options, sizeof server_options / sizeof *server_options,
                                argc, argv, &st->set, sizeof st->set, &st->profile);
    if (rc != 0) {
        profile_free(st->profile);
        free(st);
        return rc > 0 ? 0 : 2;
    }
    if (server_check_profile(st) != 0) return refuse(st, NULL);
    if (st->set.leader_lease_duration < 1)
        return refuse(st, "--leader-lease-duration must be at least 1 second");
    /* a TTL under a millisecond would read as 0, which keeps Events for ever */
    if (duration_parse_ms(st->set.event_ttl, &st->set.event_ttl_ms) != 0 ||
        (st->set.event_ttl_ms == 0 && strpbrk(st->set.event_ttl, "123456789")))
        return refuse(st,
                      "--event-ttl must be a duration of at least 1ms such as 1h, 30m or 90s (0: "
                      "Events never expire), not \"%s\"",
                      st->set.event_ttl);
    int level = parse_log_level(st->set.log_level);
    if (level < 0) return refuse(st, "--log-level must be error, warn, info or debug");
    log_set_level(level);
    log_info("server", "profile %s (%s)", profile_name(st->profile), profile_origin(st->profile));
    if (st->set.tls && st->set.plain_http)
        return refuse(st, "--tls and --plain-http exclude each other");
    st->set.tls = !st->set.plain_http;
    if (st->set.plain_http && !is_loopback(st->set.bind_address) &&
        !st->set.insecure_allow_remote)
        return refuse(st,
                      "refusing to listen on %s: with --plain-http the API has no "
                      "authentication; use a loopback address, drop --plain-http (HTTPS is "
                      "the default), or pass --insecure-allow-remote",
                      st->set.bind_address);
    if (st->set.print_profile) {
        json_t *r = profile_resolved(st->profile, server_options,
                                     sizeof server_options / sizeof *server_options, &st->set);
        json_dumpf(r, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(r);
        profile_free(st->profile);
        free(st);
        return 0;
    }
    if (st->set.data_dir) {
        snprintf(st->data_dir, sizeof st->data_dir, "%s", st->set.data_dir);
    } else {
        const char *home = getenv("HOME");
        snprintf(st->data_dir, sizeof st->data_dir, "%s/.local/share/skiff", home ? home : ".");
    }
    if (mkdir_p(st->data_dir) != 0) {
        fprintf(stderr, "skiff server: cannot create the data directory %s: %s\n", st->data_dir,
                strerror(errno));
        profile_free(st->profile);
        free(st);
        return 1;
    }
    if (st->set.kubeconfig)
        snprintf(st->kubeconfig, sizeof st->kubeconfig, "%s", st->set.kubeconfig);
    else
        snprintf(st->kubeconfig, sizeof st->kubeconfig, "%s/kubeconfig", st->data_dir);

    /* everything the server writes (store, keys, audit log) is its own */
    umask(077);
    st->loop = uv_default_loop();
    st->exit_code = 0;
    /* a peer that went away must cost its connection, not the process */
    signal(SIGPIPE, SIG_IGN);
    if (registry_init() != 0) {
        log_error("server", "the built-in kind registry failed to load");
        profile_free(st->profile);
        free(st);
        return 1;
    }
    /* Signals first: every later failure shuts down through begin_shutdown. */
    uv_signal_init(st->loop, &st->sigint);
    uv_signal_init(st->loop, &st->sigterm);
    st->sigint.data = st->sigterm.data = st;
    uv_signal_start(&st->sigint, on_signal, SIGINT);
    uv_signal_start(&st->sigterm, on_signal, SIGTERM);
    for (int i = 0; i < st->set.plugin_dir.n; i++)
        st->n_plugin_dirs = plugin_sources_split_dirs(
            st->set.plugin_dir.v[i], &st->plugin_dir_bufs[i], st->plugin_dirs, st->n_plugin_dirs,
            sizeof st->plugin_dirs / sizeof *st->plugin_dirs);
    for (size_t i = 0; i < st->n_plugin_dirs; i++) plugin_loader_add_dir(st->plugin_dirs[i]);
    if (open_store(st) != 0) goto fail;
    if (open_audit_and_limits(st) != 0) goto fail;
    admission_chain_t *admission = NULL;
    char aerr[1024];
    if (admission_chain_new(st->loop, st->data_dir, st->set.enable_admission,
                            st->set.disable_admission, st->set.admission_settings, &admission,
                            aerr, sizeof aerr) != 0) {
        log_error("server", "admission: %s", aerr);
        goto fail;
    }
    log_info("server", "admission plugins: %s", admission_chain_summary(admission));
    api_server_opts_t ao = {.loop = st->loop,
                            .store = st->store,
                            .compaction_interval_s = st->set.compaction_interval,
                            .event_ttl_ms = st->set.event_ttl_ms,
                            .rewrite_unchanged = rewrite_encrypted,
                            .rewrite_unchanged_data = st,
                            .audit = st->audit,
                            .limits = st->limits,
                            .tokens = st->tokens,
                            .anonymous = st->set.anonymous_auth,
                            .any_host = st->set.insecure_allow_remote,
                            .admission = admission};
    if (api_server_new(&ao, on_api_ready, st, &st->api) != 0) goto fail;
    if (st->stopping) goto run; /* boot failed at once */
    SSL_CTX *tls_ctx = NULL;
    if (st->set.tls && setup_tls(st, &tls_ctx) != 0) goto fail;
    if (st->pki) api_server_set_signer(st->api, st->pki);
    http_server_opts_t ho = {.host = st->set.bind_address,
                             .port = st->set.port,
                             .max_body = 3u * 1024u * 1024u,
                             .max_header = 1024u * 1024u,
                             .handler = on_http_request,
                             .handler_data = st,
                             .tls_ctx = tls_ctx};
    rc = http_server_start(st->loop, &ho, &st->http);
    SSL_CTX_free(tls_ctx); /* the server holds its own reference */
    if (rc != 0) {
        log_error("server", "cannot listen on %s:%d: %s", st->set.bind_address, st->set.port,
                  uv_strerror(rc));
        goto fail;
    }
    int port = http_server_port(st->http);
    if (write_kubeconfig(st, port) != 0) goto fail;
    log_info("server", "API server listening on %s:%d (%s), data in %s",
             st->set.bind_address, port, st->pki ? "HTTPS" : "plain HTTP", st->data_dir);
    goto run;
fail:
    st->exit_code = 1;
    begin_shutdown(st);
run:
    uv_run(st->loop, UV_RUN_DEFAULT);
    plugin_registry_clear();
    controller_host_free(st->host);
    plugin_sources_free(st->sources);
    plugin_loaded_unload_owned(); /* plugins loaded by name for another one */
    if (st->store_plugin) plugin_unload(st->store_plugin);
    plugin_loader_reset_dirs();
    for (int i = 0; i < OPTION_LIST_MAX; i++) free(st->plugin_dir_bufs[i]);
    encryption_free(st->enc);
    limits_free(st->limits);
    tokens_free(st->tokens);
    local_nodes_free(st->nodes);
    pki_free(st->pki);
    uv_loop_close(st->loop);
    registry_shutdown();
    int code = st->exit_code;
    profile_free(st->profile);
    free(st);
    return code;
}
