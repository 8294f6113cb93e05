/* core/security/tokens.h - bearer tokens: a static token file and
 * ServiceAccount tokens (JWTs signed by the server, ES256).
 *
 * ServiceAccount tokens are what `kubectl create token SA` asks for
 * (TokenRequest) and what pods will mount; the server checks their
 * signature, issuer, audience, expiry, and that the ServiceAccount still
 * exists with the uid the token names. The public key is published as a
 * JWKS with OpenID discovery, so others can verify tokens too. */
#ifndef SKIFF_TOKENS_H
#define SKIFF_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct tokens tokens_t;

#define TOKENS_MAX_GROUPS 32

typedef struct token_identity {
    char user[600];
    char uid[64];
    char groups_buf[1024];
    const char *groups[TOKENS_MAX_GROUPS + 1]; /* NULL-terminated, into groups_buf */
    size_t ngroups;
} token_identity_t;

/* key_path: the signing key (EC P-256 PEM), created 0600 when missing.
 * token_file: CSV lines `token,user,uid,"group1,group2"` (Kubernetes'
 * --token-auth-file format) or NULL. issuer: the `iss` of issued tokens.
 * 0, or -1 with a message in err. */
int tokens_new(const char *key_path, const char *token_file, const char *issuer, tokens_t **out,
               char *err, size_t errlen);
void tokens_free(tokens_t *t);

/* Does the ServiceAccount ns/name with this uid exist? Asked for every
 * ServiceAccount token presented. */
typedef int (*tokens_sa_exists_fn)(void *data, const char *ns, const char *name,
                                   const char *uid);

/* Authenticate a bearer token. 0 with *out filled, or -1 with a reason in
 * err (unknown token, bad signature, expired, wrong audience, deleted SA). */
int tokens_authenticate(const tokens_t *t, const char *token, tokens_sa_exists_fn exists,
                        void *data, token_identity_t *out, char *err, size_t errlen);

/* Issue a ServiceAccount token; audiences NULL means the issuer. Newly
 * allocated JWT, or NULL. *exp_out gets the expiry (Unix seconds). */
char *tokens_issue(const tokens_t *t, const char *ns, const char *name, const char *uid,
                   const char *const *audiences, int64_t expiration_seconds, int64_t *exp_out);

/* OpenID discovery document and JWKS, as served at
 * /.well-known/openid-configuration and /openid/v1/jwks (borrowed). */
const char *tokens_openid_configuration(const tokens_t *t);
const char *tokens_jwks(const tokens_t *t);

#endif
