/* See outfile.h. */
#define _GNU_SOURCE                    /* O_TMPFILE */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEMP_PREFIX ".tciot-"

/* Six letters or digits, different from one call to the next and across processes. Not a secret: O_EXCL
 * and O_NOFOLLOW, not the name, keep another user's file or link from being used. */
static void random_suffix(char out[7]) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static unsigned long long state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    state ^= (unsigned long long)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (unsigned long long)getpid() << 32
           ^ (unsigned long long)(uintptr_t)out;
    for (int i = 0; i < 6; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out[i] = alphabet[state % (sizeof alphabet - 1)];
    }
    out[6] = '\0';
}

static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (dir) {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return dir;
}

static int open_private_temp(outfile *o, const char *path, char *message, size_t message_size) {
    char *dir = folder_of(path);
    size_t need = dir ? strlen(dir) + sizeof "/" TEMP_PREFIX "XXXXXX" : 0;
    o->temp = dir ? malloc(need) : NULL;
    if (!o->temp) {
        free(dir);
        snprintf(message, message_size, "out of memory preparing %s", path);
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        char suffix[7];
        random_suffix(suffix);
        snprintf(o->temp, need, "%s/" TEMP_PREFIX "%s", dir, suffix);
        o->fd = open(o->temp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (o->fd >= 0 || errno != EEXIST) break;
    }
    int saved = errno;
    free(dir);
    if (o->fd < 0) {
        snprintf(message, message_size, "cannot create a temporary file next to %s: %s", path, strerror(saved));
        free(o->temp);
        o->temp = NULL;
        return -1;
    }
    /* The umask can only take bits away, but a default ACL on the folder could add some: set them. */
    if (fchmod(o->fd, 0600) != 0) {
        snprintf(message, message_size, "cannot make the temporary file next to %s private: %s", path,
                 strerror(errno));
        outfile_discard(o);
        return -1;
    }
    return 0;
}

static int open_nameless_temp(outfile *o, char *message, size_t message_size) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
#ifdef O_TMPFILE
    o->fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (o->fd >= 0) return 0;
#endif
    /* No O_TMPFILE here: a private temporary, unlinked before a single byte is written. */
    outfile named = { .fd = -1 };
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/x", dir);
    if (open_private_temp(&named, probe, message, message_size)) return -1;
    unlink(named.temp);
    free(named.temp);
    o->fd = named.fd;
    return 0;
}

int outfile_open(outfile *o, const char *path, char *message, size_t message_size) {
    memset(o, 0, sizeof *o);
    o->fd = -1;
    if (strcmp(path, "-") == 0) return open_nameless_temp(o, message, message_size);
    if (!(o->path = strdup(path))) {
        snprintf(message, message_size, "out of memory preparing %s", path);
        return -1;
    }
    if (open_private_temp(o, path, message, message_size)) {
        free(o->path);
        o->path = NULL;
        return -1;
    }
    return 0;
}

int outfile_write(outfile *o, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(o->fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        data += n;
        len -= (size_t)n;
        o->bytes += n;
    }
    return 0;
}

int outfile_restart(outfile *o) {
    if (ftruncate(o->fd, 0) != 0 || lseek(o->fd, 0, SEEK_SET) != 0) return -1;
    o->bytes = 0;
    return 0;
}

int outfile_same_target(const outfile *o, const char *path) {
    return o->fd >= 0 && (o->path ? strcmp(o->path, path) == 0 : strcmp(path, "-") == 0);
}

/* The whole temporary to standard output, through stdio so it follows what the program printed before. */
static int copy_to_stdout(outfile *o) {
    if (lseek(o->fd, 0, SEEK_SET) != 0) return -1;
    char buf[65536];
    for (;;) {
        ssize_t n = read(o->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) return -1;
    }
    return fflush(stdout) == 0 ? 0 : -1;
}

static void fsync_folder(const char *path) {
    char *dir = folder_of(path);
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);                     /* the rename itself survives a crash; best effort */
        close(fd);
    }
    free(dir);
}

int outfile_commit(outfile *o, int mode, char *message, size_t message_size) {
    const char *name = o->path ? o->path : "standard output";
    if (!o->path) {
        int rc = copy_to_stdout(o);
        int saved = errno;
        outfile_discard(o);
        if (rc) snprintf(message, message_size, "writing standard output failed: %s", strerror(saved));
        return rc;
    }
    if (mode < 0) {
        struct stat st;
        mode = 0600;
        if (lstat(o->path, &st) == 0 && S_ISREG(st.st_mode)) mode = (int)(st.st_mode & 0600);
    }
    const char *step = "fsync";
    int rc = fsync(o->fd);
    if (rc == 0) {
        step = "chmod";
        rc = fchmod(o->fd, (mode_t)mode);
    }
    if (rc == 0) {
        step = "close";
        rc = close(o->fd);
        o->fd = -1;
    }
    if (rc == 0) {
        step = "rename";
        rc = rename(o->temp, o->path);
    }
    if (rc) {
        snprintf(message, message_size, "cannot put the download in place at %s (%s): %s", name, step,
                 strerror(errno));
        outfile_discard(o);
        return -1;
    }
    fsync_folder(o->path);
    free(o->temp);
    o->temp = NULL;
    outfile_discard(o);
    return 0;
}

void outfile_discard(outfile *o) {
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    if (o->temp) unlink(o->temp);
    free(o->temp);
    free(o->path);
    o->temp = o->path = NULL;
    o->bytes = 0;
}
