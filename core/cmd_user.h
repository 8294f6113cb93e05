/* core/cmd_user.h - the `skiff user` subcommand. */
#ifndef SKIFF_CMD_USER_H
#define SKIFF_CMD_USER_H
int cmd_user(int argc, char **argv);
#endif
