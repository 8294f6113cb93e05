/* core/http/server.c - placeholder, being written. */
