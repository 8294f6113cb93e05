/* core/api/discovery.c - placeholder, being written. */
