/*
 * metrics_series.h - the daemon's own series (metrics.h): the SMTP
 * server's counters, and the gauges read at scrape time from the server
 * and the queue.  The delivery engine registers its series itself.
 */
#ifndef RELAYD_METRICS_SERIES_H
#define RELAYD_METRICS_SERIES_H

struct daemon;

/* Turn the series on; the gauges read d->smtpd, d->queue and d->cfg at
 * every scrape, so call this once they exist. */
void metrics_series_register(struct daemon *d);

#endif
