/*
 * Mail over SMTP with libcurl on the event loop (smtp:// with STARTTLS, smtps://, optional login): no sendmail,
 * which a hardened unit (NoNewPrivileges=) could not run anyway.  Messages are composed once (From, To, Date,
 * Message-ID, Subject, MIME headers) and stored in the outbox, so a resend is byte-identical.
 */
#ifndef RTOPACKS_MAIL_H
#define RTOPACKS_MAIL_H

#include <stdbool.h>

#include "evcurl.h"

struct config;
struct mailer;

typedef void (*mail_done_fn)(const char *error, void *arg);

/* NULL with *cause if the [smtp] settings are unusable (e.g. the password file cannot be read). */
struct mailer *mailer_new(struct evcurl *, const struct config *, char **cause);
void mailer_free(struct mailer *);
/* False when [smtp] url is not set: mail is then logged and dropped with a warning. */
bool mailer_enabled(const struct mailer *);
const char *mailer_url(const struct mailer *);

/*
 * Compose a complete message.  key makes the Message-ID (stable for one logical mail); the body is UTF-8 text with
 * \n line ends (converted to CRLF).
 */
char *mail_compose(const struct mailer *, const char *key, const char *subject, const char *body);
/* Send a composed message to the configured recipients; done runs once, from the loop. */
int mail_send(struct mailer *, const char *message, mail_done_fn done, void *arg);
/* Cancel every delivery in progress (done is not called). */
void mailer_cancel_all(struct mailer *);

#endif
