/* core/client_config.c - an HTTP(S) SDK client from a kubeconfig file. */
#include "client_config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "api/client_http.h"
#include "http/tls.h"
#include "util/base64.h"
#include "util/yaml_json.h"

static void set_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        if (cap > 16u * 1024 * 1024) {
            free(buf);
            buf = NULL;
            break;
        }
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* The entry of a named list ("clusters", "users", "contexts") whose name
 * is name, its inner object under field (borrowed), or NULL. */
static json_t *named(json_t *kc, const char *list, const char *name, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(kc, list), i, e) {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && name && strcmp(n, name) == 0) return json_object_get(e, field);
    }
    return NULL;
}

/* PEM text from "X-data" (base64) or "X" (a file path), newly allocated;
 * NULL when neither is set (*bad stays 0) or on error (*bad = 1). */
static char *pem_field(json_t *obj, const char *field, int *bad, char *err, size_t errlen)
{
    char data_field[96];
    snprintf(data_field, sizeof data_field, "%s-data", field);
    const char *b64 = json_string_value(json_object_get(obj, data_field));
    if (b64 && *b64) {
        size_t n = 0;
        unsigned char *pem = base64_decode(b64, strlen(b64), 0, &n);
        if (!pem) {
            set_err(err, errlen, "%s is not valid base64", data_field);
            *bad = 1;
        }
        return (char *)pem;
    }
    const char *file = json_string_value(json_object_get(obj, field));
    if (!file || !*file) return NULL;
    char *pem = read_file(file, NULL);
    if (!pem) {
        set_err(err, errlen, "cannot read %s %s", field, file);
        *bad = 1;
    }
    return pem;
}

static void free_secret(char *s)
{
    if (!s) return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

/* "https://host:port[/]" into scheme (1 for https), host and port. */
static int parse_url(const char *url, int *https, char *host, size_t hostlen, int *port)
{
    const char *p;
    if (strncmp(url, "https://", 8) == 0) {
        *https = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        *https = 0;
        p = url + 7;
    } else {
        return -1;
    }
    const char *end;
    if (*p == '[') {
        end = strchr(p, ']');
        if (!end) return -1;
        size_t n = (size_t)(end - p - 1);
        if (n >= hostlen) return -1;
        memcpy(host, p + 1, n);
        host[n] = '\0';
        p = end + 1;
    } else {
        end = p + strcspn(p, ":/");
        size_t n = (size_t)(end - p);
        if (n == 0 || n >= hostlen) return -1;
        memcpy(host, p, n);
        host[n] = '\0';
        p = end;
    }
    *port = *https ? 443 : 80;
    if (*p == ':') {
        char *e;
        long v = strtol(p + 1, &e, 10);
        if (e == p + 1 || v <= 0 || v > 65535) return -1;
        *port = (int)v;
        p = e;
    }
    if (*p && strcmp(p, "/") != 0) return -1;
    return 0;
}

static int is_numeric_host(const char *h)
{
    unsigned char a[16];
    return strcmp(h, "localhost") == 0 || inet_pton(AF_INET, h, a) == 1 ||
           inet_pton(AF_INET6, h, a) == 1;
}

skiff_client_t *client_from_kubeconfig(uv_loop_t *loop, const char *path, char *server,
                                       size_t server_len, char *err, size_t errlen)
{
    skiff_client_t *client = NULL;
    char *ca = NULL, *cert = NULL, *key = NULL, *token = NULL;
    SSL_CTX *tls = NULL;
    json_t *kc = NULL;
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        set_err(err, errlen, "cannot read the kubeconfig %s", path);
        return NULL;
    }
    char perr[256];
    kc = yaml_json_load(text, len, YAML_JSON_TYPED_SCALARS, perr, sizeof perr);
    free_secret(text);
    if (!kc) {
        set_err(err, errlen, "the kubeconfig %s is not valid YAML: %s", path, perr);
        return NULL;
    }
    const char *ctx_name = json_string_value(json_object_get(kc, "current-context"));
    json_t *ctx = named(kc, "contexts", ctx_name, "context");
    if (!ctx && json_array_size(json_object_get(kc, "contexts")) == 1)
        ctx = json_object_get(json_array_get(json_object_get(kc, "contexts"), 0), "context");
    const char *cluster_name = json_string_value(json_object_get(ctx, "cluster"));
    const char *user_name = json_string_value(json_object_get(ctx, "user"));
    json_t *cluster = named(kc, "clusters", cluster_name, "cluster");
    json_t *user = named(kc, "users", user_name, "user");
    if (!cluster) {
        set_err(err, errlen, "the kubeconfig %s names no cluster for its current context", path);
        goto out;
    }
    const char *url = json_string_value(json_object_get(cluster, "server"));
    char host[256];
    int https = 0, port = 0;
    if (!url || parse_url(url, &https, host, sizeof host, &port) != 0) {
        set_err(err, errlen, "the kubeconfig's server \"%s\" is not an http(s)://host:port URL",
                url ? url : "");
        goto out;
    }
    if (!is_numeric_host(host)) {
        set_err(err, errlen,
                "the kubeconfig's server host \"%s\" must be an IP address or localhost", host);
        goto out;
    }
    if (server) snprintf(server, server_len, "%s", url);
    int bad = 0;
    if (user) {
        const char *t = json_string_value(json_object_get(user, "token"));
        const char *tf = json_string_value(json_object_get(user, "tokenFile"));
        if (t && *t) token = strdup(t);
        else if (tf && *tf) {
            token = read_file(tf, NULL);
            if (!token) {
                set_err(err, errlen, "cannot read tokenFile %s", tf);
                goto out;
            }
            token[strcspn(token, "\r\n")] = '\0';
        }
        cert = pem_field(user, "client-certificate", &bad, err, errlen);
        if (!bad) key = pem_field(user, "client-key", &bad, err, errlen);
        if (bad) goto out;
    }
    if (https) {
        ca = pem_field(cluster, "certificate-authority", &bad, err, errlen);
        if (bad) goto out;
        json_t *skip = json_object_get(cluster, "insecure-skip-tls-verify");
        tls_client_opts_t to = {.ca_pem = ca,
                                .cert_pem = cert,
                                .key_pem = key,
                                .insecure_skip_verify = json_is_true(skip) ||
                                                        (json_is_string(skip) &&
                                                         !strcmp(json_string_value(skip), "true"))};
        char terr[256];
        if (!to.ca_pem && !to.insecure_skip_verify) {
            set_err(err, errlen,
                    "the kubeconfig's cluster has no certificate-authority(-data) to verify %s",
                    url);
            goto out;
        }
        tls = tls_client_ctx_new(&to, terr, sizeof terr);
        if (!tls) {
            set_err(err, errlen, "TLS: %s", terr);
            goto out;
        }
        const char *sni = json_string_value(json_object_get(cluster, "tls-server-name"));
        client = client_http_new_tls(loop, host, port, tls, sni, token);
    } else {
        client = client_http_new(loop, host, port, token);
    }
    if (!client) set_err(err, errlen, "cannot create a client for %s", url);
out:
    SSL_CTX_free(tls);
    free(ca);
    free(cert);
    free_secret(key);
    free_secret(token);
    json_decref(kc);
    return client;
}
