/* core/agent/join.h - joining a cluster with a bootstrap token, as
 * Kubernetes' TLS bootstrapping does it (`skiff agent --server URL
 * --token T --ca-cert-hash sha256:HEX`).
 *
 * 1. Discovery: a TLS connection that trusts nothing yet takes the CA
 *    from the server's certificate chain and accepts it only when the
 *    sha256 of its SubjectPublicKeyInfo is the hash `skiff token create`
 *    printed, and it signs the serving certificate; otherwise nothing is
 *    sent, the token least of all.
 * 2. For each node: a key made here (0600), a CertificateSigningRequest
 *    for CN=system:node:NAME, O=system:nodes (signer
 *    kubernetes.io/kube-apiserver-client-kubelet) created with the token,
 *    and a wait for the signed certificate.
 * 3. A kubeconfig with the node's own credentials, DATA_DIR/nodes/NAME/
 *    kubeconfig (0600), which later starts reuse while the certificate is
 *    valid.
 * This runs before the agent's loop starts and blocks while it works. */
#ifndef SKIFF_AGENT_JOIN_H
#define SKIFF_AGENT_JOIN_H

#include <stddef.h>

typedef struct join_opts {
    const char *server;       /* https://IP:PORT */
    const char *token;        /* "<id>.<secret>"; NULL when every node has credentials */
    const char *ca_cert_hash; /* "sha256:<64 hex digits>" */
    const char *data_dir;     /* credentials go in DATA_DIR/nodes/NAME/ */
    const char *const *nodes; /* node names */
    size_t nnodes;
    int timeout_s;            /* how long to wait for each certificate; 0: 300 */
} join_opts_t;

/* Makes sure every node has a kubeconfig with valid credentials, joining
 * with the token for those that have none. 0, or -1 with a message for
 * the user in err. */
int agent_join(const join_opts_t *o, char *err, size_t errlen);

/* DATA_DIR/nodes/NAME/kubeconfig into buf. */
void agent_join_kubeconfig_path(const char *data_dir, const char *node, char *buf, size_t n);

/* The sha256 of the SubjectPublicKeyInfo of the first certificate in
 * ca_pem, "sha256:<hex>", into out (at least 72 bytes), as kubeadm's
 * --discovery-token-ca-cert-hash has it; `skiff token create` prints it.
 * 0 or -1. */
int agent_ca_cert_hash(const char *ca_pem, char *out, size_t outlen);

#endif
