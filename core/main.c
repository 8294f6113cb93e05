/* core/main.c - the skiff command: dispatches to its subcommands. */
#include <stdio.h>
#include <string.h>

#include <skiff/plugin.h>

#include "cmd_agent.h"
#include "cmd_plugins.h"
#include "cmd_server.h"
#include "cmd_token.h"
#include "cmd_user.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: skiff COMMAND [OPTIONS]\n\n"
            "Skiff: a small Kubernetes-compatible orchestrator.\n\n"
            "Commands:\n"
            "  server     run the control plane (API server on the embedded store)\n"
            "  agent      run a node agent (for now: --hollow N simulated nodes)\n"
            "  user       create a user (client certificate and kubeconfig)\n"
            "  token      create a bootstrap token for joining agents\n"
            "  plugins    list plugins with their kind, version, origin and state\n"
            "  version    print the version\n\n"
            "Run 'skiff COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("skiff %s (SDK ABI %u)\n", PACKAGE_VERSION, SKIFF_ABI_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "server")) return cmd_server(argc - 2, argv + 2);
    if (!strcmp(cmd, "agent")) return cmd_agent(argc - 2, argv + 2);
    if (!strcmp(cmd, "user")) return cmd_user(argc - 2, argv + 2);
    if (!strcmp(cmd, "token")) return cmd_token(argc - 2, argv + 2);
    if (!strcmp(cmd, "plugins")) return cmd_plugins(argc - 2, argv + 2);
    fprintf(stderr, "skiff: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
