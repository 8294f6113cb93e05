/* core/kubeconfig.h - writes kubeconfig files (JSON, which kubectl reads as
 * YAML): the server's admin kubeconfig and those `skiff user create` makes. */
#ifndef SKIFF_KUBECONFIG_H
#define SKIFF_KUBECONFIG_H

/* Write path atomically, mode 0600 from the start (it may hold a private
 * key). ca_pem, cert_pem and key_pem may be NULL (plain HTTP). 0 or -1
 * with errno set. */
int kubeconfig_write(const char *path, const char *server, const char *user,
                     const char *ca_pem, const char *cert_pem, const char *key_pem);

/* The server URL of the first cluster in a kubeconfig we wrote, newly
 * allocated; NULL when it cannot be read. */
char *kubeconfig_server(const char *path);

#endif
