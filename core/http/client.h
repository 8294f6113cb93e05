/* core/http/client.h - placeholder. */
