/* Where a download is written: a private temporary file that becomes the target only when complete.
 * Plain POSIX, no Lua.
 *
 * Device files hold every device's secret, so nothing here is ever readable by others, even for a moment:
 * - a named target: the temporary is created in the target's folder (so the rename is atomic) under a
 *   random short name, ".tciot-XXXXXX", with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600 whatever the umask;
 *   short, so that any valid final name (even 255 bytes) leaves a valid temporary name. On commit it is
 *   fsync'd, given its final mode and renamed over the target.
 * - standard output ("-"): no name in any shared folder at all: an O_TMPFILE in $TMPDIR (or /tmp), or
 *   where that is not supported a temporary unlinked the moment it is created; copied to stdout only once
 *   complete. */
#ifndef TCIOT_OUTFILE_H
#define TCIOT_OUTFILE_H

#include <stddef.h>
#include <stdint.h>

#define OUTFILE_MESSAGE_SIZE 512

typedef struct outfile {
    int fd;                            /* -1 when closed */
    char *path;                        /* the target; NULL for standard output */
    char *temp;                        /* the temporary's name; NULL when it has none */
    int64_t bytes;                     /* written so far */
} outfile;

/* Creates the temporary for path ("-": standard output). 0, or -1 with a message naming the path. */
int outfile_open(outfile *o, const char *path, char *message, size_t message_size);
int outfile_write(outfile *o, const char *data, size_t len);          /* 0, or -1 with errno */
int outfile_restart(outfile *o);                                      /* back to empty: 0, or -1 with errno */
/* Makes the temporary the target. mode < 0: 0600, or an existing target's mode when stricter; else mode.
 * 0, or -1 with a message (the temporary is then removed). Either way o is closed afterwards. */
int outfile_commit(outfile *o, int mode, char *message, size_t message_size);
void outfile_discard(outfile *o);      /* closes and removes the temporary; safe to call twice */
int outfile_same_target(const outfile *o, const char *path);

#endif
