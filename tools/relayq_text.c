/*
 * relayq_text.c - the listing in the layout mailq users and their
 * scripts know (Postfix's long-queue-id layout): a heading, per message
 * the id marked "*" while a delivery holds it or "!" when held, its size,
 * arrival time and sender, then each recipient still to be delivered,
 * under its last delay reason in parentheses (a reason shown once for
 * consecutive recipients that share it), a blank line between messages
 * and "-- N Kbytes in M Requests." at the end, or "Mail queue is empty".
 *
 * Addresses and reasons come from the network: every byte goes through
 * text_escape (controls and invalid UTF-8 become \xHH), so a listing
 * cannot act on the terminal that shows it.
 */
#include <string.h>
#include <time.h>
#include "relayq.h"
#include "text.h"

#define STRING_FORMAT "%-17s %8s %-19s %s\n"
#define SENDER_FORMAT "%-17s %8llu %19.19s %s\n"
/* Reasons end at column 78, as mailq puts them. */
#define REASON_WIDTH 76
/* Room for an escaped address or reason: up to 4 bytes per input byte. */
#define ESC_MAX 4096

struct text_walk {
	FILE *out;
	int64_t now;
	unsigned long long bytes, count;
	time_t date_sec;            /* arrival second of date[] */
	char date[32];
	char esc[ESC_MAX];
};

static const char *escaped(struct text_walk *w, const char *s)
{
	text_escape(w->esc, sizeof(w->esc), s, strlen(s));
	return w->esc;
}

/* asctime's layout without the year; consecutive messages mostly share
 * their second, so it is formatted once per second. */
static const char *arrival(struct text_walk *w, int64_t us)
{
	time_t t = (time_t)(us / 1000000);
	if (t != w->date_sec || !w->date[0]) {
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(w->date, sizeof(w->date), "%a %b %e %H:%M:%S", &tm);
		w->date_sec = t;
	}
	return w->date;
}

static int text_msg(const struct queue_msg *m, void *arg)
{
	struct text_walk *w = arg;
	char id[QUEUE_ID_LEN + 2];
	enum qsel_state st = qsel_state_of(m, w->now);
	snprintf(id, sizeof(id), "%s%s", m->id.s, st == QSEL_HOLD ? "!" :
		 st == QSEL_ACTIVE ? "*" : "");
	if (w->count++)
		fputc('\n', w->out);
	else
		fprintf(w->out, STRING_FORMAT, "----Queue ID-----", "--Size--",
			"---Arrival Time----", "--Sender/Recipient------");
	w->bytes += m->size;
	fprintf(w->out, SENDER_FORMAT, id, (unsigned long long)m->size,
		arrival(w, m->arrival),
		m->sender[0] ? escaped(w, m->sender) : "MAILER-DAEMON");
	const char *last = "";
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];
		if (!qsel_rcpt_live(r))
			continue;
		const char *why = r->reason ? r->reason : "";
		if (strcmp(why, last)) {
			const char *show = why[0] ? escaped(w, why) : "reason unavailable";
			int pad = REASON_WIDTH - (int)strlen(show);
			fprintf(w->out, "%*s(%s)\n", pad > 0 ? pad : 0, "", show);
			last = why;
		}
		fprintf(w->out, STRING_FORMAT, "", "", "", escaped(w, r->addr));
	}
	return 0;
}

int relayq_text(struct queue *q, FILE *out, int64_t now)
{
	struct text_walk w = { .out = out, .now = now };
	int rc = qsel_walk(q, RELAYQ_PAGE, text_msg, &w);
	if (!rc && w.count == 0)
		fputs("Mail queue is empty\n", out);
	else if (!rc)
		fprintf(out, "\n-- %llu Kbytes in %llu Request%s.\n", w.bytes / 1024,
			w.count, w.count == 1 ? "" : "s");
	return relayq_finish(rc, out);
}
