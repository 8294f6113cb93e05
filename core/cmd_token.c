/* core/cmd_token.c - `skiff token create`: a bootstrap token for joining
 * agents, in Kubernetes' format (a Secret bootstrap-token-<id> of type
 * bootstrap.kubernetes.io/token in kube-system), made through the API with
 * the admin kubeconfig, and printed with the hash of the cluster CA's public
 * key so the joining agent can check it talks to the right server. */
#include "cmd_token.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <uv.h>

#include "agent/join.h"
#include "cli/options.h"
#include "http/client.h"
#include "http/tls.h"
#include "util/base64.h"

typedef struct token_settings {
    const char *data_dir;
    const char *ttl;
    const char *description;
} token_settings_t;

static const option_t token_options[] = {
    {"data-dir", OPT_STRING, "DIR", "$HOME/.local/share/skiff",
     "the server's data directory (its admin kubeconfig is used)",
     offsetof(token_settings_t, data_dir)},
    {"ttl", OPT_STRING, "DURATION", "24h", "how long the token is valid (s, m, h; 0: forever)",
     offsetof(token_settings_t, ttl)},
    {"description", OPT_STRING, "TEXT", NULL, "a note kept with the token",
     offsetof(token_settings_t, description)},
};

static long long parse_duration(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (v < 0 || end == s) return -1;
    if (*end == '\0' || !strcmp(end, "s")) return v;
    if (!strcmp(end, "m")) return v * 60;
    if (!strcmp(end, "h")) return v * 3600;
    return -1;
}

/* [a-z0-9]{n}, as bootstrap tokens are made of */
static int random_word(char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t i = 0;
    while (i < n) {
        unsigned char r[32];
        if (RAND_bytes(r, sizeof r) != 1) return -1;
        /* bytes from 252 up would favour the first letters: skip them */
        for (size_t j = 0; j < sizeof r && i < n; j++)
            if (r[j] < 252) out[i++] = alphabet[r[j] % 36];
    }
    out[n] = '\0';
    return 0;
}

/* PEM text of a kubeconfig *-data field (base64 of PEM); newly allocated. */
static char *unbase64(const char *b)
{
    size_t n;
    return b ? (char *)base64_decode(b, strlen(b), 0, &n) : NULL;
}

typedef struct answer {
    int done, status;
    char *body;
} answer_t;

static void on_done(void *data, const http_client_result_t *res)
{
    answer_t *a = data;
    a->done = 1;
    a->status = res->status;
    a->body = res->body ? strdup(res->body) : NULL;
}

int cmd_token(int argc, char **argv)
{
    const char *usage = "Creates a bootstrap token that lets an agent join the cluster.\n"
                        "  skiff token create [options]";
    if (argc < 1 || strcmp(argv[0], "create") != 0) {
        if (argc >= 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
            options_print_help("skiff token create", usage, token_options,
                               sizeof token_options / sizeof *token_options);
            return 0;
        }
        fprintf(stderr, "skiff token: expected `create` (see skiff token --help)\n");
        return 2;
    }
    token_settings_t set = {.ttl = "24h"};
    int rc = options_parse("skiff token create", usage, token_options,
                           sizeof token_options / sizeof *token_options, argc - 1, argv + 1, &set);
    if (rc != 0) return rc > 0 ? 0 : 2;
    long long ttl = parse_duration(set.ttl);
    if (ttl < 0) {
        fprintf(stderr, "skiff token create: --ttl %s: expected a duration like 30m or 24h\n",
                set.ttl);
        return 2;
    }
    char path[1100];
    const char *home = getenv("HOME");
    if (set.data_dir) snprintf(path, sizeof path, "%s/kubeconfig", set.data_dir);
    else snprintf(path, sizeof path, "%s/.local/share/skiff/kubeconfig", home ? home : ".");
    json_t *kc = json_load_file(path, 0, NULL);
    json_t *cluster = json_object_get(json_array_get(json_object_get(kc, "clusters"), 0), "cluster");
    json_t *user = json_object_get(json_array_get(json_object_get(kc, "users"), 0), "user");
    const char *server = json_string_value(json_object_get(cluster, "server"));
    char host[256] = "";
    int port = 0, https = 0;
    if (server) {
        https = strncmp(server, "https://", 8) == 0;
        const char *hp = strstr(server, "://");
        hp = hp ? hp + 3 : server;
        if (*hp == '[') sscanf(hp, "[%255[^]]]:%d", host, &port);
        else sscanf(hp, "%255[^:]:%d", host, &port);
    }
    if (!server || !host[0] || port <= 0) {
        fprintf(stderr, "skiff token create: cannot read the server from %s\n", path);
        json_decref(kc);
        return 1;
    }
    char *ca = unbase64(json_string_value(json_object_get(cluster, "certificate-authority-data")));
    char *cert = unbase64(json_string_value(json_object_get(user, "client-certificate-data")));
    char *key = unbase64(json_string_value(json_object_get(user, "client-key-data")));
    json_decref(kc);

    char id[7], secret[17], token[24], expiration[32] = "";
    if (random_word(id, 6) != 0 || random_word(secret, 16) != 0) {
        fprintf(stderr, "skiff token create: no random bytes from the system\n");
        free(ca);
        free(cert);
        free(key);
        return 1;
    }
    snprintf(token, sizeof token, "%s.%s", id, secret);
    json_t *sd = json_pack("{s:s, s:s, s:s, s:s, s:s}", "token-id", id, "token-secret", secret,
                           "usage-bootstrap-authentication", "true", "usage-bootstrap-signing",
                           "true", "auth-extra-groups",
                           "system:bootstrappers:skiff:default-node-token");
    if (ttl > 0) {
        time_t exp = time(NULL) + (time_t)ttl;
        struct tm tm;
        gmtime_r(&exp, &tm);
        strftime(expiration, sizeof expiration, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(sd, "expiration", json_string(expiration));
    }
    if (set.description) json_object_set_new(sd, "description", json_string(set.description));
    char name[64];
    snprintf(name, sizeof name, "bootstrap-token-%s", id);
    json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:o}", "apiVersion", "v1", "kind",
                            "Secret", "metadata", "name", name, "namespace", "kube-system", "type",
                            "bootstrap.kubernetes.io/token", "stringData", sd);
    char *body = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);

    int code = 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_client_t *hc = NULL;
    SSL_CTX *ctx = NULL;
    char err[512];
    answer_t ans = {0};
    if (http_client_new(&loop, host, port, &hc) != 0) goto out;
    if (https) {
        tls_client_opts_t to = {.ca_pem = ca, .cert_pem = cert, .key_pem = key};
        ctx = tls_client_ctx_new(&to, err, sizeof err);
        if (!ctx || http_client_set_tls(hc, ctx, host) != 0) {
            fprintf(stderr, "skiff token create: TLS: %s\n", ctx ? "cannot set up" : err);
            goto out;
        }
    }
    http_client_request_t req = {.method = "POST",
                                 .path = "/api/v1/namespaces/kube-system/secrets",
                                 .content_type = "application/json",
                                 .accept = "application/json",
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0,
                                 .on_done = on_done,
                                 .data = &ans};
    if (http_client_send(hc, &req, NULL) != 0) goto out;
    while (!ans.done && uv_run(&loop, UV_RUN_ONCE)) {
    }
    if (ans.status != 201) {
        fprintf(stderr, "skiff token create: the server answered %d: %s\n", ans.status,
                ans.body ? ans.body : "(no answer: is the server running?)");
        goto out;
    }
    char hash[100] = "";
    if (ca) agent_ca_cert_hash(ca, hash, sizeof hash);
    printf("%s\n", token);
    if (hash[0]) fprintf(stderr, "CA certificate hash: %s\n", hash);
    if (expiration[0]) fprintf(stderr, "expires: %s\n", expiration);
    code = 0;
out:
    if (hc) http_client_free(hc);
    while (uv_run(&loop, UV_RUN_NOWAIT)) {
    }
    uv_loop_close(&loop);
    if (ctx) SSL_CTX_free(ctx);
    free(ans.body);
    free(body);
    free(ca);
    free(cert);
    if (key) OPENSSL_cleanse(key, strlen(key));
    free(key);
    return code;
}
