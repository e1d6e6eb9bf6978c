/* The benchmark's floor program (examples/bench/bench.sh): the least a process can do to
 * reach the same end state as a switch, with no planning, no state, no read-back.
 *
 *   floor ROOT [--check LIST] [--create LIST] [--flip REL TARGET] [--remove LIST]
 *
 * Steps run in this order, all relative to an O_PATH fd on ROOT:
 *   --check LIST    for every "path<TAB>link-text" line: lstat + readlink, compare the text
 *                   (mismatches are counted and reported on stderr, exit 3)
 *   --create LIST   for every line: symlinkat; on ENOENT the parents are made (mkdirat,
 *                   0755) and the symlink retried
 *   --flip REL T    symlinkat(T, REL.floor-tmp) + renameat over REL (one rename)
 *   --remove LIST   for every line: unlinkat (the link-text column is ignored)
 *   --write REL SRC the content of the file SRC written to REL atomically: a temporary file
 *                   beside it, written, fsynced, renamed over REL, the directory fsynced
 *                   (repeatable; the floor of the users phase's five files)
 *
 * LIST paths are relative to ROOT (e.g. "etc/a/b"). Lines are read with one read(2) of the
 * whole file; parsing is a few microseconds per thousand lines.
 *
 * Build: gcc -O2 -o floor floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rootfd;

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror(path); exit(2); }
    struct stat st;
    if (fstat(fd, &st) < 0) { perror(path); exit(2); }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) { perror(path); exit(2); }
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    *len = got;
    return buf;
}

/* Calls fn(path, text) for every "path\ttext\n" line (modifies the buffer in place). */
typedef int (*line_fn)(char *path, char *text);

static int each_line(const char *file, line_fn fn) {
    size_t len;
    char *buf = slurp(file, &len);
    int bad = 0;
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = 0;
        char *tab = strchr(p, '\t');
        char *text = "";
        if (tab) { *tab = 0; text = tab + 1; }
        if (*p) bad += fn(p, text);
        p = nl + 1;
    }
    free(buf);
    return bad;
}

static int check_one(char *path, char *text) {
    struct stat st;
    char got[4096];
    if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
        return 1;
    ssize_t n = readlinkat(rootfd, path, got, sizeof got - 1);
    if (n < 0) return 1;
    got[n] = 0;
    return strcmp(got, text) != 0;
}

static void make_parents(char *path) {
    for (char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdirat(rootfd, path, 0755) < 0 && errno != EEXIST) { perror(path); exit(2); }
        *s = '/';
    }
}

static int create_one(char *path, char *text) {
    if (symlinkat(text, rootfd, path) == 0) return 0;
    if (errno != ENOENT) { perror(path); return 1; }
    make_parents(path);
    if (symlinkat(text, rootfd, path) < 0) { perror(path); return 1; }
    return 0;
}

static int remove_one(char *path, char *text) {
    (void)text;
    if (unlinkat(rootfd, path, 0) < 0 && errno != ENOENT) { perror(path); return 1; }
    return 0;
}

/* Writes the content of src to rel (below ROOT) atomically; 0 on success. */
static int write_atomic(const char *rel, const char *src) {
    size_t len;
    char *data = slurp(src, &len);
    if (!data) return 1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.floor-tmp", rel);
    int fd = openat(rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) { perror(tmp); free(data); return 1; }
    if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0) { perror(tmp); close(fd); free(data); return 1; }
    close(fd);
    free(data);
    if (renameat(rootfd, tmp, rootfd, rel) < 0) { perror(rel); return 1; }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", rel);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else strcpy(dir, ".");
    int dfd = openat(rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) { perror(dir); return 1; }
    close(dfd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor ROOT [--check L] [--create L] [--flip REL T] [--remove L] [--write REL SRC]...\n");
        return 2;
    }
    rootfd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) { perror(argv[1]); return 2; }
    const char *check = NULL, *create = NULL, *removel = NULL, *flip = NULL, *flipt = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--check") && i + 1 < argc) check = argv[++i];
        else if (!strcmp(argv[i], "--create") && i + 1 < argc) create = argv[++i];
        else if (!strcmp(argv[i], "--remove") && i + 1 < argc) removel = argv[++i];
        else if (!strcmp(argv[i], "--flip") && i + 2 < argc) { flip = argv[++i]; flipt = argv[++i]; }
        else if (!strcmp(argv[i], "--write") && i + 2 < argc) {
            if (write_atomic(argv[i + 1], argv[i + 2])) return 1;
            i += 2;
        }
        else { fprintf(stderr, "floor: bad argument %s\n", argv[i]); return 2; }
    }
    int bad = 0;
    if (check && (bad = each_line(check, check_one)) != 0)
        fprintf(stderr, "floor: %d path(s) not as expected\n", bad);
    if (create && each_line(create, create_one)) return 1;
    if (flip) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.floor-tmp", flip);
        unlinkat(rootfd, tmp, 0);
        char *rel = strdup(flip);
        if (symlinkat(flipt, rootfd, tmp) < 0) {
            make_parents(rel);
            if (symlinkat(flipt, rootfd, tmp) < 0) { perror(tmp); return 1; }
        }
        if (renameat(rootfd, tmp, rootfd, flip) < 0) { perror(flip); return 1; }
        free(rel);
    }
    if (removel && each_line(removel, remove_one)) return 1;
    return bad ? 3 : 0;
}
