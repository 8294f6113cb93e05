/* tests/unit/plugins/no_symbol.c - a shared object that is not a plugin: it
 * exports no descriptor symbol. */
int skiff_not_a_plugin(void);

int skiff_not_a_plugin(void) { return 42; }
