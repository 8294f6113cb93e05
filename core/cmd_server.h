/* core/cmd_server.h - the `skiff server` subcommand. */
#ifndef SKIFF_CMD_SERVER_H
#define SKIFF_CMD_SERVER_H
int cmd_server(int argc, char **argv);
#endif
