/*
 * resolver.c - librelaydns options from relayd.conf (resolver.h).
 */
#include <stdlib.h>
#include <string.h>
#include "resolver.h"

/* Every listener, whatever its kind: mail sent to any of them would come
 * back to this host. */
static int collect_listen(struct resolver_conf *rc, const struct config *cfg)
{
	const struct config_addr_list *l[] = {
		&cfg->smtp_listen, &cfg->submission_listen,
		&cfg->submissions_listen,
	};
	size_t n = 0, k = 0;
	for (size_t i = 0; i < 3; i++)
		n += l[i]->n;
	rc->listen = calloc(n ? n : 1, sizeof(*rc->listen));
	if (!rc->listen)
		return -1;
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < l[i]->n; j++)
			memcpy(&rc->listen[k++], &l[i]->v[j].ss, sizeof(rc->listen[0]));
	rc->route.listen = rc->listen;
	rc->route.nlisten = k;
	return 0;
}

int resolver_conf_init(struct resolver_conf *rc, const struct config *cfg)
{
	memset(rc, 0, sizeof(*rc));
	size_t n = cfg->dns_servers.n;
	rc->servers = calloc(n ? n : 1, sizeof(*rc->servers));
	if (!rc->servers || collect_listen(rc, cfg)) {
		resolver_conf_free(rc);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		memcpy(&rc->servers[i], &cfg->dns_servers.v[i].ss, sizeof(rc->servers[0]));
	rc->opt.servers = rc->servers;
	rc->opt.nservers = n;
	rc->opt.timeout_ms = (unsigned)cfg->dns_timeout * 1000;
	rc->opt.prefer_ipv6 = -1;
	rc->route.port = (uint16_t)cfg->delivery_port;
	rc->route.family = cfg->inet_protocols == INET_IPV4 ? DNS_INET_IPV4 :
			   cfg->inet_protocols == INET_IPV6 ? DNS_INET_IPV6 :
			   DNS_INET_ALL;
	rc->route.address_limit = (unsigned)cfg->smtp_mx_address_limit;
	rc->route.relayhost = cfg->relayhost.host;
	rc->route.relayhost_port = cfg->relayhost.port;
	rc->route.myhostname = cfg->hostname;
	return 0;
}

void resolver_conf_free(struct resolver_conf *rc)
{
	free(rc->servers);
	free(rc->listen);
	memset(rc, 0, sizeof(*rc));
}

int resolver_conf_changed(const struct config *a, const struct config *b)
{
	if (a->dns_timeout != b->dns_timeout ||
	    a->dns_servers.n != b->dns_servers.n)
		return 1;
	for (size_t i = 0; i < a->dns_servers.n; i++)
		if (a->dns_servers.v[i].sslen != b->dns_servers.v[i].sslen ||
		    memcmp(&a->dns_servers.v[i].ss, &b->dns_servers.v[i].ss,
			   a->dns_servers.v[i].sslen))
			return 1;
	return 0;
}
