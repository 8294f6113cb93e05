/* core/security/encrypting_store.h - a store that encrypts what it is given.
 *
 * Wraps any skiff_store_t: values of resources the encryption configuration
 * names (secrets by default) are sealed on their way in and opened on their
 * way out (get, range, watch, write answers), so the API server above never
 * sees ciphertext and the store below never sees plaintext. */
#ifndef SKIFF_ENCRYPTING_STORE_H
#define SKIFF_ENCRYPTING_STORE_H

#include <skiff/store.h>

#include "security/encryption.h"

/* The wrapper takes inner over: closing the wrapper closes inner first and
 * frees the wrapper once inner is closed. e stays the caller's and must
 * outlive the wrapper. 0 or SKIFF_ENOMEM. */
int encrypting_store_new(skiff_store_t *inner, const encryption_t *e, skiff_store_t **out);

#endif
