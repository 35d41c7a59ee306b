/*
 * tls_policy.h - the tls_policy file: "domain level" lines that override
 * tls_outbound for one destination ("example.com encrypt"), or for its
 * subdomains when the domain starts with a dot (".example.com verify").
 * '#' starts a comment.  Loaded at start and at each reload.
 */
#ifndef RELAYD_DELIVERY_TLS_POLICY_H
#define RELAYD_DELIVERY_TLS_POLICY_H

#include <stddef.h>
#include "config.h"

struct tls_policy;

/* Load path; 0, or -1 with the reason (file:line) in err. */
int tls_policy_load(struct tls_policy **out, const char *path, char *err,
		    size_t errlen);
void tls_policy_free(struct tls_policy *p);
/* The level for destination dest (a domain or a relayhost name), or def
 * when no line matches.  p may be NULL. */
enum config_tls_level tls_policy_lookup(const struct tls_policy *p,
					const char *dest,
					enum config_tls_level def);

#endif
