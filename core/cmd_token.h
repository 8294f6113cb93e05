/* core/cmd_token.h - the `skiff token` subcommand. */
#ifndef SKIFF_CMD_TOKEN_H
#define SKIFF_CMD_TOKEN_H
int cmd_token(int argc, char **argv);
#endif
