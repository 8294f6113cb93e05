/* core/object/registry.c - placeholder, being written. */
