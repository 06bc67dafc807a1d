/* Bearer secrets (a taste's owner, an API key): 256 random bits from the kernel as "PREFIX_" + 64
 * hex digits, kept only as a 32-byte BLAKE2b hash, compared in constant time. libsodium does the
 * randomness, the hash and the comparison. Thread-safe. */
#ifndef TB_SECRET_H
#define TB_SECRET_H

#include <stddef.h>

#include "status.h"

#define TB_SECRET_BYTES 32      /* random bytes in a secret, bytes in its hash */
#define TB_SECRET_TEXT_BYTES 69 /* "tbs_" + 64 hex digits + NUL */

/* Initializes libsodium (idempotent); TB_INTERNAL when it cannot. */
tb_status tb_secret_init(void);
/* A fresh secret "prefix_<64 hex>" (prefix of 4 bytes such as "tbs_") into out. */
tb_status tb_secret_new(const char *prefix, char out[TB_SECRET_TEXT_BYTES]);
/* The hash a secret is stored as. */
void tb_secret_hash(const char *secret, unsigned char out[TB_SECRET_BYTES]);
/* Whether two hashes are equal, in constant time. */
int tb_secret_hash_equal(const unsigned char a[TB_SECRET_BYTES], const unsigned char b[TB_SECRET_BYTES]);
/* Whether secret hashes to `stored`, in constant time. */
int tb_secret_matches(const char *secret, const unsigned char stored[TB_SECRET_BYTES]);
/* Wipes n bytes (not optimized away). */
void tb_secret_wipe(void *p, size_t n);

#endif
