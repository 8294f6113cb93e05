/* core/api/table.c - placeholder, being written. */
