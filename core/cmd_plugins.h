/* core/cmd_plugins.h - the `skiff plugins` subcommand. */
#ifndef SKIFF_CMD_PLUGINS_H
#define SKIFF_CMD_PLUGINS_H
int cmd_plugins(int argc, char **argv);
#endif
