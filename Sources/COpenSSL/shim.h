#ifndef CALIBCTL_COPENSSL_SHIM_H
#define CALIBCTL_COPENSSL_SHIM_H
/* Only the EVP digest API is used (SHA-256 of payload content). */
#include <openssl/evp.h>
#endif
