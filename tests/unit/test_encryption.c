/* tests/unit/test_encryption.c - secrets encrypted at rest: the default
 * data-directory key, EncryptionConfiguration files (YAML and JSON) and their
 * errors, round trips for every provider in Kubernetes' stored format (checked
 * against values built directly with OpenSSL and libsodium), rotation,
 * identity, tampering and the rewrite check. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <skiff/errors.h>

#include "security/encryption.h"

/* 32 bytes "0123456789abcdef0123456789abcdef" and 16 bytes "0123456789abcdef" */
#define KEY32_A "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define KEY32_B "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="
#define KEY16 "MDEyMzQ1Njc4OWFiY2RlZg=="

static const char secret_json[] =
    "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"db\",\"namespace\":"
    "\"default\"},\"data\":{\"password\":\"aHVudGVyMg==\"},\"stringData\":\"hunter2-plain\"}";
#define SKEY "/registry/core/secrets/default/db"

typedef struct fixture {
    char dir[64];
    char cfg[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/skiff-enc-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->cfg, sizeof f->cfg, "%s/enc.yaml", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->dir, ENCRYPTION_KEY_FILE);
    unlink(p);
    unlink(f->cfg);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* A config whose secrets use the given providers block (YAML list items). */
static encryption_t *load_yaml(fixture_t *f, const char *providers)
{
    char text[2048];
    snprintf(text, sizeof text,
             "apiVersion: apiserver.config.k8s.io/v1\n"
             "kind: EncryptionConfiguration\n"
             "resources:\n"
             "  - resources:\n"
             "      - secrets\n"
             "    providers:\n%s",
             providers);
    write_file(f->cfg, text);
    encryption_t *e = NULL;
    char err[512] = "";
    int rc = encryption_load(NULL, f->cfg, &e, err, sizeof err);
    if (rc != 0) print_error("load: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(e);
    return e;
}

static void seal_secret(encryption_t *e, char **out, size_t *len)
{
    assert_int_equal(encryption_seal(e, "", "secrets", SKEY, secret_json, strlen(secret_json), out,
                                     len),
                     0);
}

static void assert_opens(encryption_t *e, const char *v, size_t len)
{
    char *plain = NULL, err[256] = "";
    size_t n = 0;
    int rc = encryption_open(e, "", "secrets", SKEY, v, len, &plain, &n, err, sizeof err);
    if (rc) print_error("open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(n, strlen(secret_json));
    assert_memory_equal(plain, secret_json, n);
    assert_int_equal(plain[n], 0);
    free(plain);
}

static int open_err(encryption_t *e, const char *key, const void *v, size_t len, char *err,
                    size_t errlen)
{
    char *plain = (char *)0x1;
    size_t n = 0;
    int rc = encryption_open(e, "", "secrets", key, v, len, &plain, &n, err, errlen);
    if (rc == 0) free(plain);
    return rc;
}

/* No piece of the plaintext secret survives in the stored bytes. */
static void assert_no_plaintext(const char *v, size_t len)
{
    assert_null(memmem(v, len, "hunter2", 7));
    assert_null(memmem(v, len, "aHVudGVyMg", 10));
    assert_null(memmem(v, len, "Secret", 6));
}

static void round_trip(void **state, const char *providers, const char *prefix, size_t overhead)
{
    fixture_t *f = *state;
    encryption_t *e = load_yaml(f, providers);
    assert_int_equal(encryption_applies(e, "", "secrets"), 1);
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    seal_secret(e, &a, &alen);
    seal_secret(e, &b, &blen);
    assert_int_equal(alen, strlen(prefix) + overhead);
    assert_memory_equal(a, prefix, strlen(prefix));
    assert_int_equal(encryption_is_sealed(a, alen), 1);
    assert_no_plaintext(a, alen);
    /* a fresh nonce or IV every time */
    assert_int_equal(alen, blen);
    assert_memory_not_equal(a, b, alen);
    assert_opens(e, a, alen);
    assert_opens(e, b, blen);
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", a, alen), 0);
    free(a);
    free(b);
    encryption_free(e);
}

static void test_aesgcm_round_trip(void **state)
{
    size_t n = strlen(secret_json);
    round_trip(state, "      - aesgcm:\n          keys:\n            - name: key1\n"
                      "              secret: " KEY32_A "\n",
               "k8s:enc:aesgcm:v1:key1:", 12 + n + 16);
    /* AES-128-GCM keys are accepted as Kubernetes does */
    round_trip(state, "      - aesgcm:\n          keys:\n            - name: short\n"
                      "              secret: " KEY16 "\n",
               "k8s:enc:aesgcm:v1:short:", 12 + n + 16);
}

static void test_aescbc_round_trip(void **state)
{
    size_t n = strlen(secret_json);
    round_trip(state, "      - aescbc:\n          keys:\n            - name: key1\n"
                      "              secret: " KEY32_A "\n",
               "k8s:enc:aescbc:v1:key1:", 16 + (n / 16 + 1) * 16);
}

static void test_secretbox_round_trip(void **state)
{
    size_t n = strlen(secret_json);
    round_trip(state, "      - secretbox:\n          keys:\n            - name: sb\n"
                      "              secret: " KEY32_B "\n",
               "k8s:enc:secretbox:v1:sb:", 24 + 16 + n);
}

static void test_identity(void **state)
{
    fixture_t *f = *state;
    encryption_t *e = load_yaml(f, "      - identity: {}\n      - aesgcm:\n          keys:\n"
                                   "            - name: key1\n              secret: " KEY32_A "\n");
    assert_int_equal(encryption_applies(e, "", "secrets"), 0);
    char *v = NULL;
    size_t n = 0;
    seal_secret(e, &v, &n);
    assert_int_equal(n, strlen(secret_json));
    assert_memory_equal(v, secret_json, n);
    assert_int_equal(encryption_is_sealed(v, n), 0);
    assert_opens(e, v, n);
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", v, n), 0);
    free(v);
    encryption_free(e);

    /* values encrypted before identity moved first still open, and need a rewrite */
    e = load_yaml(f, "      - aesgcm:\n          keys:\n            - name: key1\n"
                     "              secret: " KEY32_A "\n");
    seal_secret(e, &v, &n);
    /* plaintext written before encryption was turned on reads as is */
    assert_opens(e, secret_json, strlen(secret_json));
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", secret_json, strlen(secret_json)),
                     1);
    encryption_free(e);
    e = load_yaml(f, "      - identity: {}\n      - aesgcm:\n          keys:\n"
                     "            - name: key1\n              secret: " KEY32_A "\n");
    assert_opens(e, v, n);
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", v, n), 1);
    free(v);
    encryption_free(e);
}

static void test_rotation(void **state)
{
    fixture_t *f = *state;
    encryption_t *old = load_yaml(f, "      - aesgcm:\n          keys:\n            - name: key1\n"
                                     "              secret: " KEY32_A "\n");
    char *v1 = NULL, *v2 = NULL;
    size_t n1 = 0, n2 = 0;
    seal_secret(old, &v1, &n1);
    encryption_free(old);

    /* key2 added first: it encrypts, key1 still decrypts */
    encryption_t *e = load_yaml(f, "      - aesgcm:\n          keys:\n"
                                   "            - name: key2\n              secret: " KEY32_B "\n"
                                   "            - name: key1\n              secret: " KEY32_A "\n");
    seal_secret(e, &v2, &n2);
    assert_memory_equal(v2, "k8s:enc:aesgcm:v1:key2:", 23);
    assert_opens(e, v1, n1);
    assert_opens(e, v2, n2);
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", v1, n1), 1);
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", v2, n2), 0);
    encryption_free(e);

    /* a provider switch: aescbc first, the aesgcm keys kept for reading */
    e = load_yaml(f, "      - aescbc:\n          keys:\n            - name: key3\n"
                     "              secret: " KEY32_B "\n"
                     "      - aesgcm:\n          keys:\n"
                     "            - name: key2\n              secret: " KEY32_B "\n"
                     "            - name: key1\n              secret: " KEY32_A "\n");
    assert_opens(e, v1, n1);
    assert_opens(e, v2, n2);
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", v2, n2), 1);
    encryption_free(e);

    /* key1 removed after the rewrite: its values no longer open, with a clear error */
    e = load_yaml(f, "      - aesgcm:\n          keys:\n"
                     "            - name: key2\n              secret: " KEY32_B "\n");
    char err[256] = "";
    assert_int_equal(open_err(e, SKEY, v1, n1, err, sizeof err), SKIFF_EINVAL);
    assert_non_null(strstr(err, "k8s:enc:aesgcm:v1:key1"));
    assert_non_null(strstr(err, "no configured key"));
    encryption_free(e);
    free(v1);
    free(v2);
}

static void test_tampered_refused(void **state)
{
    fixture_t *f = *state;
    encryption_t *e = load_yaml(f, "      - aesgcm:\n          keys:\n            - name: key1\n"
                                   "              secret: " KEY32_A "\n");
    char *v = NULL, err[256];
    size_t n = 0;
    seal_secret(e, &v, &n);

    v[n - 1] ^= 0x01; /* the GCM tag */
    err[0] = 0;
    assert_int_equal(open_err(e, SKEY, v, n, err, sizeof err), SKIFF_EINVAL);
    assert_non_null(strstr(err, "does not decrypt"));
    v[n - 1] ^= 0x01;

    v[40] ^= 0x80; /* the ciphertext */
    assert_int_equal(open_err(e, SKEY, v, n, err, sizeof err), SKIFF_EINVAL);
    v[40] ^= 0x80;

    /* truncated */
    assert_int_equal(open_err(e, SKEY, v, 23 + 20, err, sizeof err), SKIFF_EINVAL);
    /* the same bytes moved under another store key (the authenticated data) */
    assert_int_equal(open_err(e, "/registry/core/secrets/default/other", v, n, err, sizeof err),
                     SKIFF_EINVAL);
    /* the same key with other key material */
    encryption_t *other = load_yaml(f, "      - aesgcm:\n          keys:\n"
                                       "            - name: key1\n"
                                       "              secret: " KEY32_B "\n");
    assert_int_equal(open_err(other, SKEY, v, n, err, sizeof err), SKIFF_EINVAL);
    encryption_free(other);
    /* untouched, it still opens */
    assert_opens(e, v, n);
    free(v);
    encryption_free(e);

    /* a broken CBC value: not a whole number of blocks */
    e = load_yaml(f, "      - aescbc:\n          keys:\n            - name: key1\n"
                     "              secret: " KEY32_A "\n");
    seal_secret(e, &v, &n);
    assert_int_equal(open_err(e, SKEY, v, n - 3, err, sizeof err), SKIFF_EINVAL);
    free(v);
    encryption_free(e);

    /* a secretbox value with a flipped bit */
    e = load_yaml(f, "      - secretbox:\n          keys:\n            - name: key1\n"
                     "              secret: " KEY32_A "\n");
    seal_secret(e, &v, &n);
    v[n - 5] ^= 0x04;
    assert_int_equal(open_err(e, SKEY, v, n, err, sizeof err), SKIFF_EINVAL);
    free(v);
    encryption_free(e);
}

/* Values built with OpenSSL and libsodium directly, laid out as Kubernetes
 * writes them, open: the format is the one kube-apiserver uses. */
static void test_kubernetes_layout(void **state)
{
    fixture_t *f = *state;
    static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
    const unsigned char *pt = (const unsigned char *)secret_json;
    int ptlen = (int)strlen(secret_json), n1 = 0, n2 = 0;
    unsigned char buf[1024];
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);

    /* aesgcm: nonce || ciphertext || tag, the store key as authenticated data */
    size_t p = (size_t)snprintf((char *)buf, sizeof buf, "k8s:enc:aesgcm:v1:key1:");
    memset(buf + p, 7, 12);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf + p), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &n1, (const unsigned char *)SKEY, strlen(SKEY)), 1);
    assert_int_equal(EVP_EncryptUpdate(c, buf + p + 12, &n1, pt, ptlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, buf + p + 12 + n1, &n2), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, buf + p + 12 + ptlen), 1);
    encryption_t *e = load_yaml(f, "      - aesgcm:\n          keys:\n            - name: key1\n"
                                   "              secret: " KEY32_A "\n");
    assert_opens(e, (char *)buf, p + 12 + ptlen + 16);
    encryption_free(e);

    /* aescbc: IV || ciphertext with PKCS#7 padding */
    p = (size_t)snprintf((char *)buf, sizeof buf, "k8s:enc:aescbc:v1:k:");
    memset(buf + p, 9, 16);
    assert_int_equal(EVP_CIPHER_CTX_reset(c), 1);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, buf + p), 1);
    assert_int_equal(EVP_EncryptUpdate(c, buf + p + 16, &n1, pt, ptlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, buf + p + 16 + n1, &n2), 1);
    e = load_yaml(f, "      - aescbc:\n          keys:\n            - name: k\n"
                     "              secret: " KEY32_A "\n");
    assert_opens(e, (char *)buf, p + 16 + (size_t)n1 + (size_t)n2);
    encryption_free(e);
    EVP_CIPHER_CTX_free(c);

    /* secretbox: nonce || NaCl box */
    p = (size_t)snprintf((char *)buf, sizeof buf, "k8s:enc:secretbox:v1:s:");
    memset(buf + p, 3, 24);
    assert_int_equal(crypto_secretbox_easy(buf + p + 24, pt, (size_t)ptlen, buf + p, key), 0);
    e = load_yaml(f, "      - secretbox:\n          keys:\n            - name: s\n"
                     "              secret: " KEY32_A "\n");
    assert_opens(e, (char *)buf, p + 24 + 16 + (size_t)ptlen);
    encryption_free(e);
}

static void test_default_key_file(void **state)
{
    fixture_t *f = *state;
    char path[256], err[256] = "";
    snprintf(path, sizeof path, "%s/%s", f->dir, ENCRYPTION_KEY_FILE);
    encryption_t *e = NULL;
    assert_int_equal(encryption_load(f->dir, NULL, &e, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char first[128] = "", second[128] = "";
    assert_non_null(fgets(first, sizeof first, fp));
    fclose(fp);
    assert_int_equal(strlen(first), 45); /* base64 of 32 bytes and a newline */
    assert_non_null(strstr(encryption_source(e), path));

    /* secrets only, with aesgcm */
    assert_int_equal(encryption_applies(e, "", "secrets"), 1);
    assert_int_equal(encryption_applies(e, "core", "secrets"), 1);
    assert_int_equal(encryption_applies(e, "", "configmaps"), 0);
    assert_int_equal(encryption_applies(e, "apps", "secrets"), 0);
    char *v = NULL;
    size_t n = 0;
    seal_secret(e, &v, &n);
    assert_memory_equal(v, "k8s:enc:aesgcm:v1:default:", 26);
    assert_no_plaintext(v, n);
    char *cm = NULL;
    size_t cmn = 0;
    assert_int_equal(encryption_seal(e, "", "configmaps", "/registry/core/configmaps/a/b",
                                     "{\"data\":1}", 10, &cm, &cmn),
                     0);
    assert_int_equal(cmn, 10);
    assert_string_equal(cm, "{\"data\":1}");
    free(cm);
    encryption_free(e);

    /* reused, not replaced: the second start reads the first key */
    e = NULL;
    assert_int_equal(encryption_load(f->dir, NULL, &e, err, sizeof err), 0);
    fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(second, sizeof second, fp));
    fclose(fp);
    assert_string_equal(first, second);
    assert_opens(e, v, n);
    encryption_free(e);

    /* a key file others can read is refused */
    assert_int_equal(chmod(path, 0644), 0);
    e = NULL;
    assert_int_equal(encryption_load(f->dir, NULL, &e, err, sizeof err), SKIFF_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);

    /* a configuration file given later: the data-directory key still reads */
    write_file(f->cfg, "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                       "resources:\n- resources: [secrets]\n  providers:\n"
                       "  - aescbc:\n      keys:\n      - name: key1\n        secret: " KEY32_B
                       "\n");
    assert_int_equal(encryption_load(f->dir, f->cfg, &e, err, sizeof err), 0);
    assert_opens(e, v, n);
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", v, n), 1);
    free(v);
    encryption_free(e);

    /* a damaged key file is an error, not a silent new key */
    write_file(path, "not-a-key\n");
    assert_int_equal(chmod(path, 0600), 0);
    e = NULL;
    assert_int_equal(encryption_load(f->dir, NULL, &e, err, sizeof err), SKIFF_EINVAL);
    assert_non_null(strstr(err, "base64 32-byte key"));
}

/* Several servers starting on one fresh data directory agree on one key:
 * whatever each sealed, the key file left behind opens. */
static void test_default_key_race(void **state)
{
    fixture_t *f = *state;
    enum { N = 8 };
    int fds[N][2], go[2];
    pid_t pids[N];
    assert_int_equal(pipe(go), 0); /* all start together when it closes */
    for (int i = 0; i < N; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char c;
            close(go[1]);
            (void)read(go[0], &c, 1);
            encryption_t *e = NULL;
            char *v = NULL;
            size_t n = 0;
            int ok = encryption_load(f->dir, NULL, &e, NULL, 0) == 0 &&
                     encryption_seal(e, "", "secrets", SKEY, secret_json, strlen(secret_json),
                                     &v, &n) == 0 &&
                     write(fds[i][1], v, n) == (ssize_t)n;
            free(v);
            encryption_free(e);
            _exit(ok ? 0 : 1);
        }
        close(fds[i][1]);
    }
    close(go[0]);
    close(go[1]);
    encryption_t *e = NULL;
    for (int i = 0; i < N; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(encryption_load(f->dir, NULL, &e, NULL, 0), 0);
    for (int i = 0; i < N; i++) {
        char buf[1024];
        ssize_t n = read(fds[i][0], buf, sizeof buf);
        close(fds[i][0]);
        assert_true(n > 26);
        assert_opens(e, buf, (size_t)n);
    }
    encryption_free(e);
    /* no temporary files are left beside the key */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s | grep tmp)\"", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_default_creates_data_dir(void **state)
{
    fixture_t *f = *state;
    char sub[128], path[192], err[256] = "";
    snprintf(sub, sizeof sub, "%s/data", f->dir);
    snprintf(path, sizeof path, "%s/%s", sub, ENCRYPTION_KEY_FILE);
    encryption_t *e = NULL;
    assert_int_equal(encryption_load(sub, NULL, &e, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    encryption_free(e);
    unlink(path);
    rmdir(sub);
}

static void test_json_config_and_wildcards(void **state)
{
    fixture_t *f = *state;
    write_file(f->cfg,
               "{\"apiVersion\":\"apiserver.config.k8s.io/v1\","
               "\"kind\":\"EncryptionConfiguration\","
               "\"resources\":["
               "{\"resources\":[\"events\"],\"providers\":[{\"identity\":{}}]},"
               "{\"resources\":[\"configmaps\",\"*.apps\"],\"providers\":[{\"aescbc\":{\"keys\":"
               "[{\"name\":\"k1\",\"secret\":\"" KEY32_A "\"}]}}]},"
               "{\"resources\":[\"*.\"],\"providers\":[{\"secretbox\":{\"keys\":"
               "[{\"name\":\"k2\",\"secret\":\"" KEY32_B "\"}]}}]},"
               "{\"resources\":[\"*.*\"],\"providers\":[{\"aesgcm\":{\"keys\":"
               "[{\"name\":\"k3\",\"secret\":\"" KEY32_A "\"}]}}]}]}");
    encryption_t *e = NULL;
    char err[256] = "";
    assert_int_equal(encryption_load(NULL, f->cfg, &e, err, sizeof err), 0);
    assert_non_null(strstr(encryption_source(e), "enc.yaml"));
    struct {
        const char *key, *prefix;
    } cases[] = {
        {"/registry/core/events/ns/e1", NULL}, /* earlier entries win over *.* */
        {"/registry/core/configmaps/ns/c", "k8s:enc:aescbc:v1:k1:"},
        {"/registry/apps/deployments/ns/d", "k8s:enc:aescbc:v1:k1:"},
        {"/registry/core/secrets/ns/s", "k8s:enc:secretbox:v1:k2:"},
        {"/registry/core/namespaces/default", "k8s:enc:secretbox:v1:k2:"},
        {"/registry/batch/jobs/ns/j", "k8s:enc:aesgcm:v1:k3:"},
        {"/other/place", NULL}, /* outside /registry/: never encrypted */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *v = NULL, *back = NULL;
        size_t n = 0, bn = 0;
        assert_int_equal(encryption_seal_key(e, cases[i].key, secret_json, strlen(secret_json),
                                             &v, &n),
                         0);
        if (cases[i].prefix)
            assert_memory_equal(v, cases[i].prefix, strlen(cases[i].prefix));
        else
            assert_string_equal(v, secret_json);
        assert_int_equal(encryption_needs_rewrite_key(e, cases[i].key, v, n), 0);
        assert_int_equal(encryption_open_key(e, cases[i].key, v, n, &back, &bn, err, sizeof err),
                         0);
        assert_int_equal(bn, strlen(secret_json));
        assert_memory_equal(back, secret_json, bn);
        free(back);
        free(v);
    }
    assert_int_equal(encryption_applies(e, "", "events"), 0);
    assert_int_equal(encryption_applies(e, "apps", "replicasets"), 1);
    /* an encrypted value where identity writes now: needs a rewrite to plaintext */
    char *v = NULL;
    size_t n = 0;
    assert_int_equal(encryption_seal_key(e, "/registry/core/configmaps/ns/c", "x", 1, &v, &n), 0);
    assert_int_equal(encryption_needs_rewrite_key(e, "/registry/core/events/ns/c", v, n), 1);
    free(v);
    encryption_free(e);
}

static void test_bad_configs(void **state)
{
    fixture_t *f = *state;
    static const char head[] = "apiVersion: apiserver.config.k8s.io/v1\n"
                               "kind: EncryptionConfiguration\nresources:\n";
    struct {
        const char *body;
        const char *expect;
    } cases[] = {
        {"- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: k\n"
         "        secret: c2hvcnQ=\n",
         "resources[0].providers[0].aesgcm.keys[0].secret: key must be 16, 24 or 32 bytes for "
         "aesgcm, got 5 bytes"},
        {"- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      - name: k\n"
         "        secret: " KEY16 "\n",
         "key must be 32 bytes for secretbox, got 16 bytes"},
        {"- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k\n"
         "        secret: \"not base64!\"\n",
         "keys[0].secret: secrets must be base64 encoded"},
        {"- resources: [secrets]\n  providers:\n  - aescbc:\n      keys: []\n",
         "aescbc.keys: at least one key is required"},
        {"- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - secret: " KEY32_A
         "\n",
         "keys[0].name: name is a mandatory field"},
        {"- resources: [secrets]\n  providers:\n  - identity: {}\n    aescbc:\n      keys:\n"
         "      - name: k\n        secret: " KEY32_A "\n",
         "more than one provider specified in a single element"},
        {"- resources: [secrets]\n  providers:\n  - kms:\n      name: vault\n",
         "kms provider is not supported"},
        {"- resources: [secrets]\n  providers:\n  - aesccm: {}\n", "unknown provider \"aesccm\""},
        {"- resources: [secrets]\n  providers: []\n", "providers: at least one provider"},
        {"- resources: []\n  providers:\n  - identity: {}\n", "at least one resource"},
        {"- resources: ['*']\n  providers:\n  - identity: {}\n", "use '*.'"},
        {"- resources: [Secrets]\n  providers:\n  - identity: {}\n", "capital letters"},
        {"- resources: [secrets, '*.']\n  providers:\n  - identity: {}\n", "overlapping"},
        {"- resources: [secrets, secrets]\n  providers:\n  - identity: {}\n",
         "cannot be specified multiple times"},
        {"- resources: [secrets.*]\n  providers:\n  - identity: {}\n", "across groups"},
        {"- resources: [secrets]\n  provider:\n  - identity: {}\n", "unknown field \"provider\""},
        {"- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k\n"
         "        secert: " KEY32_A "\n",
         "unknown field \"secert\""},
        {"- resources: [secrets\n", "line "},
        {"", "resources: at least one resources entry"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s%s", head, cases[i].body);
        write_file(f->cfg, text);
        encryption_t *e = NULL;
        char err[512] = "";
        int rc = encryption_load(NULL, f->cfg, &e, err, sizeof err);
        if (rc != SKIFF_EINVAL || !strstr(err, cases[i].expect))
            print_error("case %zu: rc %d, message \"%s\"; expected \"%s\"\n", i, rc, err,
                        cases[i].expect);
        assert_int_equal(rc, SKIFF_EINVAL);
        assert_null(e);
        assert_non_null(strstr(err, cases[i].expect));
        assert_non_null(strstr(err, f->cfg)); /* the message names the file */
    }

    struct {
        const char *text, *expect;
    } whole[] = {
        {"apiVersion: v1\nkind: EncryptionConfig\nresources: []\n",
         "apiVersion must be apiserver.config.k8s.io/v1"},
        {"apiVersion: apiserver.config.k8s.io/v1\nkind: Secret\n", "kind must be "
                                                                   "EncryptionConfiguration"},
        {"{\"apiVersion\": \"apiserver.config.k8s.io/v1\",}", "line 1"},
        {"", "empty document"},
        /* aliases multiplying a subtree are cut off, not expanded */
        {"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
         "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
         "too many nodes"},
        {"- a\n- b\n", "must be an EncryptionConfiguration object"},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        write_file(f->cfg, whole[i].text);
        encryption_t *e = NULL;
        char err[512] = "";
        assert_int_equal(encryption_load(NULL, f->cfg, &e, err, sizeof err), SKIFF_EINVAL);
        if (!strstr(err, whole[i].expect)) print_error("whole %zu: \"%s\"\n", i, err);
        assert_non_null(strstr(err, whole[i].expect));
    }

    /* a missing file is an I/O error naming it */
    encryption_t *e = NULL;
    char err[512] = "";
    assert_int_equal(encryption_load(NULL, "/nonexistent/enc.yaml", &e, err, sizeof err),
                     SKIFF_EIO);
    assert_non_null(strstr(err, "/nonexistent/enc.yaml"));
    assert_int_equal(encryption_load(NULL, NULL, &e, err, sizeof err), SKIFF_EINVAL);
}

static void test_unknown_prefix(void **state)
{
    fixture_t *f = *state;
    encryption_t *e = load_yaml(f, "      - aesgcm:\n          keys:\n            - name: key1\n"
                                   "              secret: " KEY32_A "\n");
    char err[256] = "";
    static const char kms[] = "k8s:enc:kms:v2:vault:\x01\x02\x03";
    assert_int_equal(open_err(e, SKEY, kms, sizeof kms - 1, err, sizeof err), SKIFF_EINVAL);
    assert_non_null(strstr(err, "k8s:enc:kms:v2:vault"));
    assert_int_equal(encryption_needs_rewrite(e, "", "secrets", kms, sizeof kms - 1), 1);
    /* a bare prefix is sealed, but no key fits */
    assert_int_equal(open_err(e, SKEY, "k8s:enc:", 8, err, sizeof err), SKIFF_EINVAL);
    assert_int_equal(encryption_is_sealed("k8s:en", 6), 0);
    /* an empty value round-trips */
    char *v = NULL, *back = NULL;
    size_t n = 0, bn = 1;
    assert_int_equal(encryption_seal(e, "", "secrets", SKEY, "", 0, &v, &n), 0);
    assert_int_equal(encryption_open(e, "", "secrets", SKEY, v, n, &back, &bn, err, sizeof err), 0);
    assert_int_equal(bn, 0);
    assert_string_equal(back, "");
    free(v);
    free(back);
    encryption_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_key_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_creates_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aesgcm_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aescbc_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secretbox_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubernetes_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_config_and_wildcards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_configs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_prefix, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
