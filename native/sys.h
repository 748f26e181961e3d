/*
 * sys.h - the raw system calls and freestanding helpers of the native core.
 *
 * The hook runs inside ld.so before any library exists, and the takeover
 * routine runs after every library is gone: neither may call libc. So every
 * system call the core makes is listed once below (like CRIU's syscall table:
 * only the calls really used), each returns the kernel's -errno, and there is
 * no errno.
 *
 * Everything is `static inline` + always_inline so that a function placed in
 * the position-independent restore section inlines these wrappers instead of
 * calling into pages it has already unmapped.
 *
 * Only asm/ and linux/auxvec.h headers are included; the few other constants
 * carry an RS_ prefix so that a hosted build (libc headers present, used to
 * fuzz the validator) does not clash with libc's spellings of the same names.
 */
#ifndef RESIDENT_SYS_H
#define RESIDENT_SYS_H

#include <asm/unistd.h>
#include <linux/auxvec.h>

#include "image.h"

typedef unsigned long rs_uptr;

#define RS_INLINE static inline __attribute__((always_inline))

/* ---- constants (values from the kernel's uapi headers) ---- */

#define RS_AT_FDCWD (-100)
#define RS_O_RDONLY 0
#define RS_O_NOCTTY 0400
#define RS_O_NONBLOCK 04000
#define RS_O_DIRECTORY 0200000
#define RS_O_NOFOLLOW 0400000
#define RS_O_CLOEXEC 02000000

#define RS_S_IFMT 0170000
#define RS_S_IFREG 0100000
#define RS_S_IFDIR 0040000

#define RS_PROT_READ 1
#define RS_PROT_WRITE 2
#define RS_PROT_EXEC 4
#define RS_MAP_PRIVATE 0x02
#define RS_MAP_FIXED 0x10
#define RS_MAP_ANONYMOUS 0x20
#define RS_MAP_POPULATE 0x8000
#define RS_MADV_POPULATE_READ 22 /* Linux 5.14+ */
#define RS_MADV_POPULATE_WRITE 23 /* Linux 5.14+; older kernels: -EINVAL */
#define RS_GRND_NONBLOCK 1
#define RS_MAP_FIXED_NOREPLACE 0x100000
#define RS_MREMAP_MAYMOVE 1
#define RS_MREMAP_FIXED 2

#define RS_ARCH_MAP_VDSO_64 0x2003 /* CONFIG_CHECKPOINT_RESTORE: map the vDSO (vvar first) at an address */
#define RS_ARCH_SET_FS 0x1002
#define RS_ARCH_GET_FS 0x1003
#define RS_PR_SET_MM 35
#define RS_PR_SET_MM_MAP 14 /* Linux 3.18, CONFIG_CHECKPOINT_RESTORE; no privilege without a new exe_fd */
#define RS_RSEQ_FLAG_UNREGISTER 1
#define RS_CLOCK_MONOTONIC 1
#define RS_RLIMIT_STACK 3
#define RS_RLIMIT_DATA 2
#define RS_RLIMIT_AS 9
#define RS_RLIM_NLIMITS 16

#define RS_ENOENT 2
#define RS_ENOTDIR 20
#define RS_EEXIST 17
#define RS_EPERM 1
#define RS_EACCES 13
#define RS_ENOSYS 38
#define RS_EBUSY 16
#define RS_ELOOP 40
#define RS_EINVAL 22

/* The end of 47-bit user space: munmap ranges stop here ([vsyscall] above is the kernel's;
 * with 5-level paging only an explicit hint maps higher, which ld.so never gives). */
#define RS_TASK_SIZE 0x7ffffffff000ull

/* struct stat as the x86_64 kernel fills it (newfstatat/fstat). */
struct rs_stat {
	unsigned long st_dev;
	unsigned long st_ino;
	unsigned long st_nlink;
	unsigned int st_mode;
	unsigned int st_uid;
	unsigned int st_gid;
	unsigned int pad0;
	unsigned long st_rdev;
	long st_size;
	long st_blksize;
	long st_blocks;
	unsigned long st_atime_sec;
	unsigned long st_atime_nsec;
	unsigned long st_mtime_sec;
	unsigned long st_mtime_nsec;
	unsigned long st_ctime_sec;
	unsigned long st_ctime_nsec;
	long unused[3];
};

struct rs_timespec {
	long tv_sec;
	long tv_nsec;
};

/* struct new_utsname: six NUL-padded fields of 65 bytes. */
struct rs_utsname {
	char sysname[65];
	char nodename[65];
	char release[65];
	char version[65];
	char machine[65];
	char domainname[65];
};

/* ---- the raw call ---- */

RS_INLINE long rs_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	return ret;
}

#define RS_SC(n, a, b, c, d, e, f) rs_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* ---- the table: every system call the native core makes ---- */

RS_INLINE long rs_write(int fd, const void *buf, unsigned long n) { return RS_SC(__NR_write, fd, buf, n, 0, 0, 0); }
RS_INLINE long rs_read(int fd, void *buf, unsigned long n) { return RS_SC(__NR_read, fd, buf, n, 0, 0, 0); }
RS_INLINE long rs_pread(int fd, void *buf, unsigned long n, long off) { return RS_SC(__NR_pread64, fd, buf, n, off, 0, 0); }
RS_INLINE long rs_openat(int dir, const char *path, int flags) { return RS_SC(__NR_openat, dir, path, flags, 0, 0, 0); }
RS_INLINE long rs_close(int fd) { return RS_SC(__NR_close, fd, 0, 0, 0, 0, 0); }
RS_INLINE long rs_close_range(unsigned lo, unsigned hi) { return RS_SC(__NR_close_range, lo, hi, 0, 0, 0, 0); }
RS_INLINE long rs_fstat(int fd, struct rs_stat *st) { return RS_SC(__NR_fstat, fd, st, 0, 0, 0, 0); }
RS_INLINE long rs_stat(const char *path, struct rs_stat *st) { return RS_SC(__NR_newfstatat, RS_AT_FDCWD, path, st, 0, 0, 0); }
RS_INLINE long rs_readlink(const char *path, char *buf, unsigned long n) { return RS_SC(__NR_readlinkat, RS_AT_FDCWD, path, buf, n, 0, 0); }
RS_INLINE long rs_mmap(rs_u64 addr, rs_u64 len, int prot, int flags, int fd, rs_u64 off)
{
	return RS_SC(__NR_mmap, addr, len, prot, flags, fd, off);
}
RS_INLINE long rs_madvise(rs_u64 addr, rs_u64 len, int advice) { return RS_SC(__NR_madvise, addr, len, advice, 0, 0, 0); }
/* brk(0) reads the break; brk(x) returns the new break, or the old one if it could not move */
RS_INLINE long rs_brk(rs_u64 addr) { return RS_SC(__NR_brk, addr, 0, 0, 0, 0, 0); }
RS_INLINE long rs_munmap(rs_u64 addr, rs_u64 len) { return RS_SC(__NR_munmap, addr, len, 0, 0, 0, 0); }
RS_INLINE long rs_mprotect(rs_u64 addr, rs_u64 len, int prot) { return RS_SC(__NR_mprotect, addr, len, prot, 0, 0, 0); }
RS_INLINE long rs_mremap(rs_u64 old, rs_u64 len, rs_u64 to)
{
	return RS_SC(__NR_mremap, old, len, len, RS_MREMAP_MAYMOVE | RS_MREMAP_FIXED, to, 0);
}
RS_INLINE long rs_prctl(int op, rs_u64 a, rs_u64 b, rs_u64 c) { return RS_SC(__NR_prctl, op, a, b, c, 0, 0); }
RS_INLINE long rs_arch_prctl(int op, rs_u64 a) { return RS_SC(__NR_arch_prctl, op, a, 0, 0, 0, 0); }
RS_INLINE long rs_set_tid_address(rs_u64 p) { return RS_SC(__NR_set_tid_address, p, 0, 0, 0, 0, 0); }
RS_INLINE long rs_set_robust_list(rs_u64 head, rs_u64 len) { return RS_SC(__NR_set_robust_list, head, len, 0, 0, 0, 0); }
RS_INLINE long rs_rseq(rs_u64 area, rs_u32 len, int flags, rs_u32 sig) { return RS_SC(__NR_rseq, area, len, flags, sig, 0, 0); }
RS_INLINE long rs_uname(struct rs_utsname *u) { return RS_SC(__NR_uname, u, 0, 0, 0, 0, 0); }
RS_INLINE long rs_getrlimit(int res, rs_u64 lim[2]) { return RS_SC(__NR_prlimit64, 0, res, 0, lim, 0, 0); }
/* The init level's kernel state (plan.c fills rs_kcall with these numbers; the routine makes the calls) */
#define RS_NR_RT_SIGACTION __NR_rt_sigaction
#define RS_NR_RT_SIGPROCMASK __NR_rt_sigprocmask
#define RS_NR_UMASK __NR_umask
#define RS_NR_PRLIMIT64 __NR_prlimit64
#define RS_NR_PRCTL __NR_prctl
#define RS_PR_SET_NAME 15
RS_INLINE long rs_getrandom(void *buf, rs_u64 n, int flags) { return RS_SC(__NR_getrandom, buf, n, flags, 0, 0, 0); }
RS_INLINE long rs_clock_gettime(int clk, struct rs_timespec *ts) { return RS_SC(__NR_clock_gettime, clk, ts, 0, 0, 0, 0); }
RS_INLINE __attribute__((noreturn)) void rs_exit_group(int code)
{
	for (;;)
		RS_SC(__NR_exit_group, code, 0, 0, 0, 0, 0);
}

/* ---- freestanding helpers (loops written out: no libc, no builtins) ---- */

RS_INLINE rs_u64 rs_strlen(const char *s)
{
	rs_u64 n = 0;
	while (s[n])
		n++;
	return n;
}

/* rs_strnlen(s, max): length of s, or max when no NUL comes first. */
RS_INLINE rs_u64 rs_strnlen(const char *s, rs_u64 max)
{
	rs_u64 n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

RS_INLINE int rs_memeq(const void *a, const void *b, rs_u64 n)
{
	const rs_u8 *x = a, *y = b;
	for (rs_u64 i = 0; i < n; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

RS_INLINE int rs_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

RS_INLINE void rs_copy(void *to, const void *from, rs_u64 n)
{
	rs_u8 *d = to;
	const rs_u8 *s = from;
	for (rs_u64 i = 0; i < n; i++)
		d[i] = s[i];
}

RS_INLINE rs_u64 rs_page_down(rs_u64 x) { return x & ~(rs_u64)(RS_PAGE - 1); }
RS_INLINE rs_u64 rs_page_up(rs_u64 x) { return (x + RS_PAGE - 1) & ~(rs_u64)(RS_PAGE - 1); }

/* A negative return from the table above is -errno (the kernel never returns
 * an address or count in [-4095, -1]). */
RS_INLINE int rs_failed(long r) { return r < 0 && r > -4096; }

#endif
