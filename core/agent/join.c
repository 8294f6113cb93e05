/* core/agent/join.c - TLS bootstrapping of the agent's nodes (see
 * join.h): discovery of the CA by its pinned hash, a CSR per node with the
 * bootstrap token, kubeconfigs with the signed credentials. It must not
 * send the token anywhere before the server has proven it holds the CA
 * the hash names. */
#include "agent/join.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "http/client.h"
#include "http/tls.h"
#include "kubeconfig.h"
#include "util/base64.h"
#include "util/log.h"

#define KUBELET_SIGNER "kubernetes.io/kube-apiserver-client-kubelet"
#define POLL_MS 300
/* connections the CSRs of many nodes are spread over */
#define JOIN_CONNECTIONS 8

void agent_join_kubeconfig_path(const char *data_dir, const char *node, char *buf, size_t n)
{
    snprintf(buf, n, "%s/nodes/%s/kubeconfig", data_dir, node);
}

static int spki_hash(X509 *x, char *out, size_t outlen)
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (n <= 0) return -1;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(der, (size_t)n, d);
    OPENSSL_free(der);
    size_t o = (size_t)snprintf(out, outlen, "sha256:");
    for (int i = 0; i < SHA256_DIGEST_LENGTH && o + 2 < outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%02x", d[i]);
    return 0;
}

int agent_ca_cert_hash(const char *ca_pem, char *out, size_t outlen)
{
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!x) return -1;
    int rc = spki_hash(x, out, outlen);
    X509_free(x);
    return rc;
}

static char *pem_of_cert(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        out = strndup(data, (size_t)n);
    }
    BIO_free(b);
    return out;
}

/* "https://IP:PORT" into host and port */
static int parse_server(const char *url, char *host, size_t hostlen, int *port)
{
    if (!url || strncmp(url, "https://", 8) != 0) return -1;
    const char *p = url + 8;
    const char *end;
    if (*p == '[') {
        end = strchr(p, ']');
        if (!end || end[1] != ':') return -1;
        snprintf(host, hostlen, "%.*s", (int)(end - p - 1), p + 1);
        end++;
    } else {
        end = strchr(p, ':');
        if (!end) return -1;
        snprintf(host, hostlen, "%.*s", (int)(end - p), p);
    }
    char *stop;
    long v = strtol(end + 1, &stop, 10);
    if (v <= 0 || v > 65535 || (*stop && strcmp(stop, "/") != 0)) return -1;
    *port = (int)v;
    unsigned char a[16];
    if (strcmp(host, "localhost") != 0 && inet_pton(AF_INET, host, a) != 1 &&
        inet_pton(AF_INET6, host, a) != 1)
        return -1;
    return 0;
}

static int connect_to(const char *host, int port, char *err, size_t errlen)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve %s", host);
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    struct timeval tv = {.tv_sec = 10};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Discovery: the CA whose key hash is want, from the server's chain, once
 * it verifies the serving certificate for host. New PEM text in *ca_pem. */
static int discover_ca(const char *host, int port, const char *want, char **ca_pem, char *err,
                       size_t errlen)
{
    *ca_pem = NULL;
    int fd = connect_to(host, port, err, errlen);
    if (fd < 0) return -1;
    int rc = -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *vc = NULL;
    if (!ssl) {
        snprintf(err, errlen, "cannot create a TLS context");
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* nothing is trusted yet: the chain is checked against the hash below */
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        snprintf(err, errlen, "TLS handshake with %s:%d failed (is it a Skiff server with --tls?)",
                 host, port);
        goto out;
    }
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    X509 *ca = NULL;
    char seen[600] = "";
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        char h[80];
        if (x == leaf || X509_check_ca(x) < 1 || spki_hash(x, h, sizeof h) != 0) continue;
        if (strcasecmp(h, want) == 0) {
            ca = x;
            break;
        }
        size_t l = strlen(seen);
        snprintf(seen + l, sizeof seen - l, "%s%s", l ? ", " : "", h);
    }
    if (!ca) {
        snprintf(err, errlen,
                 "the server's CA does not match --ca-cert-hash %s (it presented %s); the token "
                 "was not sent. Check the hash `skiff token create` printed, or that --server "
                 "names the right cluster",
                 want, seen[0] ? seen : "no CA certificate");
        goto out;
    }
    /* the CA must have signed the certificate the server proved it holds */
    store = X509_STORE_new();
    vc = X509_STORE_CTX_new();
    if (!store || !vc || X509_STORE_add_cert(store, ca) != 1 ||
        X509_STORE_CTX_init(vc, store, leaf, chain) != 1) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(vc);
    if (strcmp(host, "localhost") == 0) X509_VERIFY_PARAM_set1_host(param, host, 0);
    else X509_VERIFY_PARAM_set1_ip_asc(param, host);
    if (X509_verify_cert(vc) != 1) {
        snprintf(err, errlen,
                 "the server's certificate does not verify with the CA of --ca-cert-hash: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vc)));
        goto out;
    }
    *ca_pem = pem_of_cert(ca);
    rc = *ca_pem ? 0 : -1;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(vc);
    X509_STORE_free(store);
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}

/* ---- saved credentials ------------------------------------------------------- */

static char *unbase64(const char *b)
{
    size_t n;
    return b ? (char *)base64_decode(b, strlen(b), 0, &n) : NULL;
}

/* The node's kubeconfig holds a certificate valid for at least a minute
 * more. */
static int have_credentials(const char *path)
{
    json_t *kc = json_load_file(path, 0, NULL);
    json_t *user = json_object_get(json_array_get(json_object_get(kc, "users"), 0), "user");
    char *pem = unbase64(json_string_value(json_object_get(user, "client-certificate-data")));
    json_decref(kc);
    if (!pem) return 0;
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free(pem);
    time_t soon = time(NULL) + 60;
    int ok = x && X509_cmp_time(X509_get0_notAfter(x), &soon) > 0;
    X509_free(x);
    ERR_clear_error();
    return ok;
}

static int mkdirs(const char *data_dir, const char *node)
{
    char p[1200];
    snprintf(p, sizeof p, "%s", data_dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
    snprintf(p, sizeof p, "%s/nodes", data_dir);
    if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
    snprintf(p, sizeof p, "%s/nodes/%s", data_dir, node);
    if (mkdir(p, 0700) != 0 && errno != EEXIST) return -1;
    return chmod(p, 0700);
}

/* ---- one node's request -------------------------------------------------------- */

typedef struct node_req {
    const char *node;
    EVP_PKEY *key;
    char *csr_name;  /* once created */
    char *cert_pem;  /* once issued */
    int busy;        /* a request in flight */
    int done;
    int64_t next_ms; /* next poll */
} node_req_t;

typedef struct join_run {
    uv_loop_t loop;
    http_client_t *hc[JOIN_CONNECTIONS];
    size_t nhc;
    char auth[300];
    node_req_t *reqs;
    size_t n;
    char *err;
    size_t errlen;
    int failed;
} join_run_t;

typedef struct call {
    join_run_t *run;
    node_req_t *r;
} call_t;

static int64_t mono_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

static char *csr_pem_for(const char *node, EVP_PKEY *key)
{
    char cn[300];
    snprintf(cn, sizeof cn, "system:node:%s", node);
    X509_REQ *r = X509_REQ_new();
    char *out = NULL;
    X509_NAME *n = r ? X509_REQ_get_subject_name(r) : NULL;
    if (n &&
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"system:nodes",
                                   -1, -1, 0) == 1 &&
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) == 1 &&
        X509_REQ_set_pubkey(r, key) == 1 && X509_REQ_sign(r, key, EVP_sha256()) > 0) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b && PEM_write_bio_X509_REQ(b, r) == 1) {
            char *data;
            long len = BIO_get_mem_data(b, &data);
            out = strndup(data, (size_t)len);
        }
        BIO_free(b);
    }
    X509_REQ_free(r);
    return out;
}

static void fail(join_run_t *run, const char *node, int status, const char *body)
{
    if (run->failed) return;
    run->failed = 1;
    json_t *st = body ? json_loads(body, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(st, "message"));
    if (status == 401)
        snprintf(run->err, run->errlen,
                 "the server refused the bootstrap token (unknown, expired or revoked: make a "
                 "new one with `skiff token create`): %s",
                 msg ? msg : "Unauthorized");
    else if (status == 403)
        snprintf(run->err, run->errlen,
                 "the bootstrap token may not ask for node certificates: %s", msg ? msg : "Forbidden");
    else if (status == 0)
        snprintf(run->err, run->errlen, "node %s: no answer from the server", node);
    else
        snprintf(run->err, run->errlen, "node %s: the server answered %d: %s", node, status,
                 msg ? msg : body ? body : "");
    json_decref(st);
}

/* the CSR's state: certificate taken, or Denied/Failed reported */
static void take_state(join_run_t *run, node_req_t *r, json_t *csr)
{
    json_t *st = json_object_get(csr, "status");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(st, "conditions"), i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && (!strcmp(t, "Denied") || !strcmp(t, "Failed"))) {
            const char *m = json_string_value(json_object_get(c, "message"));
            snprintf(run->err, run->errlen, "node %s: CertificateSigningRequest %s was %s%s%s",
                     r->node, r->csr_name, !strcmp(t, "Denied") ? "denied" : "not signed",
                     m ? ": " : "", m ? m : "");
            run->failed = 1;
            return;
        }
    }
    const char *cert = json_string_value(json_object_get(st, "certificate"));
    if (cert && *cert) {
        r->cert_pem = unbase64(cert);
        r->done = r->cert_pem != NULL;
        if (!r->done) {
            snprintf(run->err, run->errlen, "node %s: the certificate is not base64", r->node);
            run->failed = 1;
        }
    }
}

static void on_answer(void *data, const http_client_result_t *res)
{
    call_t *call = data;
    join_run_t *run = call->run;
    node_req_t *r = call->r;
    free(call);
    r->busy = 0;
    r->next_ms = mono_ms() + POLL_MS;
    if (res->status != 200 && res->status != 201) {
        fail(run, r->node, res->status, res->body);
        return;
    }
    json_t *csr = json_loads(res->body ? res->body : "", 0, NULL);
    if (!r->csr_name) {
        const char *n = json_string_value(
            json_object_get(json_object_get(csr, "metadata"), "name"));
        r->csr_name = n ? strdup(n) : NULL;
        if (r->csr_name)
            log_info("agent", "node %s: CertificateSigningRequest %s created", r->node,
                     r->csr_name);
    }
    take_state(run, r, csr);
    json_decref(csr);
}

static int send_one(join_run_t *run, node_req_t *r)
{
    call_t *call = malloc(sizeof *call);
    if (!call) return -1;
    call->run = run;
    call->r = r;
    http_client_request_t req = {.accept = "application/json",
                                 .headers = run->auth,
                                 .on_done = on_answer,
                                 .data = call};
    char path[600], *body = NULL;
    if (!r->csr_name) {
        char *pem = csr_pem_for(r->node, r->key);
        char *b64 = pem ? base64_encode(pem, strlen(pem), 0) : NULL;
        free(pem);
        json_t *obj = json_pack("{s:s, s:s, s:{s:s}, s:{s:s*, s:s, s:[s, s]}}", "apiVersion",
                                "certificates.k8s.io/v1", "kind", "CertificateSigningRequest",
                                "metadata", "generateName", "node-csr-", "spec", "request", b64,
                                "signerName", KUBELET_SIGNER, "usages", "digital signature",
                                "client auth");
        free(b64);
        body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
        json_decref(obj);
        if (!body) {
            free(call);
            return -1;
        }
        req.method = "POST";
        req.path = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
        req.content_type = "application/json";
        req.body = body;
        req.body_len = strlen(body);
    } else {
        snprintf(path, sizeof path, "/apis/certificates.k8s.io/v1/certificatesigningrequests/%s",
                 r->csr_name);
        req.method = "GET";
        req.path = path;
    }
    r->busy = 1;
    int rc = http_client_send(run->hc[(size_t)(r - run->reqs) % run->nhc], &req, NULL);
    free(body);
    if (rc != 0) {
        r->busy = 0;
        free(call);
    }
    return rc;
}

static void on_timer(uv_timer_t *t)
{
    join_run_t *run = t->data;
    int64_t now = mono_ms();
    for (size_t i = 0; i < run->n && !run->failed; i++) {
        node_req_t *r = &run->reqs[i];
        if (r->done || r->busy || now < r->next_ms) continue;
        if (send_one(run, r) != 0) fail(run, r->node, 0, NULL);
    }
}

static int all_done(const join_run_t *run)
{
    for (size_t i = 0; i < run->n; i++)
        if (!run->reqs[i].done) return 0;
    return 1;
}

/* Creates a CSR per node of reqs and waits for their certificates. */
static int request_certificates(const char *host, int port, const char *ca_pem, const char *token,
                                node_req_t *reqs, size_t n, int timeout_s, char *err,
                                size_t errlen)
{
    join_run_t run = {.reqs = reqs, .n = n, .err = err, .errlen = errlen};
    snprintf(run.auth, sizeof run.auth, "Authorization: Bearer %s\r\n", token);
    uv_loop_init(&run.loop);
    tls_client_opts_t to = {.ca_pem = ca_pem};
    SSL_CTX *ctx = tls_client_ctx_new(&to, err, errlen);
    int rc = -1;
    uv_timer_t timer;
    int timer_init = 0;
    if (!ctx) goto out;
    int setup_ok = 1;
    while (setup_ok && run.nhc < JOIN_CONNECTIONS && run.nhc < n) {
        if (http_client_new(&run.loop, host, port, &run.hc[run.nhc]) != 0) {
            setup_ok = 0;
            break;
        }
        setup_ok = http_client_set_tls(run.hc[run.nhc++], ctx, host) == 0;
    }
    if (!setup_ok) {
        snprintf(err, errlen, "cannot set up the connection to the server");
        goto out;
    }
    uv_timer_init(&run.loop, &timer);
    timer_init = 1;
    timer.data = &run;
    uv_timer_start(&timer, on_timer, 0, 50);
    int64_t deadline = mono_ms() + (int64_t)(timeout_s > 0 ? timeout_s : 300) * 1000;
    while (!run.failed && !all_done(&run) && mono_ms() < deadline)
        uv_run(&run.loop, UV_RUN_ONCE);
    if (!run.failed && !all_done(&run)) {
        for (size_t i = 0; i < n; i++)
            if (!reqs[i].done) {
                snprintf(err, errlen,
                         "node %s: no certificate after %d s: CertificateSigningRequest %s is "
                         "still pending (approve it with `kubectl certificate approve %s`)",
                         reqs[i].node, timeout_s > 0 ? timeout_s : 300,
                         reqs[i].csr_name ? reqs[i].csr_name : "(not created)",
                         reqs[i].csr_name ? reqs[i].csr_name : "NAME");
                break;
            }
    }
    rc = run.failed || !all_done(&run) ? -1 : 0;
    run.failed = 1; /* requests cut short below are not errors to report */
out:
    if (timer_init) uv_close((uv_handle_t *)&timer, NULL);
    for (size_t i = 0; i < run.nhc; i++) http_client_free(run.hc[i]);
    while (uv_run(&run.loop, UV_RUN_NOWAIT)) {
    }
    uv_loop_close(&run.loop);
    if (ctx) SSL_CTX_free(ctx);
    OPENSSL_cleanse(run.auth, sizeof run.auth);
    return rc;
}

static char *key_pem_of(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        out = strndup(data, (size_t)n);
    }
    BIO_free(b);
    return out;
}

static int valid_hash(const char *h)
{
    if (!h || strncmp(h, "sha256:", 7) != 0 || strlen(h) != 7 + 64) return 0;
    for (const char *p = h + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return 0;
    return 1;
}

int agent_join(const join_opts_t *o, char *err, size_t errlen)
{
    err[0] = '\0';
    char host[256];
    int port = 0;
    if (parse_server(o->server, host, sizeof host, &port) != 0) {
        snprintf(err, errlen,
                 "--server %s: expected https://IP:PORT (an IP address or localhost, as the "
                 "server's certificate names it)",
                 o->server ? o->server : "");
        return -1;
    }
    size_t missing = 0;
    for (size_t i = 0; i < o->nnodes; i++) {
        char path[1300];
        agent_join_kubeconfig_path(o->data_dir, o->nodes[i], path, sizeof path);
        if (!have_credentials(path)) missing++;
    }
    if (!missing) {
        log_info("agent", "using the saved credentials of %zu node(s) in %s/nodes", o->nnodes,
                 o->data_dir);
        return 0;
    }
    if (!o->token || !*o->token) {
        snprintf(err, errlen, "%zu node(s) have no saved credentials in %s/nodes: --token is "
                              "needed to join",
                 missing, o->data_dir);
        return -1;
    }
    if (!valid_hash(o->ca_cert_hash)) {
        snprintf(err, errlen,
                 "--ca-cert-hash sha256:<64 hex digits> is required with --token (`skiff token "
                 "create` prints it): without it the server cannot be trusted with the token");
        return -1;
    }
    char *ca = NULL;
    if (discover_ca(host, port, o->ca_cert_hash, &ca, err, errlen) != 0) return -1;
    log_info("agent", "the server's CA matches %s; asking for %zu node certificate(s)",
             o->ca_cert_hash, missing);

    node_req_t *reqs = calloc(missing, sizeof *reqs);
    int rc = -1;
    size_t n = 0;
    if (!reqs) goto out;
    for (size_t i = 0; i < o->nnodes; i++) {
        char path[1300];
        agent_join_kubeconfig_path(o->data_dir, o->nodes[i], path, sizeof path);
        if (have_credentials(path)) continue;
        reqs[n].node = o->nodes[i];
        reqs[n].key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!reqs[n++].key) {
            snprintf(err, errlen, "cannot make a key");
            goto out;
        }
    }
    if (request_certificates(host, port, ca, o->token, reqs, n, o->timeout_s, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char path[1300], user[300];
        agent_join_kubeconfig_path(o->data_dir, reqs[i].node, path, sizeof path);
        snprintf(user, sizeof user, "system:node:%s", reqs[i].node);
        char *key = key_pem_of(reqs[i].key);
        int wrc = !key || mkdirs(o->data_dir, reqs[i].node) != 0 ||
                  kubeconfig_write(path, o->server, user, ca, reqs[i].cert_pem, key) != 0;
        if (key) OPENSSL_cleanse(key, strlen(key));
        free(key);
        if (wrc) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            goto out;
        }
    }
    log_info("agent", "joined: credentials of %zu node(s) saved in %s/nodes", n, o->data_dir);
    rc = 0;
out:
    for (size_t i = 0; reqs && i < n; i++) {
        EVP_PKEY_free(reqs[i].key);
        free(reqs[i].csr_name);
        free(reqs[i].cert_pem);
    }
    free(reqs);
    free(ca);
    return rc;
}
