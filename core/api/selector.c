/* core/api/selector.c - placeholder, being written. */
