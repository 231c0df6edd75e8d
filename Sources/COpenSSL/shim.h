#ifndef CALIBCTL_COPENSSL_SHIM_H
#define CALIBCTL_COPENSSL_SHIM_H
/* Only the EVP digest API is used (SHA-256 of payload content). */
#if !__has_include(<openssl/evp.h>)
#error "openssl/evp.h not found: install it with 'apt-get install libssl-dev' (or run scripts/bootstrap.sh)"
#else
#include <openssl/evp.h>
#endif /* has_include */
#endif
