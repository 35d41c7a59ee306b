/*
 * resolver.h - librelaydns set up from relayd.conf, so that the daemon and
 * relayctl route see next hops the same way: dns_servers, dns_timeout,
 * delivery_port, inet_protocols, smtp_mx_address_limit, relayhost, and
 * this host's name and listeners for loop detection.
 *
 * Ownership: struct resolver_conf owns the two address arrays; its string
 * pointers point into the config, which must outlive it.
 */
#ifndef RELAYD_RESOLVER_H
#define RELAYD_RESOLVER_H

#include "config.h"
#include "dns.h"

struct resolver_conf {
	struct dns_options opt;
	struct dns_route_params route;
	struct sockaddr_storage *servers;
	struct sockaddr_storage *listen;
};

/* 0, or -1 when out of memory. */
int resolver_conf_init(struct resolver_conf *rc, const struct config *cfg);
void resolver_conf_free(struct resolver_conf *rc);

/* 1 when b asks the resolver for something a does not (dns_servers,
 * dns_timeout): those are read at start, so a reload cannot apply them. */
int resolver_conf_changed(const struct config *a, const struct config *b);

#endif
