/*
 * dom0-time: runs a command N times and prints each run's wall time in microseconds, one per line
 * (fork, execv, waitpid; stdout and stderr to /dev/null). Built static by bench/cli-startup.sh so that it
 * runs in the QEMU dom0's busybox userland and times the tools without a shell in between.
 *
 *   usage: dom0-time N PROGRAM [ARGS...]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
            execv(argv[2], argv + 2);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        long long end = now_us();
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
            fprintf(stderr, "dom0-time: %s did not run\n", argv[2]);
            return 1;
        }
        printf("%lld %d\n", end - start, WEXITSTATUS(status));
    }
    return 0;
}
