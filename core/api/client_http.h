/* core/api/client_http.h - placeholder. */
