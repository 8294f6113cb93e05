/* core/http/client.c - placeholder, being written. */
