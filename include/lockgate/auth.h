/* Authentication pieces with no I/O: reading credentials from the request
 * headers, checking a presented secret against a key, and the per-instance
 * throttle of failed authentications by client IP. */
#ifndef LG_AUTH_H
#define LG_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "lockgate/cred.h"

struct lg_key;
struct lg_secrets;

enum lg_auth_parse_result {
    LG_AUTH_OK,
    LG_AUTH_MISSING, /* no credentials at all: 401 missing_credentials */
    LG_AUTH_INVALID, /* present but malformed, bad checksum: 401 invalid_credentials */
    LG_AUTH_BOTH     /* Authorization and an X-API-Key/X-API-Secret header: 400 bad_request */
};

/* Reads credentials from AUTHORIZATION ("Basic base64(KEY:SECRET)") or the
 * X_KEY/X_SECRET header pair (any may be NULL), never from both: one request
 * has one way of saying who it is (LG_AUTH_BOTH otherwise). On LG_AUTH_OK, KEY
 * (LG_KEY_LEN+1 bytes) and SECRET (LG_SECRET_LEN+1 bytes) hold well-formed
 * credentials whose checksums are right. No I/O. */
enum lg_auth_parse_result lg_auth_parse(const char *authorization, const char *x_key,
                                        const char *x_secret, char *key, char *secret);

/* True when SECRET is K's secret. Constant-time; uses the key's cached
 * digest of the last secret that verified, else the HMAC verifier. */
bool lg_auth_verify(struct lg_key *k, const struct lg_secrets *secrets, const char *secret);

/* Failed authentications per client IP, per instance (all workers), in
 * fixed one-minute windows. Sets the limit; thread-safe (SIGHUP sets it again). */
void lg_auth_throttle_init(int failures_per_min);
/* True when IP is over the limit now; *RETRY_AFTER_S = seconds to the window's end. */
bool lg_auth_throttled(const char *ip, int *retry_after_s);
/* Counts one failure for IP. */
void lg_auth_failed(const char *ip);

#endif
