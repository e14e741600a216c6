/*
 * dom0-time: runs a command N times and prints, one line per run, its wall time in microseconds, its exit
 * code, its minor and major page faults and its user and system CPU time in microseconds (fork, execv, wait4;
 * stdout and stderr to /dev/null). NAME=VALUE arguments before the program are set in its environment (the
 * runtime's knobs, without a shell or env(1) in between). Built static by bench/cli-startup.sh so that it runs
 * in the QEMU dom0's busybox userland.
 *
 *   usage: dom0-time N [NAME=VALUE...] PROGRAM [ARGS...]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: dom0-time N PROGRAM [ARGS...]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    int prog = 2;
    while (prog < argc && strchr(argv[prog], '=') != NULL && argv[prog][0] != '/')
        putenv(argv[prog++]);
    if (prog >= argc) {
        fprintf(stderr, "usage: dom0-time N [NAME=VALUE...] PROGRAM [ARGS...]\n");
        return 2;
    }
    for (int i = 0; i < n; i++) {
        long long start = now_us();
        pid_t pid = fork();
        if (pid < 0) {
            perror("dom0-time: fork");
            return 1;
        }
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execv(argv[prog], argv + prog);
            _exit(127);
        }
        int status;
        struct rusage ru;
        wait4(pid, &status, 0, &ru);
        long long end = now_us();
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
            fprintf(stderr, "dom0-time: %s did not run\n", argv[prog]);
            return 1;
        }
        printf("%lld %d %ld %ld %lld %lld\n", end - start, WEXITSTATUS(status), ru.ru_minflt, ru.ru_majflt,
               ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec, ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec);
    }
    return 0;
}
