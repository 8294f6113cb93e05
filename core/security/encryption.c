/* core/security/encryption.c - encryption at rest of stored object values in
 * Kubernetes' "k8s:enc:<provider>:v1:<key>:" format (see encryption.h):
 * loading the default data-directory key or an EncryptionConfiguration file,
 * and sealing, opening and rewrite checks of single values.
 *
 * It only transforms bytes: it never talks to the store, and after
 * encryption_load() it does no file I/O, so it may run on the event loop. */
#include "security/encryption.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <skiff/errors.h>

#include "util/yaml_json.h"

#define GCM_NONCE 12
#define GCM_TAG 16
#define CBC_IV 16
#define SECRETBOX_NONCE crypto_secretbox_NONCEBYTES
#define SECRETBOX_MAC crypto_secretbox_MACBYTES
#define MAX_KEY 32
#define MAX_CONFIG_BYTES (1 << 20)

typedef enum { PROV_IDENTITY, PROV_AESGCM, PROV_AESCBC, PROV_SECRETBOX } prov_kind_t;

static const char *const prov_names[] = {"identity", "aesgcm", "aescbc", "secretbox"};

/* One provider key (or the identity provider), in configuration order. */
typedef struct enc_key {
    prov_kind_t kind;
    char *name;
    char *prefix; /* "k8s:enc:<provider>:v1:<name>:"; NULL for identity */
    size_t prefixlen;
    unsigned char secret[MAX_KEY];
    size_t secretlen;
} enc_key_t;

/* "<resource>.<group>" from a resources list; "*" is a wildcard. */
typedef struct enc_rule {
    char *group;
    char *resource;
} enc_rule_t;

typedef struct enc_entry {
    enc_rule_t *rules;
    size_t nrules;
    enc_key_t *keys; /* keys[0] encrypts */
    size_t nkeys;
} enc_entry_t;

struct encryption {
    enc_entry_t *entries;
    size_t nentries;
    enc_key_t *extra; /* decrypt-only keys (the data-directory key beside a config file) */
    size_t nextra;
    char *source;
};

static enc_key_t identity_key = {.kind = PROV_IDENTITY, .name = "identity"};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- base64 (standard alphabet, padded, as Go's StdEncoding) --------------- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes s into out (at most cap bytes). Line breaks are skipped, as Go's
 * decoder does. Returns the length, -1 when s is not valid base64, -2 when
 * it decodes to more than cap bytes. */
static long b64_decode(const char *s, unsigned char *out, size_t cap)
{
    unsigned char q[4];
    size_t nq = 0, n = 0;
    int done = 0;
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r') continue;
        if (done) return -1;
        q[nq++] = (unsigned char)*s;
        if (nq < 4) continue;
        nq = 0;
        int v[4];
        int pad = 0;
        for (int i = 0; i < 4; i++) {
            if (q[i] == '=') {
                if (i < 2) return -1;
                pad++;
                v[i] = 0;
            } else {
                if (pad) return -1;
                v[i] = b64val(q[i]);
                if (v[i] < 0) return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        unsigned char b[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w};
        /* Non-canonical encodings (stray bits under the padding) are refused. */
        if ((pad == 1 && (v[2] & 0x3)) || (pad == 2 && (v[1] & 0xf))) return -1;
        for (int i = 0; i < 3 - pad; i++) {
            if (n == cap) return -2;
            out[n++] = b[i];
        }
        if (pad) done = 1;
    }
    return nq ? -1 : (long)n;
}

/* ---- keys and the structure ------------------------------------------------ */

static void key_clear(enc_key_t *k)
{
    if (k == &identity_key) return;
    free(k->name);
    free(k->prefix);
    OPENSSL_cleanse(k->secret, sizeof k->secret);
}

static int key_init(enc_key_t *k, prov_kind_t kind, const char *name, const unsigned char *secret,
                    size_t secretlen)
{
    memset(k, 0, sizeof *k);
    k->kind = kind;
    k->name = strdup(kind == PROV_IDENTITY ? "identity" : name);
    if (!k->name) return SKIFF_ENOMEM;
    if (kind == PROV_IDENTITY) return 0;
    size_t n = strlen(ENCRYPTION_PREFIX) + strlen(prov_names[kind]) + strlen(name) + 6;
    k->prefix = malloc(n);
    if (!k->prefix) return SKIFF_ENOMEM;
    k->prefixlen =
        (size_t)snprintf(k->prefix, n, "%s%s:v1:%s:", ENCRYPTION_PREFIX, prov_names[kind], name);
    memcpy(k->secret, secret, secretlen);
    k->secretlen = secretlen;
    return 0;
}

void encryption_free(encryption_t *e)
{
    if (!e) return;
    for (size_t i = 0; i < e->nentries; i++) {
        enc_entry_t *en = &e->entries[i];
        for (size_t j = 0; j < en->nrules; j++) {
            free(en->rules[j].group);
            free(en->rules[j].resource);
        }
        free(en->rules);
        for (size_t j = 0; j < en->nkeys; j++) key_clear(&en->keys[j]);
        free(en->keys);
    }
    free(e->entries);
    for (size_t i = 0; i < e->nextra; i++) key_clear(&e->extra[i]);
    free(e->extra);
    free(e->source);
    free(e);
}

const char *encryption_source(const encryption_t *e)
{
    return e && e->source ? e->source : "none";
}

/* ---- the data-directory key file ------------------------------------------- */

static int read_small_file(int fd, const char *path, char *buf, size_t cap, size_t *len,
                           char *err, size_t errlen)
{
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            seterr(err, errlen, "%s: file too large", path);
            return SKIFF_EINVAL;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            seterr(err, errlen, "%s: %s", path, strerror(errno));
            return SKIFF_EIO;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    *len = n;
    return 0;
}

/* Reads a base64 32-byte key from an existing file, refusing one that other
 * users may read. Returns SKIFF_ENOENT when the file does not exist. */
static int key_file_read(const char *path, unsigned char key[MAX_KEY], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return SKIFF_ENOENT;
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return SKIFF_EIO;
    }
    char buf[256];
    size_t len = 0;
    int rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        rc = SKIFF_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        rc = SKIFF_EINVAL;
        goto out;
    }
    if (st.st_mode & 077) {
        seterr(err, errlen, "%s: the key file is accessible to other users (mode %04o); "
               "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
        rc = SKIFF_EINVAL;
        goto out;
    }
    rc = read_small_file(fd, path, buf, sizeof buf - 1, &len, err, errlen);
    if (rc) goto out;
    while (len && isspace((unsigned char)buf[len - 1])) len--;
    buf[len] = 0;
    size_t start = 0;
    while (start < len && isspace((unsigned char)buf[start])) start++;
    long n = b64_decode(buf + start, key, MAX_KEY);
    if (n != MAX_KEY) {
        seterr(err, errlen, "%s: must hold a base64 32-byte key (%s)", path,
               n == -1 ? "not valid base64" : "wrong length");
        rc = SKIFF_EINVAL;
    }
out:
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return rc;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* Creates the key file with a fresh key: the whole file is written and
 * synced under a temporary name, then linked into place, so no reader sees a
 * partial key and two servers racing agree on one key (the loser reads the
 * winner's). Returns SKIFF_EEXIST when another process created it first. */
static int key_file_create(const char *dir, const char *path, char *err, size_t errlen)
{
    unsigned char key[MAX_KEY];
    char text[64];
    char tmp[4096];
    int rc = 0;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp) {
        seterr(err, errlen, "%s: path too long", path);
        return SKIFF_EINVAL;
    }
    if (RAND_bytes(key, sizeof key) != 1) {
        seterr(err, errlen, "%s: no random bytes for a new key", path);
        return SKIFF_EIO;
    }
    int n = EVP_EncodeBlock((unsigned char *)text, key, sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    text[n++] = '\n';
    int fd = mkstemp(tmp);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", tmp, strerror(errno));
        rc = SKIFF_EIO;
        goto out;
    }
    size_t off = 0;
    if (fchmod(fd, 0600) != 0) goto ioerr;
    while (off < (size_t)n) {
        ssize_t w = write(fd, text + off, (size_t)n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) goto ioerr;
        off += (size_t)w;
    }
    if (fsync(fd) != 0) goto ioerr;
    if (close(fd) != 0) {
        fd = -1;
        goto ioerr;
    }
    fd = -1;
    if (link(tmp, path) != 0) {
        if (errno == EEXIST)
            rc = SKIFF_EEXIST;
        else
            goto ioerr;
    }
    unlink(tmp);
    fsync_dir(dir);
    goto out;
ioerr:
    seterr(err, errlen, "%s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(tmp);
    rc = SKIFF_EIO;
out:
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

static int key_path(const char *data_dir, char *buf, size_t len, char *err, size_t errlen)
{
    int n = snprintf(buf, len, "%s/%s", data_dir, ENCRYPTION_KEY_FILE);
    if (n < 0 || (size_t)n >= len) {
        seterr(err, errlen, "%s: data directory path too long", data_dir);
        return SKIFF_EINVAL;
    }
    return 0;
}

static int rule_add(enc_entry_t *en, const char *group, const char *resource)
{
    enc_rule_t *r = realloc(en->rules, (en->nrules + 1) * sizeof *r);
    if (!r) return SKIFF_ENOMEM;
    en->rules = r;
    r = &en->rules[en->nrules];
    r->group = strdup(group);
    r->resource = strdup(resource);
    if (!r->group || !r->resource) {
        free(r->group);
        free(r->resource);
        return SKIFF_ENOMEM;
    }
    en->nrules++;
    return 0;
}

static int load_default(const char *data_dir, encryption_t *e, char *err, size_t errlen)
{
    char path[4096];
    unsigned char key[MAX_KEY];
    int rc = key_path(data_dir, path, sizeof path, err, errlen);
    if (rc) return rc;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        seterr(err, errlen, "%s: %s", data_dir, strerror(errno));
        return SKIFF_EIO;
    }
    rc = key_file_read(path, key, err, errlen);
    if (rc == SKIFF_ENOENT) {
        rc = key_file_create(data_dir, path, err, errlen);
        if (rc == 0 || rc == SKIFF_EEXIST) rc = key_file_read(path, key, err, errlen);
        if (rc == SKIFF_ENOENT) {
            seterr(err, errlen, "%s: vanished after it was created", path);
            rc = SKIFF_EIO;
        }
    }
    if (rc) goto out;
    e->entries = calloc(1, sizeof *e->entries);
    if (!e->entries) {
        rc = SKIFF_ENOMEM;
        goto out;
    }
    e->nentries = 1;
    enc_entry_t *en = &e->entries[0];
    en->keys = calloc(2, sizeof *en->keys);
    if (!en->keys) {
        rc = SKIFF_ENOMEM;
        goto out;
    }
    /* aesgcm encrypts; identity reads what was stored before. */
    rc = key_init(&en->keys[0], PROV_AESGCM, "default", key, sizeof key);
    en->nkeys = 1;
    if (rc == 0) rc = key_init(&en->keys[1], PROV_IDENTITY, NULL, NULL, 0);
    if (rc == 0) en->nkeys = 2;
    if (rc == 0) rc = rule_add(en, "", "secrets");
    if (rc == 0) {
        size_t n = strlen(path) + 10;
        e->source = malloc(n);
        if (!e->source)
            rc = SKIFF_ENOMEM;
        else
            snprintf(e->source, n, "key file %s", path);
    }
out:
    OPENSSL_cleanse(key, sizeof key);
    if (rc == SKIFF_ENOMEM) seterr(err, errlen, "out of memory");
    return rc;
}

/* ---- configuration file: validation and building ----------------------------- */

/* Field path for messages, Kubernetes style: resources[0].providers[1].aesgcm */
typedef struct path {
    char s[256];
} path_t;

static int only_fields(json_t *obj, const char *const *allowed, const char *where, char *err,
                       size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(k, *a) == 0) ok = 1;
        if (!ok) {
            seterr(err, errlen, "%s%sunknown field \"%s\"", where, *where ? ": " : "", k);
            return SKIFF_EINVAL;
        }
    }
    return 0;
}

static const char *key_sizes_text(prov_kind_t kind)
{
    return kind == PROV_SECRETBOX ? "32" : "16, 24 or 32";
}

static int key_size_ok(prov_kind_t kind, size_t n)
{
    if (kind == PROV_SECRETBOX) return n == 32;
    return n == 16 || n == 24 || n == 32;
}

static int build_keys(enc_entry_t *en, prov_kind_t kind, json_t *conf, const char *where,
                      char *err, size_t errlen)
{
    static const char *const conf_fields[] = {"keys", NULL};
    static const char *const key_fields[] = {"name", "secret", NULL};
    if (!json_is_object(conf)) {
        seterr(err, errlen, "%s: must be an object with \"keys\"", where);
        return SKIFF_EINVAL;
    }
    int rc = only_fields(conf, conf_fields, where, err, errlen);
    if (rc) return rc;
    json_t *keys = json_object_get(conf, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        seterr(err, errlen, "%s.keys: at least one key is required", where);
        return SKIFF_EINVAL;
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        char kw[512];
        snprintf(kw, sizeof kw, "%s.keys[%zu]", where, i);
        if (!json_is_object(k)) {
            seterr(err, errlen, "%s: must be an object with name and secret", kw);
            return SKIFF_EINVAL;
        }
        rc = only_fields(k, key_fields, kw, err, errlen);
        if (rc) return rc;
        const char *name = json_string_value(json_object_get(k, "name"));
        const char *secret = json_string_value(json_object_get(k, "secret"));
        if (!name || !*name) {
            seterr(err, errlen, "%s.name: name is a mandatory field for a key", kw);
            return SKIFF_EINVAL;
        }
        if (!secret || !*secret) {
            seterr(err, errlen, "%s.secret: secret is a mandatory field for a key", kw);
            return SKIFF_EINVAL;
        }
        unsigned char raw[MAX_KEY + 1];
        long n = b64_decode(secret, raw, sizeof raw);
        if (n == -1) {
            seterr(err, errlen, "%s.secret: secrets must be base64 encoded", kw);
            return SKIFF_EINVAL;
        }
        if (n < 0 || !key_size_ok(kind, (size_t)n)) {
            char got[32];
            if (n < 0)
                snprintf(got, sizeof got, "more than %d", MAX_KEY);
            else
                snprintf(got, sizeof got, "%ld", n);
            seterr(err, errlen, "%s.secret: key must be %s bytes for %s, got %s bytes", kw,
                   key_sizes_text(kind), prov_names[kind], got);
            OPENSSL_cleanse(raw, sizeof raw);
            return SKIFF_EINVAL;
        }
        enc_key_t *nk = realloc(en->keys, (en->nkeys + 1) * sizeof *nk);
        if (!nk) {
            OPENSSL_cleanse(raw, sizeof raw);
            return SKIFF_ENOMEM;
        }
        en->keys = nk;
        rc = key_init(&en->keys[en->nkeys], kind, name, raw, (size_t)n);
        OPENSSL_cleanse(raw, sizeof raw);
        en->nkeys++; /* counted even on failure so encryption_free releases it */
        if (rc) return rc;
    }
    return 0;
}

static int build_provider(enc_entry_t *en, json_t *p, const char *where, char *err, size_t errlen)
{
    if (!json_is_object(p) || json_object_size(p) == 0) {
        seterr(err, errlen, "%s: provider does not contain any of the expected providers: "
               "aescbc, aesgcm, secretbox, identity", where);
        return SKIFF_EINVAL;
    }
    if (json_object_size(p) > 1) {
        seterr(err, errlen, "%s: more than one provider specified in a single element, should "
               "split into different list elements", where);
        return SKIFF_EINVAL;
    }
    const char *name = json_object_iter_key(json_object_iter(p));
    json_t *conf = json_object_get(p, name);
    char pw[300];
    snprintf(pw, sizeof pw, "%s.%s", where, name);
    if (strcmp(name, "identity") == 0) {
        if (!json_is_null(conf) && !(json_is_object(conf) && json_object_size(conf) == 0)) {
            seterr(err, errlen, "%s: identity takes no settings ({})", pw);
            return SKIFF_EINVAL;
        }
        enc_key_t *nk = realloc(en->keys, (en->nkeys + 1) * sizeof *nk);
        if (!nk) return SKIFF_ENOMEM;
        en->keys = nk;
        int rc = key_init(&en->keys[en->nkeys], PROV_IDENTITY, NULL, NULL, 0);
        en->nkeys++;
        return rc;
    }
    if (strcmp(name, "kms") == 0) {
        seterr(err, errlen, "%s: the kms provider is not supported; use aescbc, aesgcm or "
               "secretbox", pw);
        return SKIFF_EINVAL;
    }
    for (int kind = PROV_AESGCM; kind <= PROV_SECRETBOX; kind++)
        if (strcmp(name, prov_names[kind]) == 0)
            return build_keys(en, (prov_kind_t)kind, conf, pw, err, errlen);
    seterr(err, errlen, "%s: unknown provider \"%s\"; expected aescbc, aesgcm, secretbox or "
           "identity", where, name);
    return SKIFF_EINVAL;
}

static int has_upper(const char *s)
{
    for (; *s; s++)
        if (isupper((unsigned char)*s)) return 1;
    return 0;
}

/* "secrets", "deployments.apps", "*.apps", "*." (core group) or "*.*". */
static int build_rules(enc_entry_t *en, json_t *list, const char *where, char *err, size_t errlen)
{
    if (!json_is_array(list) || json_array_size(list) == 0) {
        seterr(err, errlen, "%s: at least one resource is required", where);
        return SKIFF_EINVAL;
    }
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r) {
        const char *s = json_string_value(r);
        if (!s || !*s) {
            seterr(err, errlen, "%s[%zu]: must be a resource name such as secrets or "
                   "deployments.apps", where, i);
            return SKIFF_EINVAL;
        }
        if (has_upper(s)) {
            seterr(err, errlen, "%s[%zu]: resource name should not contain capital letters "
                   "(\"%s\")", where, i, s);
            return SKIFF_EINVAL;
        }
        if (strcmp(s, "*") == 0) {
            seterr(err, errlen, "%s[%zu]: use '*.' to encrypt all the resources from the core "
                   "API group or '*.*' to encrypt all resources", where, i);
            return SKIFF_EINVAL;
        }
        const char *dot = strchr(s, '.');
        char *res = dot ? strndup(s, (size_t)(dot - s)) : strdup(s);
        if (!res) return SKIFF_ENOMEM;
        const char *group = dot ? dot + 1 : "";
        if (strcmp(group, "*") == 0 && strcmp(res, "*") != 0) {
            seterr(err, errlen, "%s[%zu]: encrypting the same resource across groups (\"%s\") "
                   "is not supported", where, i, s);
            free(res);
            return SKIFF_EINVAL;
        }
        for (size_t j = 0; j < en->nrules; j++) {
            const enc_rule_t *o = &en->rules[j];
            int same = strcmp(o->resource, res) == 0 && strcmp(o->group, group) == 0;
            int overlap = (strcmp(o->group, "*") == 0 || strcmp(group, "*") == 0) ||
                          (strcmp(o->group, group) == 0 &&
                           (strcmp(o->resource, "*") == 0 || strcmp(res, "*") == 0));
            if (same || overlap) {
                seterr(err, errlen, "%s[%zu]: %s", where, i,
                       same ? "the same resource cannot be specified multiple times"
                            : "overlapping resources (such as 'secrets' and '*.') in the same "
                              "list are not allowed as one masks the other");
                free(res);
                return SKIFF_EINVAL;
            }
        }
        int rc = rule_add(en, group, res);
        free(res);
        if (rc) return rc;
    }
    return 0;
}

static int build_config(encryption_t *e, json_t *root, char *err, size_t errlen)
{
    static const char *const top_fields[] = {"apiVersion", "kind", "resources", NULL};
    static const char *const entry_fields[] = {"resources", "providers", NULL};
    if (!json_is_object(root)) {
        seterr(err, errlen, "must be an EncryptionConfiguration object");
        return SKIFF_EINVAL;
    }
    const char *av = json_string_value(json_object_get(root, "apiVersion"));
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (!av || strcmp(av, "apiserver.config.k8s.io/v1") != 0) {
        seterr(err, errlen, "apiVersion must be apiserver.config.k8s.io/v1 (got %s)",
               av ? av : "none");
        return SKIFF_EINVAL;
    }
    if (!kind || strcmp(kind, "EncryptionConfiguration") != 0) {
        seterr(err, errlen, "kind must be EncryptionConfiguration (got %s)", kind ? kind : "none");
        return SKIFF_EINVAL;
    }
    int rc = only_fields(root, top_fields, "", err, errlen);
    if (rc) return rc;
    json_t *list = json_object_get(root, "resources");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        seterr(err, errlen, "resources: at least one resources entry is required");
        return SKIFF_EINVAL;
    }
    e->entries = calloc(json_array_size(list), sizeof *e->entries);
    if (!e->entries) return SKIFF_ENOMEM;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        enc_entry_t *en = &e->entries[i];
        e->nentries = i + 1;
        char where[64];
        snprintf(where, sizeof where, "resources[%zu]", i);
        if (!json_is_object(item)) {
            seterr(err, errlen, "%s: must be an object with resources and providers", where);
            return SKIFF_EINVAL;
        }
        rc = only_fields(item, entry_fields, where, err, errlen);
        if (rc) return rc;
        char rw[80];
        snprintf(rw, sizeof rw, "%s.resources", where);
        rc = build_rules(en, json_object_get(item, "resources"), rw, err, errlen);
        if (rc) return rc;
        json_t *providers = json_object_get(item, "providers");
        if (!json_is_array(providers) || json_array_size(providers) == 0) {
            seterr(err, errlen, "%s.providers: at least one provider is required", where);
            return SKIFF_EINVAL;
        }
        size_t j;
        json_t *p;
        json_array_foreach(providers, j, p) {
            char pw[96];
            snprintf(pw, sizeof pw, "%s.providers[%zu]", where, j);
            rc = build_provider(en, p, pw, err, errlen);
            if (rc) return rc;
        }
    }
    return 0;
}

static int load_config(const char *path, encryption_t *e, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return SKIFF_EIO;
    }
    text = malloc(MAX_CONFIG_BYTES + 1);
    if (!text) {
        close(fd);
        return SKIFF_ENOMEM;
    }
    rc = read_small_file(fd, path, text, MAX_CONFIG_BYTES, &len, err, errlen);
    close(fd);
    if (rc) goto out;
    text[len] = 0;
    char msg[512] = "";
    root = yaml_json_load(text, len, YAML_JSON_REJECT_DUPLICATES, msg, sizeof msg);
    if (!root) {
        seterr(err, errlen, "%s: %s", path, msg[0] ? msg : "out of memory");
        rc = msg[0] ? SKIFF_EINVAL : SKIFF_ENOMEM;
        goto out;
    }
    rc = build_config(e, root, msg, sizeof msg);
    if (rc) {
        seterr(err, errlen, "%s: %s", path, rc == SKIFF_ENOMEM ? "out of memory" : msg);
        goto out;
    }
    size_t n = strlen(path) + 16;
    e->source = malloc(n);
    if (!e->source) {
        rc = SKIFF_ENOMEM;
        goto out;
    }
    snprintf(e->source, n, "configuration %s", path);
out:
    json_decref(root);
    if (text) OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

/* The data-directory key beside a configuration file: values written under
 * the default configuration keep opening after the switch. */
static int load_extra_key(const char *data_dir, encryption_t *e, char *err, size_t errlen)
{
    char path[4096];
    unsigned char key[MAX_KEY];
    int rc = key_path(data_dir, path, sizeof path, err, errlen);
    if (rc) return rc;
    rc = key_file_read(path, key, err, errlen);
    if (rc == SKIFF_ENOENT) return 0;
    if (rc) return rc;
    e->extra = calloc(1, sizeof *e->extra);
    if (!e->extra) {
        rc = SKIFF_ENOMEM;
    } else {
        rc = key_init(&e->extra[0], PROV_AESGCM, "default", key, sizeof key);
        e->nextra = 1;
    }
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int encryption_load(const char *data_dir, const char *config_path, encryption_t **out, char *err,
                    size_t errlen)
{
    if (!out || (!config_path && !data_dir)) {
        seterr(err, errlen, "a data directory or an encryption configuration is required");
        return SKIFF_EINVAL;
    }
    if (err && errlen) err[0] = 0;
    if (sodium_init() < 0) {
        seterr(err, errlen, "libsodium failed to initialise");
        return SKIFF_EIO;
    }
    encryption_t *e = calloc(1, sizeof *e);
    if (!e) return SKIFF_ENOMEM;
    int rc;
    if (config_path) {
        rc = load_config(config_path, e, err, errlen);
        if (rc == 0 && data_dir) rc = load_extra_key(data_dir, e, err, errlen);
    } else {
        rc = load_default(data_dir, e, err, errlen);
    }
    if (rc) {
        if (rc == SKIFF_ENOMEM && err && errlen && !err[0]) seterr(err, errlen, "out of memory");
        encryption_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

/* ---- choosing keys ------------------------------------------------------------ */

static const enc_entry_t *entry_for(const encryption_t *e, const char *group, const char *resource)
{
    if (!e || !resource) return NULL;
    if (!group || strcmp(group, "core") == 0) group = "";
    for (size_t i = 0; i < e->nentries; i++) {
        const enc_entry_t *en = &e->entries[i];
        for (size_t j = 0; j < en->nrules; j++) {
            const enc_rule_t *r = &en->rules[j];
            if (strcmp(r->group, "*") == 0) return en; /* only "*.*" gets here */
            if (strcmp(r->group, group) != 0) continue;
            if (strcmp(r->resource, "*") == 0 || strcmp(r->resource, resource) == 0) return en;
        }
    }
    return NULL;
}

static const enc_key_t *write_key(const encryption_t *e, const char *group, const char *resource)
{
    const enc_entry_t *en = entry_for(e, group, resource);
    return en && en->nkeys ? &en->keys[0] : &identity_key;
}

int encryption_applies(const encryption_t *e, const char *group, const char *resource)
{
    return write_key(e, group, resource)->kind != PROV_IDENTITY;
}

int encryption_is_sealed(const void *stored, size_t len)
{
    size_t n = strlen(ENCRYPTION_PREFIX);
    return stored && len >= n && memcmp(stored, ENCRYPTION_PREFIX, n) == 0;
}

/* ---- ciphers ---------------------------------------------------------------------- */

static const EVP_CIPHER *aes_cipher(prov_kind_t kind, size_t keylen)
{
    if (kind == PROV_AESGCM)
        return keylen == 16   ? EVP_aes_128_gcm()
               : keylen == 24 ? EVP_aes_192_gcm()
                              : EVP_aes_256_gcm();
    return keylen == 16 ? EVP_aes_128_cbc() : keylen == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
}

/* nonce(12) || ciphertext || tag(16), the store key authenticated. */
static int gcm_seal(const enc_key_t *k, const unsigned char *aad, size_t aadlen,
                    const unsigned char *in, size_t len, unsigned char *out)
{
    int rc = SKIFF_EIO, n;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return SKIFF_ENOMEM;
    if (RAND_bytes(out, GCM_NONCE) != 1) goto out;
    if (EVP_EncryptInit_ex(c, aes_cipher(k->kind, k->secretlen), NULL, k->secret, out) != 1)
        goto out;
    if (aadlen && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1) goto out;
    if (len && EVP_EncryptUpdate(c, out + GCM_NONCE, &n, in, (int)len) != 1) goto out;
    if (EVP_EncryptFinal_ex(c, out + GCM_NONCE + len, &n) != 1) goto out;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, out + GCM_NONCE + len) != 1)
        goto out;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

static int gcm_open(const enc_key_t *k, const unsigned char *aad, size_t aadlen,
                    const unsigned char *in, size_t len, unsigned char *out, size_t *outlen)
{
    if (len < GCM_NONCE + GCM_TAG) return SKIFF_EINVAL;
    size_t clen = len - GCM_NONCE - GCM_TAG;
    int rc = SKIFF_EINVAL, n;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return SKIFF_ENOMEM;
    if (EVP_DecryptInit_ex(c, aes_cipher(k->kind, k->secretlen), NULL, k->secret, in) != 1)
        goto out;
    if (aadlen && EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1) goto out;
    if (clen && EVP_DecryptUpdate(c, out, &n, in + GCM_NONCE, (int)clen) != 1) goto out;
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, (void *)(in + GCM_NONCE + clen)) != 1)
        goto out;
    if (EVP_DecryptFinal_ex(c, out + clen, &n) != 1) goto out; /* tag mismatch */
    *outlen = clen;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* iv(16) || AES-CBC ciphertext with PKCS#7 padding (OpenSSL's default). */
static int cbc_seal(const enc_key_t *k, const unsigned char *in, size_t len, unsigned char *out,
                    size_t *outlen)
{
    int rc = SKIFF_EIO, n1 = 0, n2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return SKIFF_ENOMEM;
    if (RAND_bytes(out, CBC_IV) != 1) goto out;
    if (EVP_EncryptInit_ex(c, aes_cipher(k->kind, k->secretlen), NULL, k->secret, out) != 1)
        goto out;
    if (len && EVP_EncryptUpdate(c, out + CBC_IV, &n1, in, (int)len) != 1) goto out;
    if (EVP_EncryptFinal_ex(c, out + CBC_IV + n1, &n2) != 1) goto out;
    *outlen = CBC_IV + (size_t)n1 + (size_t)n2;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

static int cbc_open(const enc_key_t *k, const unsigned char *in, size_t len, unsigned char *out,
                    size_t *outlen)
{
    if (len < 2 * CBC_IV || (len - CBC_IV) % CBC_IV != 0) return SKIFF_EINVAL;
    int rc = SKIFF_EINVAL, n1 = 0, n2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) return SKIFF_ENOMEM;
    if (EVP_DecryptInit_ex(c, aes_cipher(k->kind, k->secretlen), NULL, k->secret, in) != 1)
        goto out;
    if (EVP_DecryptUpdate(c, out, &n1, in + CBC_IV, (int)(len - CBC_IV)) != 1) goto out;
    if (EVP_DecryptFinal_ex(c, out + n1, &n2) != 1) goto out; /* bad padding */
    *outlen = (size_t)n1 + (size_t)n2;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* nonce(24) || Poly1305 tag || XSalsa20 ciphertext, as NaCl's secretbox. */
static int secretbox_seal(const enc_key_t *k, const unsigned char *in, size_t len,
                          unsigned char *out)
{
    if (RAND_bytes(out, SECRETBOX_NONCE) != 1) return SKIFF_EIO;
    if (crypto_secretbox_easy(out + SECRETBOX_NONCE, in, len, out, k->secret) != 0)
        return SKIFF_EIO;
    return 0;
}

static int secretbox_open(const enc_key_t *k, const unsigned char *in, size_t len,
                          unsigned char *out, size_t *outlen)
{
    if (len < SECRETBOX_NONCE + SECRETBOX_MAC) return SKIFF_EINVAL;
    size_t clen = len - SECRETBOX_NONCE;
    if (crypto_secretbox_open_easy(out, in + SECRETBOX_NONCE, clen, in, k->secret) != 0)
        return SKIFF_EINVAL;
    *outlen = clen - SECRETBOX_MAC;
    return 0;
}

/* ---- seal / open / rewrite ---------------------------------------------------- */

static int copy_out(const void *src, size_t len, char **out, size_t *outlen)
{
    char *p = malloc(len + 1);
    if (!p) return SKIFF_ENOMEM;
    if (len) memcpy(p, src, len);
    p[len] = 0;
    *out = p;
    *outlen = len;
    return 0;
}

int encryption_seal(const encryption_t *e, const char *group, const char *resource,
                    const char *store_key, const void *plain, size_t len, char **out,
                    size_t *outlen)
{
    if (!out || !outlen || (!plain && len) || len > INT32_MAX - 64) return SKIFF_EINVAL;
    const enc_key_t *k = write_key(e, group, resource);
    if (k->kind == PROV_IDENTITY) return copy_out(plain, len, out, outlen);
    size_t cap = k->prefixlen + len + 64; /* nonce/IV, tag or padding */
    unsigned char *buf = malloc(cap + 1);
    if (!buf) return SKIFF_ENOMEM;
    memcpy(buf, k->prefix, k->prefixlen);
    unsigned char *body = buf + k->prefixlen;
    size_t bodylen = 0;
    int rc;
    switch (k->kind) {
    case PROV_AESGCM:
        rc = gcm_seal(k, (const unsigned char *)store_key, store_key ? strlen(store_key) : 0,
                      plain, len, body);
        bodylen = GCM_NONCE + len + GCM_TAG;
        break;
    case PROV_AESCBC:
        rc = cbc_seal(k, plain, len, body, &bodylen);
        break;
    default:
        rc = secretbox_seal(k, plain, len, body);
        bodylen = SECRETBOX_NONCE + SECRETBOX_MAC + len;
        break;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    buf[k->prefixlen + bodylen] = 0;
    *out = (char *)buf;
    *outlen = k->prefixlen + bodylen;
    return 0;
}

static int try_open(const enc_key_t *k, const char *store_key, const unsigned char *v, size_t len,
                    char **out, size_t *outlen)
{
    const unsigned char *body = v + k->prefixlen;
    size_t bodylen = len - k->prefixlen;
    unsigned char *buf = malloc(bodylen + 1);
    if (!buf) return SKIFF_ENOMEM;
    size_t n = 0;
    int rc;
    switch (k->kind) {
    case PROV_AESGCM:
        rc = gcm_open(k, (const unsigned char *)store_key, store_key ? strlen(store_key) : 0, body,
                      bodylen, buf, &n);
        break;
    case PROV_AESCBC:
        rc = cbc_open(k, body, bodylen, buf, &n);
        break;
    default:
        rc = secretbox_open(k, body, bodylen, buf, &n);
        break;
    }
    if (rc) {
        OPENSSL_cleanse(buf, bodylen);
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = (char *)buf;
    *outlen = n;
    return 0;
}

static int prefix_matches(const enc_key_t *k, const void *v, size_t len)
{
    return k->kind != PROV_IDENTITY && len >= k->prefixlen &&
           memcmp(v, k->prefix, k->prefixlen) == 0;
}

/* "k8s:enc:<provider>:v1:<name>" of a stored value, printable, for messages. */
static void describe_prefix(const unsigned char *v, size_t len, char *buf, size_t cap)
{
    size_t n = 0;
    int colons = 0;
    for (size_t i = 0; i < len && n + 1 < cap && n < 120; i++) {
        if (v[i] == ':' && ++colons == 5) break;
        buf[n++] = isprint(v[i]) ? (char)v[i] : '?';
    }
    buf[n] = 0;
}

int encryption_open(const encryption_t *e, const char *group, const char *resource,
                    const char *store_key, const void *stored, size_t len, char **out,
                    size_t *outlen, char *err, size_t errlen)
{
    if (!out || !outlen || (!stored && len)) return SKIFF_EINVAL;
    if (!encryption_is_sealed(stored, len)) return copy_out(stored, len, out, outlen);
    const unsigned char *v = stored;
    const enc_entry_t *own = entry_for(e, group, resource);
    const enc_key_t *tried = NULL;
    /* The resource's own providers first, in order; then every other key. */
    for (int pass = 0; pass < 3; pass++) {
        size_t nent = pass == 0 ? (own ? 1 : 0) : pass == 1 ? (e ? e->nentries : 0) : 1;
        for (size_t i = 0; i < nent; i++) {
            const enc_entry_t *en = pass == 0 ? own : pass == 1 ? &e->entries[i] : NULL;
            if (pass == 1 && en == own) continue;
            const enc_key_t *keys = en ? en->keys : e ? e->extra : NULL;
            size_t nkeys = en ? en->nkeys : e ? e->nextra : 0;
            for (size_t j = 0; j < nkeys; j++) {
                if (!prefix_matches(&keys[j], v, len)) continue;
                tried = &keys[j];
                int rc = try_open(&keys[j], store_key, v, len, out, outlen);
                if (rc != SKIFF_EINVAL) return rc;
            }
        }
    }
    char what[128];
    describe_prefix(v, len, what, sizeof what);
    if (tried)
        seterr(err, errlen, "%s: the value does not decrypt with %s key \"%s\" (wrong key "
               "material, or the stored data was changed or moved)", what,
               prov_names[tried->kind], tried->name);
    else
        seterr(err, errlen, "%s: no configured key fits this value (provider or key name not in "
               "the encryption configuration)", what);
    return SKIFF_EINVAL;
}

int encryption_needs_rewrite(const encryption_t *e, const char *group, const char *resource,
                             const void *stored, size_t len)
{
    const enc_key_t *k = write_key(e, group, resource);
    if (k->kind == PROV_IDENTITY) return encryption_is_sealed(stored, len);
    return !prefix_matches(k, stored, len);
}

/* ---- store-key forms -------------------------------------------------------------- */

/* "/registry/<group>/<resource>/..." -> group ("" for core) and resource. */
static int split_store_key(const char *key, char *group, size_t glen, char *res, size_t rlen)
{
    static const char root[] = "/registry/";
    if (!key || strncmp(key, root, sizeof root - 1) != 0) return -1;
    const char *g = key + sizeof root - 1;
    const char *r = strchr(g, '/');
    if (!r) return -1;
    const char *end = strchr(r + 1, '/');
    size_t gn = (size_t)(r - g), rn = end ? (size_t)(end - r - 1) : strlen(r + 1);
    if (gn == 0 || rn == 0 || gn >= glen || rn >= rlen) return -1;
    memcpy(group, g, gn);
    group[gn] = 0;
    memcpy(res, r + 1, rn);
    res[rn] = 0;
    if (strcmp(group, "core") == 0) group[0] = 0;
    return 0;
}

int encryption_seal_key(const encryption_t *e, const char *store_key, const void *plain,
                        size_t len, char **out, size_t *outlen)
{
    char g[256], r[256];
    if (split_store_key(store_key, g, sizeof g, r, sizeof r) != 0)
        return encryption_seal(NULL, "", "", store_key, plain, len, out, outlen);
    return encryption_seal(e, g, r, store_key, plain, len, out, outlen);
}

int encryption_open_key(const encryption_t *e, const char *store_key, const void *stored,
                        size_t len, char **out, size_t *outlen, char *err, size_t errlen)
{
    char g[256], r[256];
    if (split_store_key(store_key, g, sizeof g, r, sizeof r) != 0)
        return encryption_open(e, NULL, NULL, store_key, stored, len, out, outlen, err, errlen);
    return encryption_open(e, g, r, store_key, stored, len, out, outlen, err, errlen);
}

int encryption_needs_rewrite_key(const encryption_t *e, const char *store_key, const void *stored,
                                 size_t len)
{
    char g[256], r[256];
    if (split_store_key(store_key, g, sizeof g, r, sizeof r) != 0)
        return encryption_is_sealed(stored, len);
    return encryption_needs_rewrite(e, g, r, stored, len);
}
