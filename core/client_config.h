/* core/client_config.h - an SDK client (skiff/client.h over HTTP or HTTPS)
 * built from a kubeconfig file, for processes other than `skiff server`:
 * the agent, tools. It reads what kubectl would use: the current context's
 * cluster (server URL, certificate-authority[-data],
 * insecure-skip-tls-verify, tls-server-name) and user (client-certificate
 * [-data], client-key[-data], token, tokenFile). It only reads files. */
#ifndef SKIFF_CLIENT_CONFIG_H
#define SKIFF_CLIENT_CONFIG_H

#include <stddef.h>

#include <skiff/client.h>
#include <uv.h>

/* A new client for the kubeconfig at path (YAML or JSON), and its server
 * URL into server (may be NULL). NULL with a message in err when the file
 * cannot be read or names something this client cannot do. */
skiff_client_t *client_from_kubeconfig(uv_loop_t *loop, const char *path, char *server,
                                       size_t server_len, char *err, size_t errlen);

#endif
