/* The wrappers rows' floor (examples/bench/wrappers.py): the least a process can do to make
 * the same wrappers directory as `etcflip wrappers`, and a timer of exec overhead.
 *
 *   wrappers_floor build ROOT PAYLOAD LIST   LIST lines: "program mode uid gid permitted"
 *                                            (octal mode, hex permitted capabilities, 0: none)
 *   wrappers_floor exec N PATH...            runs each PATH N times, interleaved; prints the
 *                                            median wall time of each in nanoseconds
 *
 * build does what a switch does, minus planning, checks and hashing: mkdir (0700) a new
 * directory under ROOT/run/wrappers, and for each wrapper read its payload, create it at 0000,
 * write it, fsync, fchown, set security.capability or nothing, fchmod its mode; then chmod the
 * directory 0755, fsync it, and flip ROOT/run/wrappers/bin to it with symlink + rename.
 *
 * Build: gcc -O2 -o wrappers_floor wrappers_floor.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(2); }

static int build(const char *root, const char *payload, const char *list) {
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s/run/wrappers/wrappers.floor-%d", root, (int)getpid());
    if (mkdir(dir, 0700) < 0) die(dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) die(dir);
    FILE *l = fopen(list, "r");
    if (!l) die(list);
    char program[256];
    unsigned mode, uid, gid;
    unsigned long long permitted;
    static char buf[8 << 20];
    while (fscanf(l, "%255s %o %u %u %llx", program, &mode, &uid, &gid, &permitted) == 5) {
        snprintf(path, sizeof path, "%s/%s", payload, program);
        int in = open(path, O_RDONLY | O_CLOEXEC);
        if (in < 0) die(path);
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0) die(path);
        close(in);
        int fd = openat(dfd, program, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0 || fchmod(fd, 0) < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) < 0 ||
            fchown(fd, uid, gid) < 0)
            die(program);
        if (permitted) {
            uint32_t v[5] = {0x02000001u, (uint32_t)permitted, 0, (uint32_t)(permitted >> 32), 0};
            if (fsetxattr(fd, "security.capability", v, sizeof v, 0) < 0) die("fsetxattr");
        }
        if (fchmod(fd, mode) < 0) die("fchmod");
        close(fd);
    }
    fclose(l);
    if (fchmod(dfd, 0755) < 0 || fsync(dfd) < 0) die(dir);
    snprintf(path, sizeof path, "%s/run/wrappers/bin.floor-tmp", root);
    char text[4096];
    snprintf(text, sizeof text, "/run/wrappers/wrappers.floor-%d", (int)getpid());
    if (symlink(text, path) < 0) die(path);
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/run/wrappers/bin", root);
    if (rename(path, bin) < 0) die(bin);
    return 0;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int exec_times(int n, int paths, char **argv) {
    long long *t = calloc((size_t)n * (size_t)paths, sizeof *t);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < paths; p++) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            pid_t pid = fork();
            if (pid == 0) {
                char *args[] = {argv[p], NULL};
                execv(argv[p], args);
                _exit(127);
            }
            int st;
            if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
                die(argv[p]);
            clock_gettime(CLOCK_MONOTONIC, &b);
            t[(size_t)p * (size_t)n + (size_t)i] =
                (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        }
    for (int p = 0; p < paths; p++) {
        qsort(t + (size_t)p * (size_t)n, (size_t)n, sizeof *t, cmp);
        printf("%lld\n", t[(size_t)p * (size_t)n + (size_t)n / 2]);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "build")) return build(argv[2], argv[3], argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "exec")) return exec_times(atoi(argv[2]), argc - 3, argv + 3);
    fprintf(stderr, "usage: wrappers_floor build ROOT PAYLOAD LIST | exec N PATH...\n");
    return 2;
}
