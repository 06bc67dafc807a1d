/* Test helper: runs a command under a seccomp filter that treats sched_setattr as a hardened
 * systemd unit does — `kill` (SystemCallFilter=~@resources: the process dies of SIGSYS) or `errno`
 * (with SystemCallErrorNumber=EPERM, as container runtimes do) — and allows every other call.
 *   seccomp-exec kill|errno PROGRAM ARGS... */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "kill") != 0 && strcmp(argv[1], "errno") != 0)) {
        fprintf(stderr, "usage: seccomp-exec kill|errno PROGRAM ARGS...\n");
        return 2;
    }
    unsigned action = strcmp(argv[1], "kill") == 0 ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | EPERM;
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_setattr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp-exec: installing the filter");
        return 1;
    }
    execv(argv[2], argv + 2);
    perror("seccomp-exec: exec");
    return 1;
}
