/* core/kubeconfig.c - kubeconfig files for the admin and for users. */
#include "kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "security/pki.h"

static int set_b64(json_t *obj, const char *field, const char *pem)
{
    if (!pem) return 0;
    char *b = pki_base64_new(pem);
    if (!b) return -1;
    int rc = json_object_set_new(obj, field, json_string(b));
    OPENSSL_cleanse(b, strlen(b));
    free(b);
    return rc;
}

int kubeconfig_write(const char *path, const char *server, const char *user, const char *ca_pem,
                     const char *cert_pem, const char *key_pem)
{
    json_t *cluster = json_pack("{s:s}", "server", server);
    json_t *cred = json_object();
    json_t *kc = NULL;
    if (!cluster || !cred || set_b64(cluster, "certificate-authority-data", ca_pem) != 0 ||
        set_b64(cred, "client-certificate-data", cert_pem) != 0 ||
        set_b64(cred, "client-key-data", key_pem) != 0)
        goto fail;
    kc = json_pack("{s:s, s:s, s:[{s:s, s:O}], s:[{s:s, s:O}], s:[{s:s, s:{s:s, s:s}}], s:s}",
                   "apiVersion", "v1", "kind", "Config", "clusters", "name", "skiff", "cluster",
                   cluster, "users", "name", user, "user", cred, "contexts", "name", "skiff",
                   "context", "cluster", "skiff", "user", user, "current-context", "skiff");
    if (!kc) goto fail;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 || fchmod(fd, 0600) != 0 || json_dumpfd(kc, fd, JSON_INDENT(2)) != 0;
    if (fd >= 0 && close(fd) != 0) rc = -1;
    if (rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        goto fail;
    }
    json_decref(cluster);
    json_decref(cred);
    json_decref(kc);
    return 0;
fail:
    json_decref(cluster);
    json_decref(cred);
    json_decref(kc);
    return -1;
}

char *kubeconfig_server(const char *path)
{
    json_t *kc = json_load_file(path, 0, NULL);
    const char *s = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(kc, "clusters"), 0), "cluster"), "server"));
    char *out = s ? strdup(s) : NULL;
    json_decref(kc);
    return out;
}
