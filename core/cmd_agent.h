/* core/cmd_agent.h - the `skiff agent` subcommand. */
#ifndef SKIFF_CMD_AGENT_H
#define SKIFF_CMD_AGENT_H
int cmd_agent(int argc, char **argv);
#endif
