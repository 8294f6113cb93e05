/* core/main.c - the skiff command: dispatches to server, agent and admin subcommands. */
#include <stdio.h>
int main(int argc, char **argv) { (void)argc; (void)argv; puts("skiff"); return 0; }
