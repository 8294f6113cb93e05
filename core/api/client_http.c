/* core/api/client_http.c - placeholder, being written. */
