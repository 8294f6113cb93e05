/* core/security/encryption.h - encryption at rest of stored object values.
 *
 * Values are sealed before they reach the store and opened after they come
 * back, in the format Kubernetes' kube-apiserver writes to etcd:
 *
 *   k8s:enc:aesgcm:v1:<key name>:<12-byte nonce><ciphertext><16-byte tag>
 *   k8s:enc:aescbc:v1:<key name>:<16-byte IV><ciphertext, PKCS#7 padded>
 *   k8s:enc:secretbox:v1:<key name>:<24-byte nonce><Poly1305 tag><ciphertext>
 *   identity: the value as is
 *
 * AES-GCM authenticates the store key with the value (as Kubernetes does with
 * the etcd key), so a sealed value copied under another key does not open.
 *
 * The configuration is either the default (a 32-byte key kept in
 * <data-dir>/secrets.key, AES-GCM, Secrets only) or a Kubernetes
 * EncryptionConfiguration file (apiserver.config.k8s.io/v1), YAML or JSON.
 * For each resource the first provider encrypts; every configured key
 * decrypts, chosen by the value's prefix. Values without the "k8s:enc:"
 * prefix are plaintext written before encryption was turned on and are read
 * as they are.
 *
 * Use in a store path, with the key the value lives under:
 *   write: encryption_seal_key(e, key, body, len, &v, &n); store v, n; free(v)
 *   read:  if (encryption_is_sealed(v, n))
 *              encryption_open_key(e, key, v, n, &body, &len, err, sizeof err)
 *   rewrite (rotation): for every stored key/value with
 *              encryption_needs_rewrite_key(e, key, v, n), open it and write
 *              it back sealed (conditionally on its revision).
 *
 * An encryption_t is immutable once loaded: every function below may be
 * called from several threads at once. This module does no I/O after
 * encryption_load(). */
#ifndef SKIFF_SECURITY_ENCRYPTION_H
#define SKIFF_SECURITY_ENCRYPTION_H

#include <stddef.h>

typedef struct encryption encryption_t;

/* Name of the default key file inside the data directory. */
#define ENCRYPTION_KEY_FILE "secrets.key"

/* Every sealed value starts with this. */
#define ENCRYPTION_PREFIX "k8s:enc:"

/* Loads the encryption configuration.
 * config_path NULL: the default. <data_dir>/secrets.key is read, or created
 * (32 random bytes, base64, mode 0600, atomically; data_dir is created 0700
 * if missing); provider aesgcm, key name "default", resources: secrets.
 * config_path set: that EncryptionConfiguration file (YAML or JSON). If
 * <data_dir>/secrets.key also exists, its key stays available for reading
 * so values written under the default configuration still open (and are
 * reported by encryption_needs_rewrite). data_dir may then be NULL.
 * On failure returns SKIFF_EINVAL (bad file: err names the field and the
 * problem), SKIFF_EIO (err names the file and the system error) or
 * SKIFF_ENOMEM. *out is set only on success; free it with encryption_free. */
int encryption_load(const char *data_dir, const char *config_path, encryption_t **out, char *err,
                    size_t errlen);

void encryption_free(encryption_t *e);

/* Where the configuration came from, for log lines: "key file PATH" or
 * "configuration PATH". Owned by e. */
const char *encryption_source(const encryption_t *e);

/* 1 when writes of group/resource are encrypted (its first provider is not
 * identity), 0 otherwise. group "" (or "core") is the core group. */
int encryption_applies(const encryption_t *e, const char *group, const char *resource);

/* 1 when the stored bytes carry the "k8s:enc:" prefix, i.e. they must go
 * through encryption_open before use. Lets a reader skip the copy that
 * encryption_open makes of plaintext values. */
int encryption_is_sealed(const void *stored, size_t len);

/* Seals plain (len bytes) for group/resource with its first provider and
 * first key. store_key is the key the value is stored under; AES-GCM
 * authenticates it, so the same store_key must be given to
 * encryption_open. NULL means none. *out is malloc'ed (free() it), NUL
 * terminated after *outlen bytes; for identity it is a copy of plain.
 * Returns 0, SKIFF_ENOMEM or SKIFF_EIO (random source or cipher failure). */
int encryption_seal(const encryption_t *e, const char *group, const char *resource,
                    const char *store_key, const void *plain, size_t len, char **out,
                    size_t *outlen);

/* Opens a stored value of group/resource written by encryption_seal (or by
 * kube-apiserver with the same keys and store key). The prefix picks the
 * provider and key name; the resource's own providers are tried first, then
 * every other configured key with that provider and name. Unprefixed values
 * are returned as they are. *out is malloc'ed (free() it), NUL terminated
 * after *outlen bytes. Returns 0; SKIFF_EINVAL with a message in err when no
 * configured key opens the value (unknown provider or key name, wrong key,
 * tampered or truncated data); SKIFF_ENOMEM. err may be NULL. */
int encryption_open(const encryption_t *e, const char *group, const char *resource,
                    const char *store_key, const void *stored, size_t len, char **out,
                    size_t *outlen, char *err, size_t errlen);

/* 1 when the stored value was not written with the current first provider
 * and key of group/resource (written before a rotation, before encryption
 * was turned on, or encrypted while the resource is now stored as
 * identity): reading it and writing it back brings it up to date.
 * 0 when it is current. Does not decrypt. */
int encryption_needs_rewrite(const encryption_t *e, const char *group, const char *resource,
                             const void *stored, size_t len);

/* The same three operations for a store key "/registry/<group>/<resource>/..."
 * (the API server's layout, group "core" for the core group), which is also
 * the authenticated data. A key outside /registry/ is treated as a resource
 * no configuration names (identity). */
int encryption_seal_key(const encryption_t *e, const char *store_key, const void *plain,
                        size_t len, char **out, size_t *outlen);
int encryption_open_key(const encryption_t *e, const char *store_key, const void *stored,
                        size_t len, char **out, size_t *outlen, char *err, size_t errlen);
int encryption_needs_rewrite_key(const encryption_t *e, const char *store_key, const void *stored,
                                 size_t len);

#endif
