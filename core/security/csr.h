/* core/security/csr.h - certificate signing requests: what a
 * certificates.k8s.io/v1 CertificateSigningRequest asks for, whether it
 * follows the rules of the signer it names, and signing it with the
 * cluster CA.
 *
 * The rules are those of Kubernetes' built-in signers:
 *   kubernetes.io/kube-apiserver-client-kubelet: CN "system:node:<name>",
 *     O exactly "system:nodes", no subject alternative names, usages
 *     "digital signature" and "client auth" (and "key encipherment");
 *   kubernetes.io/kube-apiserver-client: a CN (the user), any O (the
 *     groups), usages including "client auth" and nothing beyond
 *     "digital signature", "key encipherment" and "client auth".
 * Requests for other signers are kept for whoever signs them; this module
 * only checks that their PKCS#10 request is well formed. Nothing here
 * reads the store or knows about HTTP: core/api/csr.c is the API side. */
#ifndef SKIFF_SECURITY_CSR_H
#define SKIFF_SECURITY_CSR_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define CSR_SIGNER_KUBELET_CLIENT "kubernetes.io/kube-apiserver-client-kubelet"
#define CSR_SIGNER_CLIENT "kubernetes.io/kube-apiserver-client"
#define CSR_MAX_ORGS 16

/* The signer caps every certificate at a year (kube-controller-manager's
 * --cluster-signing-duration default); requests may not ask for less than
 * ten minutes. */
#define CSR_MAX_SECONDS (365LL * 24 * 3600)
#define CSR_MIN_SECONDS 600LL

typedef struct csr_subject {
    char cn[256];
    char orgs[CSR_MAX_ORGS][256];
    size_t norgs;
    int has_sans; /* DNS names, IP addresses, e-mail addresses or URIs */
} csr_subject_t;

/* Parses a PEM "CERTIFICATE REQUEST" (len bytes, not necessarily
 * NUL-terminated) and checks its self-signature. 0 with *out filled, or -1
 * with a reason in err. */
int csr_parse(const char *pem, size_t len, csr_subject_t *out, char *err, size_t errlen);

/* Checks a CSR's spec (signerName, usages, expirationSeconds, request) as
 * the API server validates it on create, with the subject rules of the
 * built-in signers above. 0, or -1 with the failing field ("spec.request")
 * in field and a Kubernetes-style message ("Invalid value: ...") in msg. */
int csr_validate_spec(const json_t *spec, char *field, size_t fieldlen, char *msg,
                      size_t msglen);

/* 1 if spec asks for a kubelet client certificate (the signer's rules
 * hold), with the subject into *subj (may be NULL); else 0. */
int csr_is_node_client(const json_t *spec, csr_subject_t *subj);

/* 1 if this server signs for signer (the two client signers), else 0. */
int csr_signer_is_ours(const char *signer);

/* Signs the request in spec with the CA: the CSR's subject and public
 * key, the usages of spec.usages, valid from five minutes ago for
 * spec.expirationSeconds (capped to [CSR_MIN_SECONDS, CSR_MAX_SECONDS];
 * a year when unset). *cert_pem is a new PEM text the caller frees. 0, or
 * -1 with a reason in err. */
int csr_sign(X509 *ca, EVP_PKEY *ca_key, const json_t *spec, char **cert_pem, char *err,
             size_t errlen);

#endif
