/* The scheduler slice of the request threads. Linux's EEVDF scheduler (6.6 and later) takes a
 * per-thread slice request (sched_attr.sched_runtime, 0.1-100 ms; 6.12 and later): a shorter slice
 * gives a thread an earlier deadline, so a request thread woken by a new request runs before a
 * busy neighbour's slice ends, at the price of more preemptions. CPU shares (nice) do not change. */
#ifndef TB_SERVER_SLICE_H
#define TB_SERVER_SLICE_H

/* Sets the calling thread's slice request to `us` microseconds (0: the kernel's default); threads
 * it creates afterwards inherit it. Returns 0; TB_SLICE_REFUSED where the kernel refuses (older
 * kernels, seccomp profiles); TB_SLICE_OTHER_POLICY when the thread runs under a policy other
 * than SCHED_OTHER, which an operator chose and which stays. Either way the thread keeps its
 * slice, which is harmless. */
enum { TB_SLICE_REFUSED = -1, TB_SLICE_OTHER_POLICY = -2 };
int tb_thread_slice_set(unsigned us);

/* 1 when a seccomp filter is in place (or /proc does not say): a filter may kill the process on
 * sched_setattr (systemd's SystemCallFilter=~@resources does, unless SystemCallErrorNumber= is
 * set), so the server asks for a slice by default only where no filter is. */
int tb_seccomp_filtered(void);

#endif
