/* core/object/kinds.c - placeholder, being written. */
