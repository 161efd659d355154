/*
 * The second line of defence for the operator's terminal: everything syncctl prints goes through text_escape on
 * its way out.  The daemons escape upstream text before it reaches a row or a socket, but a row written before
 * that, or an answer from something that is not our daemon, could still carry an ESC sequence or a lone CR; here it
 * becomes visible text.  Lines, CR LF and tabs stay, and UTF-8 that a buffer flush cut in two is held back until
 * its end arrives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdio.h"
#include "log.h"
#include "sctl.h"

struct filter {
	int fd;
	char held[4];		/* the start of a UTF-8 sequence whose rest is in the next write */
	size_t nheld;
};

/* How many bytes at the end of p[0..len) start a UTF-8 sequence that is not complete yet (0..3). */
static size_t
incomplete_tail(const unsigned char *p, size_t len)
{
	size_t back;

	for (back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = p[len - back];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue;	/* a continuation byte: look further back for its lead */
		need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
		return need > back ? back : 0;
	}
	return 0;
}

static ssize_t
filter_write(void *cookie, const char *buf, size_t len)
{
	struct filter *f = cookie;
	char *in, *out;
	size_t n, keep, olen;

	if ((in = malloc(f->nheld + len)) == NULL)
		return -1;
	memcpy(in, f->held, f->nheld);
	memcpy(in + f->nheld, buf, len);
	n = f->nheld + len;
	keep = incomplete_tail((const unsigned char *)in, n);
	if ((out = malloc((n - keep) * 4 + 1)) == NULL) {
		free(in);
		return -1;
	}
	olen = text_escape(out, (n - keep) * 4 + 1, in, n - keep, TEXT_KEEP_LINES);
	memcpy(f->held, in + n - keep, keep);
	f->nheld = keep;
	free(in);
	if (write_full(f->fd, out, olen) == -1) {
		free(out);
		return -1;
	}
	free(out);
	return (ssize_t)len;
}

static FILE *
filtered(struct filter *f, int fd, int mode)
{
	static const cookie_io_functions_t io = { .write = filter_write };
	FILE *fp;

	f->fd = fd;
	if ((fp = fopencookie(f, "w", io)) == NULL)
		return NULL;
	setvbuf(fp, NULL, mode, BUFSIZ);
	return fp;
}

void
sctl_filter_output(void)
{
	/* Static: the streams live until exit, which flushes them. */
	static struct filter out_f, err_f;
	FILE *out, *err;

	/* The same buffering as before: stdout by line on a terminal, stderr at once. */
	if ((out = filtered(&out_f, STDOUT_FILENO, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF)) != NULL)
		stdout = out;
	if ((err = filtered(&err_f, STDERR_FILENO, _IONBF)) != NULL)
		stderr = err;
}
