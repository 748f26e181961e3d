/*
 * hook.c - the LD_AUDIT entry point: LD_AUDIT=/abs/path/libresident.so.
 *
 * ld.so calls la_version inside dl_main after its own set-up (tunables, cpu
 * features, vdso, TLS, rseq) and before it loads any library. If this exec's
 * program has a valid image, la_version takes the process over and never
 * returns; otherwise it returns 0, ld.so unloads the module and goes on as
 * if nothing happened.
 *
 * May use: the restore core, sys.h, its own stack. May not use: libc (there
 * is none yet), globals (nothing here outlives one call).
 *
 * What it reads from the environment (read_env):
 *   RESIDENT_DEBUG    unset or 0: no output ever; 1: one line per exec of a
 *                     program with an image; 2: also a line for programs
 *                     without one, and the takeover time; 3: also when each
 *                     stage of the routine ended (routine.c, mark)
 *   RESIDENT_PROBE=1  (`resident doctor PROG`) make every check, say in one
 *                     line whether this exec would be restored, and exit 0
 *                     before the program runs any code of its own
 *   RESIDENT_SECCOMP=errno  a seccomp filter answers refused calls with an
 *                     error: restore under it (else a filter means fall back)
 *   RESIDENT_MEASURE=normal:OFF or resident:OFF  (`resident add`) end the
 *                     process at main, OFF from the executable's first byte
 *   RESIDENT_VARIANT=N  an image of several layouts: use variant N (tests,
 *                     `resident doctor`) instead of the one AT_RANDOM picks
 *   RESIDENT_DIR, XDG_CACHE_HOME, HOME, RESIDENT_SYSTEM_DIR  the registries
 *                     (registry_dir; the C# side: HookContract/RegistryPaths)
 */
#include "elf.h"
#include "restore.h"
#include "text.h"

#define HOOK_AUXV_WORDS 128 /* a copy of /proc/self/auxv (under valgrind) */
#define HOOK_LINE_MAX (2 * RS_PATH_MAX + 208) /* say(): the program's path, a detail that may be a path, the words */
/* The code of an exec without an image: every dynamic exec loads the hook,
 * and most have no image. hook.ld puts this section on the module's first
 * page(s), with the ELF headers, the dynamic symbols and .rodata, and the
 * rest of the code in a segment of its own (after the data, so a VMA of its
 * own) that such an exec never touches. What costs here is not the code but
 * its pages: ld.so unmaps the module when la_version returns 0, and every
 * page mapped is flushed from the TLB one by one (~10 us each under this
 * hypervisor, docs/benchmarks.md); fault-around would map all of a single
 * text segment at the first fault. */
#define HOOK_NO_IMAGE __attribute__((section(".text.noimage")))

#define HOOK_META_STACK 16384
#define HOOK_FDS_STACK 512

struct hook {
	struct rs_live live;
	struct rs_image img;
	struct rs_why why;
	int debug;
	int probe; /* RESIDENT_PROBE=1: judge, say, exit */
	int valgrind; /* running on valgrind's synthetic CPU: find the auxv where valgrind models it, then fall back */
	int seccomp_errno; /* RESIDENT_SECCOMP=errno: a seccomp filter answers refused calls with an error */
	int measure; /* RESIDENT_MEASURE (resident add): 1 normal, 2 resident; the process ends at main */
	rs_u64 measure_main; /* main's offset from the executable's first byte */
	int image_fd;
	rs_u64 base; /* where the image read starts in image_fd: 0, or the init-level image's fallback_offset */
	struct rs_why init_why; /* why the init-level image gave way to the link-level one it carries (reason 0: it did not) */
	char init_detail[96]; /* its detail, copied: the metadata it pointed into is the link level's now */
	int parsed; /* img is valid: files[0] names the program */
	int files_open; /* fds hold open files to close on fall back */
	int *fds; /* img.file_count slots: fds_stack, or after the metadata in meta */
	void *meta; /* a mapping for metadata too big for meta_stack, or 0 */
	rs_u64 meta_len;
	struct rs_args *args;
	struct rs_stat exe;
	const struct elf_dyn *ldso_dyn; /* the live ld.so's dynamic section */
	struct rs_timespec t0;
	const char *env_debug, *env_dir, *env_cache, *env_home, *env_system, *env_probe, *env_seccomp, *env_measure, *env_variant;
	rs_u64 auxv[HOOK_AUXV_WORDS]; /* under valgrind: /proc/self/auxv, to find ld.so and the stack */
	char image_path[RS_PATH_MAX + 64]; /* DIR/<dev>-<ino>.img; DIR is image_path[0, dir_len) */
	rs_u64 dir_len;
	struct hook_buffers *buf; /* once an image exists */
};

/* What only an exec with an image needs: on the stack of a deeper frame, so
 * that the common case (no image) does not fault in the pages under them. */
struct hook_buffers {
	struct rs_utsname uts;
	char exe_path[RS_PATH_MAX + 1];
	rs_u8 meta_stack[HOOK_META_STACK] __attribute__((aligned(8)));
	int fds_stack[HOOK_FDS_STACK];
};

/* ---- step 1: this exec (cheap, changes nothing, no system call) ---- */

/* Until an image is found the hook makes no system call ld.so does not make
 * itself: a seccomp filter that kills on anything else must not kill a
 * program because the hook was loaded. So the auxv is not asked of the
 * kernel (PR_GET_AUXV is a prctl) but found on the initial stack, above the
 * frames of ld.so that called la_version (FROM: la_version's frame): at an
 * AT_PAGESZ pair (6, 4096), a run of (type, value) pairs with types 1-255
 * after the envp terminator, ended by AT_NULL. The kernel's auxv is such a
 * run, so the scan stops there at the latest and never reads past it; an
 * earlier run (a copy in some frame of ld.so) is refused by find_stack,
 * which requires the very words ld.so's own __libc_stack_end leads to. */
#define HOOK_AUXV_PAIRS 128

static HOOK_NO_IMAGE int auxv_type(rs_u64 t) { return t - 1 < 255; }

static HOOK_NO_IMAGE rs_u64 *scan_auxv(const rs_u64 *from)
{
	for (const rs_u64 *w = from;; w++) {
		if (w[0] != AT_PAGESZ || w[1] != RS_PAGE)
			continue;
		const rs_u64 *start = w;
		for (int n = 0; n < HOOK_AUXV_PAIRS && auxv_type(start[-2]); n++)
			start -= 2;
		int n = 0;
		while (n < HOOK_AUXV_PAIRS && auxv_type(start[2 * n]))
			n++;
		if (start[-1] == 0 && start[2 * n] == AT_NULL)
			return (rs_u64 *)start;
	}
}

/* valgrind's client request RUNNING_ON_VALGRIND (its documented ABI, as
 * valgrind.h spells it): natively the rotations cancel out and rdx keeps 0.
 * On valgrind's CPU the stack scan would branch on words valgrind considers
 * uninitialised, so there the auxv comes from /proc/self/auxv, which
 * valgrind presents as the program's own. */
static HOOK_NO_IMAGE int on_valgrind(void)
{
	volatile rs_u64 request[6] = {0x1001, 0, 0, 0, 0, 0};
	rs_u64 result = 0;
	__asm__ volatile("rolq $3, %%rdi; rolq $13, %%rdi\n\trolq $61, %%rdi; rolq $51, %%rdi\n\txchgq %%rbx, %%rbx"
			 : "=d"(result)
			 : "a"(&request[0]), "0"(result)
			 : "cc", "memory");
	return result != 0;
}

static __attribute__((noinline)) rs_u64 *read_proc_auxv(rs_u64 *buf)
{
	long fd = rs_openat(RS_AT_FDCWD, "/proc/self/auxv", RS_O_RDONLY | RS_O_CLOEXEC);
	if (fd < 0)
		return 0;
	long n = rs_read((int)fd, buf, (HOOK_AUXV_WORDS - 2) * 8);
	rs_close((int)fd);
	if (n < 16)
		return 0;
	buf[n / 8] = AT_NULL;
	buf[HOOK_AUXV_WORDS - 2] = AT_NULL;
	buf[HOOK_AUXV_WORDS - 1] = 0;
	return buf;
}

/* argc/argv/envp/auxv of this exec from ld.so's __libc_stack_end. The auxv
 * there must be the very words decoded before (or equal to them, when those
 * were a copy): then the decoded auxv points at the live one. */
static HOOK_NO_IMAGE int find_stack(struct hook *h)
{
	struct rs_live *l = &h->live;
	const struct elf_dyn *dyn = h->ldso_dyn = rs_elf_loaded(l->at_base, &l->ldso_size);
	rs_u64 sym = dyn ? rs_elf_symbol(l->at_base, dyn, "__libc_stack_end") : 0;
	rs_u64 *argcp = sym ? *(rs_u64 **)sym : 0;
	if (!argcp || *argcp > (1u << 24))
		return 0;
	l->argc = *argcp;
	l->argv = (char **)(argcp + 1);
	l->envp = l->argv + l->argc + 1;
	for (l->env_count = 0; l->envp[l->env_count]; l->env_count++)
		;
	rs_u64 *live = (rs_u64 *)(l->envp + l->env_count + 1);
	for (rs_u32 i = 0; live != l->aux.v && i < l->aux.words; i++)
		if (live[i] != l->aux.v[i])
			return 0;
	l->aux.v = live;
	return 1;
}

/* RESIDENT_MEASURE=normal:OFFSET or resident:OFFSET (hex): how `resident add`
 * times a start without and with the image. The process ends at main (OFFSET
 * from the executable's first byte: main never runs); normal is what the hook
 * does for a program it finds no image of, then the same end. */
static __attribute__((noinline)) void read_measure(struct hook *h)
{
	const char *m = h->env_measure;
	if (rs_memeq(m, "normal:", 7))
		h->measure = 1, m += 7;
	else if (rs_memeq(m, "resident:", 9))
		h->measure = 2, m += 9;
	else
		return;
	h->measure_main = 0;
	for (; *m; m++) {
		int d = *m >= '0' && *m <= '9' ? *m - '0' : *m >= 'a' && *m <= 'f' ? *m - 'a' + 10 : -1;
		if (d < 0 || h->measure_main >> 60) {
			h->measure = 0;
			return;
		}
		h->measure_main = h->measure_main << 4 | (rs_u64)d;
	}
}

static HOOK_NO_IMAGE void read_env(struct hook *h)
{
	h->env_debug = h->env_dir = h->env_cache = h->env_home = h->env_system = h->env_probe = h->env_seccomp = h->env_measure = 0;
	h->env_variant = 0;
	for (rs_u64 i = 0; i < h->live.env_count; i++) {
		const char *s = h->live.envp[i];
		if (s[0] == 'R' && rs_memeq(s, "RESIDENT_DEBUG=", 15))
			h->env_debug = s + 15;
		else if (s[0] == 'R' && rs_memeq(s, "RESIDENT_DIR=", 13))
			h->env_dir = s + 13;
		else if (s[0] == 'R' && rs_memeq(s, "RESIDENT_SYSTEM_DIR=", 20))
			h->env_system = s + 20;
		else if (s[0] == 'R' && rs_memeq(s, "RESIDENT_PROBE=", 15))
			h->env_probe = s + 15;
		else if (s[0] == 'R' && rs_memeq(s, "RESIDENT_SECCOMP=", 17))
			h->env_seccomp = s + 17;
		else if (s[0] == 'R' && rs_memeq(s, "RESIDENT_MEASURE=", 17))
			h->env_measure = s + 17;
		else if (s[0] == 'R' && rs_memeq(s, "RESIDENT_VARIANT=", 17))
			h->env_variant = s + 17;
		else if (s[0] == 'X' && rs_memeq(s, "XDG_CACHE_HOME=", 15))
			h->env_cache = s + 15;
		else if (s[0] == 'H' && rs_memeq(s, "HOME=", 5))
			h->env_home = s + 5;
	}
	h->debug = h->env_debug && h->env_debug[0] >= '1' && h->env_debug[0] <= '9' ? h->env_debug[0] - '0' : 0;
	h->probe = h->env_probe && rs_streq(h->env_probe, "1");
	h->seccomp_errno = h->env_seccomp && rs_streq(h->env_seccomp, "errno");
	h->measure = 0;
	if (h->env_measure) /* rare: the function is in the code segment (hook.ld) */
		read_measure(h);
}

/* The executable's identity, without /proc where possible: a first access
 * to /proc/self in a new process costs more than everything else an exec
 * without an image does here (bench/hook_overhead.py). AT_EXECFN names the
 * file execve was given, which is the executable unless an interpreter ran
 * it (a #! script, binfmt_misc); its size tells them apart, as an ELF file
 * ends with its section headers and the mapped ELF header (right before
 * AT_PHDR, where every linker puts it) says where. A wrong "yes" can only
 * miss an image (the program starts normally): an exec that finds one
 * checks this identity against /proc/self/exe (same_exe). */
static HOOK_NO_IMAGE int exe_from_execfn(struct hook *h)
{
	const char *fn = (const char *)rs_aux(&h->live.aux, AT_EXECFN);
	rs_u64 phdr = rs_aux(&h->live.aux, AT_PHDR);
	if (!fn || (phdr & (RS_PAGE - 1)) < sizeof(struct elf_ehdr)) /* the header must be on AT_PHDR's page */
		return 0;
	const struct elf_ehdr *e = (const struct elf_ehdr *)(phdr - sizeof(struct elf_ehdr));
	if (!rs_memeq(e->ident, "\177ELF", 4) || e->phoff != sizeof *e || !e->shoff)
		return 0;
	if (rs_stat(fn, &h->exe) || (h->exe.st_mode & RS_S_IFMT) != RS_S_IFREG)
		return 0;
	return (rs_u64)h->exe.st_size == e->shoff + (rs_u64)e->shnum * e->shentsize;
}

static HOOK_NO_IMAGE int find_exec(struct hook *h, const rs_u64 *frame)
{
	struct rs_live *l = &h->live;
	h->valgrind = on_valgrind();
	rs_u64 *auxv = h->valgrind ? read_proc_auxv(h->auxv) : scan_auxv(frame);
	if (!auxv)
		return 0;
	rs_auxv_decode(&l->aux, auxv);
	l->at_base = rs_aux(&l->aux, AT_BASE);
	/* ld.so run as a program, or setuid/setgid/capabilities: never. */
	if (!l->at_base || l->at_base % RS_PAGE || rs_aux(&l->aux, AT_SECURE) || !find_stack(h))
		return 0;
	read_env(h);
	/* The takeover time is counted from here: the first moment the debug
	 * level is known, one system call and a stack scan after entry. */
	if (h->debug >= 2)
		rs_clock_gettime(RS_CLOCK_MONOTONIC, &h->t0);
	if (!exe_from_execfn(h) && rs_stat("/proc/self/exe", &h->exe))
		return 0;
	l->exe_dev = h->exe.st_dev;
	l->exe_ino = h->exe.st_ino;
	l->euid = (rs_u32)rs_aux(&l->aux, AT_EUID);
	l->sysinfo_ehdr = rs_aux(&l->aux, AT_SYSINFO_EHDR);
	l->vdso_size = 0;
	if (l->sysinfo_ehdr)
		rs_elf_loaded(l->sysinfo_ehdr, &l->vdso_size);
	l->stack_end = rs_stack_top(l->argv, l->argc, l->envp, l->env_count, &l->aux);
	l->args_lo = (rs_uptr)l->argv - 8;
	__asm__("mov %%fs:0, %0" : "=r"(l->fs_base)); /* tcbhead_t.tcb: the thread pointer */
	return 1;
}

/* ---- step 2: the image ---- */

/* Called from many places: one copy each, in the no-image section (text.h). */
static HOOK_NO_IMAGE char *put(char *to, char *end, const char *s) { return rs_put(to, end, s); }
static HOOK_NO_IMAGE char *put_hex(char *to, char *end, rs_u64 v) { return rs_put_number(to, end, v, 16); }

/* The registry rule shared with the C# side (RegistryPaths): the user's
 * registry is $RESIDENT_DIR, else $XDG_CACHE_HOME/resident, else
 * $HOME/.cache/resident (absolute only); the system's, consulted when the
 * user's has no image, is $RESIDENT_SYSTEM_DIR, else /var/cache/resident.
 * Either is used only if trusted (open_in). */
static HOOK_NO_IMAGE int registry_dir(struct hook *h, int system)
{
	char *end = h->image_path + RS_PATH_MAX, *p;
	if (system)
		p = put(h->image_path, end, h->env_system && h->env_system[0] == '/' ? h->env_system : "/var/cache/resident");
	else if (h->env_dir && h->env_dir[0] == '/')
		p = put(h->image_path, end, h->env_dir);
	else if (h->env_cache && h->env_cache[0] == '/')
		p = put(put(h->image_path, end, h->env_cache), end, "/resident");
	else if (h->env_home && h->env_home[0] == '/')
		p = put(put(h->image_path, end, h->env_home), end, "/.cache/resident");
	else
		return 0;
	h->dir_len = (rs_u64)(p - h->image_path);
	return 1;
}

/* The registry rule's file name of an executable's image, "<dev hex>-<ino hex>.img"
 * (RegistryPaths.ImageFileName). */
static HOOK_NO_IMAGE char *image_name(char *to, char *end, const struct rs_stat *exe)
{
	return put(put_hex(put(put_hex(to, end, exe->st_dev), end, "-"), end, exe->st_ino), end, ".img");
}

static HOOK_NO_IMAGE int trusted(const struct rs_stat *st, rs_u32 euid, rs_u32 type)
{
	return (st->st_mode & RS_S_IFMT) == type && (st->st_uid == euid || st->st_uid == 0) && !(st->st_mode & 022);
}

static HOOK_NO_IMAGE int refuse(struct hook *h, const char *reason, const char *detail) { return rs_refuse(&h->why, reason, detail); }

/* The image for this executable in the registry named by image_path[0,
 * dir_len), its variant VARIANT (0: the image itself, image.h). 1: open and
 * trusted; 0: there is none (why.reason 0); else refused. */
static HOOK_NO_IMAGE int open_in(struct hook *h, rs_u32 variant)
{
	struct rs_stat st, dir;
	char *end = h->image_path + sizeof h->image_path - 1;
	char *name_end = image_name(put(h->image_path + h->dir_len, end, "/"), end, &h->exe);
	if (variant)
		rs_put_number(put(name_end, end, "."), end, variant, 10);
	/* Whatever sits at the path, opening it must not block (a FIFO) or have
	 * side effects (a terminal); fstat below refuses anything but a file. */
	long fd = rs_openat(RS_AT_FDCWD, h->image_path, RS_O_RDONLY | RS_O_NOFOLLOW | RS_O_CLOEXEC | RS_O_NONBLOCK | RS_O_NOCTTY);
	if (fd == -RS_ENOENT || fd == -RS_ENOTDIR)
		return 0;
	if (fd == -RS_ELOOP) /* O_NOFOLLOW met a symlink: whoever can point it can pick the address space */
		return refuse(h, "image not trusted: symlink", h->image_path);
	if (fd < 0)
		return refuse(h, "image unreadable", h->image_path);
	h->image_fd = (int)fd;
	/* A registry others can write to could hand us any address space. */
	if (rs_fstat(h->image_fd, &st) || !trusted(&st, h->live.euid, RS_S_IFREG))
		return refuse(h, "image not trusted", h->image_path);
	h->image_path[h->dir_len] = 0; /* the directory alone, for stat and the message */
	if (rs_stat(h->image_path, &dir) || !trusted(&dir, h->live.euid, RS_S_IFDIR))
		return refuse(h, "registry not trusted", h->image_path);
	h->image_path[h->dir_len] = '/';
	h->img.file_size = (rs_u64)st.st_size;
	return 1;
}

/* The user's image, else the system's. An image the user's registry has but
 * cannot use is a fall back, not a reason to try another one. */
static HOOK_NO_IMAGE int open_image(struct hook *h)
{
	h->why.reason = 0;
	if (registry_dir(h, 0) && (open_in(h, 0) || h->why.reason))
		return h->image_fd >= 0 && !h->why.reason;
	return registry_dir(h, 1) && open_in(h, 0);
}

/* When there is no image for this file, but its path is registered under
 * another one: the executable was replaced since `resident add` (a package
 * upgrade), and the image names the old file. For RESIDENT_DEBUG and
 * RESIDENT_PROBE only (a readlink or two more): a registry holds, for every
 * image, the symlink DIR/<FNV-1a-64 of the path, hex>.path -> "IMAGE:PATH",
 * IMAGE the image's file name (RegistryPaths.PathLink). An image of this very
 * file that is only missing (being replaced) is no image, as before. */
static rs_u64 path_hash(const char *s)
{
	rs_u64 v = RS_FNV_OFFSET;
	for (; *s; s++)
		v = (v ^ (rs_u8)*s) * RS_FNV_PRIME;
	return v;
}

static __attribute__((noinline)) int registered_elsewhere(struct hook *h)
{
	char exe[RS_PATH_MAX + 1], target[RS_PATH_MAX + 64], own[64];
	long n = rs_readlink("/proc/self/exe", exe, RS_PATH_MAX);
	if (n <= 0)
		return 0;
	exe[n] = 0;
	put(image_name(own, own + sizeof own - 1, &h->exe), own + sizeof own - 1, ":");
	rs_u64 own_len = rs_strlen(own);
	for (int system = 0; system < 2; system++) {
		if (!registry_dir(h, system))
			continue;
		char *end = h->image_path + sizeof h->image_path - 1;
		put(put_hex(put(h->image_path + h->dir_len, end, "/"), end, path_hash(exe)), end, ".path");
		long t = rs_readlink(h->image_path, target, sizeof target - 1);
		if (t <= 0)
			continue;
		target[t] = 0;
		const char *colon = target;
		while (*colon && *colon != ':')
			colon++;
		if (*colon && rs_streq(colon + 1, exe) && !rs_memeq(target, own, own_len))
			return refuse(h, "executable changed", "replaced since it was registered (resident refresh captures it again)");
	}
	return 0;
}

static int read_at(int fd, rs_u8 *to, rs_u64 len, rs_u64 off)
{
	for (rs_u64 got = 0; got < len;) {
		long n = rs_pread(fd, to + got, len - got, (long)(off + got));
		if (n <= 0)
			return 0;
		got += (rs_u64)n;
	}
	return 1;
}

/* Where the metadata and the fds array live: on the stack when they fit
 * (every image seen so far: 4-11 KiB), else in a fresh mapping. Either way
 * the takeover leaves nothing behind. */
static rs_u8 *meta_buffer(struct hook *h, rs_u64 meta, rs_u32 files, rs_u64 have)
{
	if (meta <= HOOK_META_STACK && files <= HOOK_FDS_STACK) {
		h->fds = h->buf->fds_stack;
		return h->buf->meta_stack;
	}
	rs_u64 meta_len = rs_page_up(meta);
	h->meta_len = meta_len + rs_page_up((rs_u64)files * sizeof(int));
	long m = rs_mmap(0, h->meta_len, RS_PROT_READ | RS_PROT_WRITE, RS_MAP_PRIVATE | RS_MAP_ANONYMOUS, -1, 0);
	if (rs_failed(m))
		return 0;
	h->meta = (void *)m;
	h->fds = (int *)((rs_u8 *)h->meta + meta_len);
	rs_copy(h->meta, h->buf->meta_stack, have);
	return h->meta;
}

/* One page first: the header, and for most programs all of the metadata,
 * in a single read. */
static int read_image(struct hook *h)
{
	const struct rs_header *hdr = (const struct rs_header *)h->buf->meta_stack;
	rs_u64 size = h->img.file_size, first = size < RS_PAGE ? size : RS_PAGE;
	if (first < sizeof *hdr || !read_at(h->image_fd, h->buf->meta_stack, first, h->base))
		return refuse(h, "corrupt image: short", 0);
	if (!rs_image_header_ok(hdr, size, &h->why))
		return 0;
	rs_u64 meta = hdr->meta_size;
	rs_u32 files = hdr->files.count;
	rs_u8 *buf = meta_buffer(h, meta, files, first);
	if (!buf)
		return refuse(h, "out of memory", 0);
	if (meta > first && !read_at(h->image_fd, buf + first, meta - first, h->base + first))
		return refuse(h, "corrupt image: short", 0);
	if (!rs_image_parse(&h->img, buf, meta, size, &h->why))
		return 0;
	h->img.base = h->base;
	h->parsed = 1;
	/* The fds array was sized by the header as first read. */
	if (h->img.file_count > files)
		return refuse(h, "corrupt image: changed while read", 0);
	return 1;
}

/* The running executable is the file the image was found for, under the
 * image's path: the same inode reached by another path (a hard link
 * elsewhere, a rename) may load other libraries, as ld.so expands $ORIGIN
 * from this path. Symlinks resolve the same. */
static int same_exe(struct hook *h)
{
	const char *want = h->img.strings + h->img.files[0].path;
	char *path = h->buf->exe_path;
	struct rs_stat st;
	long n = rs_readlink("/proc/self/exe", path, RS_PATH_MAX);
	if (n <= 0 || rs_stat("/proc/self/exe", &st))
		return refuse(h, "cannot read /proc/self/exe", 0);
	path[n] = 0;
	/* exe_from_execfn named another file than the one running */
	if (st.st_dev != h->exe.st_dev || st.st_ino != h->exe.st_ino)
		return refuse(h, "executable is not the file exec'd", path);
	if (!rs_streq(path, want))
		return refuse(h, "executable reached by another path", path);
	return 1;
}

/* A seccomp filter (containers, systemd's SystemCallFilter=) may deny a call
 * the takeover needs and ld.so never made, and may kill the program for
 * asking. So under a filter the hook falls back, unless the user declares
 * (RESIDENT_SECCOMP=errno, as with Docker's default profile) that the filter
 * answers a refused call with an error: then each call the takeover needs is
 * asked first (rs_takeover_denied). */
static int syscalls_allowed(struct hook *h)
{
	h->live.filtered = 1;
	if (rs_takeover_denied())
		return refuse(h, "a system call the takeover needs is denied (seccomp)", 0);
	return 1;
}

/* The value after "\nNAME:\t" in /proc/self/status text, or 0. */
static const char *status_field(const char *text, long n, const char *key, long key_len)
{
	for (long i = 0; i + key_len < n; i++)
		if (rs_memeq(text + i, key, (rs_u64)key_len))
			return text + i + key_len;
	return 0;
}

/* /proc/self/status, read once an image exists. Under a debugger (or strace)
 * the takeover would swap ld.so behind its back: gdb watches the abandoned
 * ld.so's r_debug and would never see a library. "Seccomp: 0" (no filter)
 * spares the probes of syscalls_allowed. */
static int status_ok(struct hook *h)
{
	char buf[1536];
	long fd = rs_openat(RS_AT_FDCWD, "/proc/self/status", RS_O_RDONLY | RS_O_CLOEXEC);
	if (fd < 0)
		return refuse(h, "cannot read /proc/self/status", 0);
	long n = rs_read((int)fd, buf, sizeof buf - 1);
	rs_close((int)fd);
	buf[n > 0 ? n : 0] = 0;
	static const char tracer[] = "\nTracerPid:\t", seccomp[] = "\nSeccomp:\t";
	const char *t = status_field(buf, n, tracer, sizeof tracer - 1);
	if (!t)
		return refuse(h, "no TracerPid in /proc/self/status", 0);
	if (*t != '0')
		return refuse(h, "traced (debugger or strace)", 0);
	const char *f = status_field(buf, n, seccomp, sizeof seccomp - 1);
	if (f && *f == '0')
		return 1;
	if (!h->seccomp_errno)
		return refuse(h, "a seccomp filter is on (RESIDENT_SECCOMP=errno if it answers refused calls with an error)", 0);
	return syscalls_allowed(h);
}

/* This hook's own code, which the validation and the copy of the routine
 * are about to run through page by page: one madvise maps it (shared page
 * cache, no private memory). The stack is not prefaulted: populating 48 KiB
 * below argc was within noise for speed and cost each perl 15 KiB of
 * private memory (10 instances: Pss 9386 vs 9015 kB, docs/benchmarks.md). */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char _etext[] __attribute__((visibility("hidden")));

static void prefault_code(void) { rs_madvise((rs_u64)__ehdr_start, rs_page_up((rs_u64)(_etext - __ehdr_start)), RS_MADV_POPULATE_READ); }

/* This exec's rseq registration, as its ld.so made it: glibc 2.35 and later
 * export where (__rseq_offset from the thread pointer) and whether
 * (__rseq_size, 0 when nothing was registered); an ld.so without them
 * registered nothing. The offset is this exec's own, not the capture's: from
 * glibc 2.40 the area lies in the static TLS block, laid out differently when
 * an audit module is loaded. */
static void find_rseq(struct hook *h)
{
	struct rs_live *l = &h->live;
	rs_u64 off = rs_elf_symbol(l->at_base, h->ldso_dyn, "__rseq_offset");
	rs_u64 size = rs_elf_symbol(l->at_base, h->ldso_dyn, "__rseq_size");
	l->rseq_area = off && size && *(const rs_u32 *)size ? l->fs_base + (rs_u64) * (const rs_i64 *)off : 0;
}

static int check_image(struct hook *h)
{
	rs_u64 lim[2], data[2], as[2];
	if (!same_exe(h))
		return 0;
	find_rseq(h);
	if (rs_uname(&h->buf->uts) || rs_getrlimit(RS_RLIMIT_STACK, lim) || rs_getrlimit(RS_RLIMIT_DATA, data) ||
	    rs_getrlimit(RS_RLIMIT_AS, as))
		return refuse(h, "uname or getrlimit failed", 0);
	h->live.rlimit_stack = lim[0];
	h->live.rlimit_data = data[0];
	h->live.rlimit_as = as[0];
	h->live.kernel_release = h->buf->uts.release;
	h->live.kernel_version = h->buf->uts.version;
	return rs_check_live(&h->img, &h->live, &h->why) && rs_check_rseq(&h->img, &h->live, &h->why);
}

/* An init-level image is for execs whose looked-up variables (HOME, say) are
 * as at capture. Another exec is restored from the link-level image it
 * carries, if it carries one, and checked as any image is; else it starts
 * normally. */
static int check_env_deps(struct hook *h)
{
	if (rs_check_env_deps(&h->img, &h->live, &h->why))
		return 1;
	rs_u64 off = h->img.h->fallback_offset, size = h->img.h->fallback_size;
	if (!size)
		return 0;
	h->init_why = h->why;
	rs_u64 n = 0;
	for (const char *d = h->why.detail; d && d[n] && n < sizeof h->init_detail - 1 && (!h->why.detail_len || n < h->why.detail_len);
	     n++)
		h->init_detail[n] = d[n];
	h->init_detail[n] = 0;
	h->init_why.detail = h->why.detail ? h->init_detail : 0;
	h->init_why.detail_len = 0;
	h->why.reason = 0;
	h->why.detail = 0;
	h->why.detail_len = 0;
	if (h->meta)
		rs_munmap((rs_uptr)h->meta, h->meta_len);
	h->meta = 0;
	h->parsed = 0;
	h->base = off;
	h->img.file_size = size;
	return read_image(h) && check_image(h);
}

/* Which of K variants this exec uses: RESIDENT_VARIANT=N if set (tests, doctor), else a
 * hash of its 16 AT_RANDOM bytes (fresh per exec) scaled to [0, K). Not the bytes themselves:
 * the layout an attacker sees must not tell which canary or pointer guard this exec has. */
static rs_u32 variant_pick(struct hook *h, rs_u32 k)
{
	const char *v = h->env_variant;
	if (v && *v) {
		rs_u64 n = 0;
		for (; *v >= '0' && *v <= '9' && n < RS_VARIANTS_MAX; v++)
			n = n * 10 + (rs_u64)(*v - '0');
		return !*v && n < k ? (rs_u32)n : 0;
	}
	const rs_u8 *rnd = (const rs_u8 *)rs_aux(&h->live.aux, AT_RANDOM);
	rs_u64 x = RS_FNV_OFFSET;
	for (int i = 0; rnd && i < 16; i++)
		x = (x ^ rnd[i]) * RS_FNV_PRIME;
	x ^= x >> 29;
	return (rs_u32)(((x >> 32) * k) >> 32);
}

/* An image of several layouts: variant 0 says how many; this exec reads the one it picks
 * instead. A variant file that does not exist (a refresh is writing the set, or was cut
 * short) leaves variant 0, which is complete by itself; one that is not of the same
 * registration and set is refused. */
static int choose_variant(struct hook *h)
{
	rs_u32 k = h->img.h->variant_count, pick;
	rs_u64 id = h->img.h->id, size0 = h->img.file_size;
	int fd0 = h->image_fd;
	if (k <= 1 || k > RS_VARIANTS_MAX || (pick = variant_pick(h, k)) == 0)
		return 1;
	h->image_fd = -1;
	if (!open_in(h, pick)) {
		if (h->why.reason) { /* refused: fall_back closes the variant's fd */
			rs_close(fd0);
			return 0;
		}
		h->image_fd = fd0;
		h->img.file_size = size0;
		return 1;
	}
	rs_close(fd0);
	if (h->meta)
		rs_munmap((rs_uptr)h->meta, h->meta_len);
	h->meta = 0;
	h->parsed = 0;
	if (!read_image(h))
		return 0;
	if (h->img.h->id != id || h->img.h->variant_count != k || h->img.h->variant_index != pick) {
		h->parsed = 0; /* its program is not this one: messages name /proc/self/exe's */
		return refuse(h, "corrupt image: not a variant of the same set", h->image_path);
	}
	return 1;
}

static int open_files(struct hook *h)
{
	if (!rs_open_files(&h->img, h->fds, &h->why))
		return 0; /* closed them */
	h->files_open = 1;
	return 1;
}

/* ---- step 3: take over ---- */

/* The program's path for messages: the image's, else /proc/self/exe's in BUF. */
static const char *program_path(struct hook *h, char buf[RS_PATH_MAX + 1])
{
	if (h->parsed)
		return h->img.strings + h->img.files[0].path;
	long n = rs_readlink("/proc/self/exe", buf, RS_PATH_MAX);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 ? buf : "?";
}

static int prepare(struct hook *h)
{
	struct rs_texts t;
	t.path = program_path(h, 0); /* parsed by now */
	t.debug = h->debug;
	t.t0 = h->t0;
	t.end_at = h->measure == 2 ? h->measure_main : 0;
	h->args = rs_prepare(&h->img, &h->live, h->fds, h->image_fd, &t, &h->why);
	return h->args != 0;
}

static int take_over(struct hook *h)
{
	rs_start(h->args, &h->why); /* returns only if it could not start */
	rs_abandon(h->args);
	h->args = 0;
	return 0;
}

/* ---- the one failure exit ---- */

/* "resident: WHAT PATH: [VERDICT: ]REASON[: DETAIL]" on stderr. */
static void say(struct hook *h, const char *what, const char *verdict, const char *reason)
{
	char line[HOOK_LINE_MAX], path[RS_PATH_MAX + 1];
	char *end = line + sizeof line - 2;
	char *p = put(put(put(put(put(line, end, "resident: "), end, what), end, " "), end, program_path(h, path)), end, ": ");
	if (verdict)
		p = put(put(p, end, verdict), end, ": ");
	p = put(p, end, reason);
	const char *detail = reason == h->why.reason ? h->why.detail : 0;
	if (detail) {
		p = put(p, end, ": ");
		for (rs_u64 i = 0; detail[i] && (!h->why.detail_len || i < h->why.detail_len) && p < end; i++)
			*p++ = detail[i];
	}
	*p++ = '\n';
	rs_write(2, line, (rs_u64)(p - line));
}

/* Undo everything and let ld.so go on: nothing was changed. With
 * RESIDENT_PROBE, say what would have happened and end the process instead. */
static HOOK_NO_IMAGE unsigned int fall_back(struct hook *h)
{
	int has_image = h->why.reason != 0;
	const char *reason = has_image ? h->why.reason : "no image";
	if (h->probe) {
		say(h, "probe", has_image ? "would fall back" : 0, reason);
		rs_exit_group(0);
	}
	if (h->debug >= (has_image ? 1 : 2))
		say(h, "fallback", 0, reason);
	if (h->files_open)
		rs_close_files(h->fds, h->img.file_count);
	if (h->meta)
		rs_munmap((rs_uptr)h->meta, h->meta_len);
	if (h->image_fd >= 0)
		rs_close(h->image_fd);
	return 0;
}

static HOOK_NO_IMAGE void hook_init(struct hook *h)
{
	h->image_fd = -1;
	h->base = 0;
	h->init_why.reason = 0;
	h->parsed = 0;
	h->files_open = 0;
	h->meta = 0;
	h->fds = 0;
	h->args = 0;
	h->buf = 0;
	h->why.reason = 0;
	h->why.detail = 0;
	h->why.detail_len = 0;
	h->live.exported = 0;
	h->live.brk_from = 0;
}

/* Steps 2 and 3, for an exec whose image is open. Its buffers are the
 * lowest frame data of the hook: the takeover keeps the stack from there. */
static __attribute__((noinline)) unsigned int restore(struct hook *h)
{
	struct hook_buffers b;
	h->buf = &b;
	h->live.sp = (rs_uptr)&b;
	/* First, and with calls ld.so makes too (openat, read): under a seccomp
	 * filter the hook may make no other before it knows it may (status_ok). */
	if (!status_ok(h))
		return fall_back(h);
	prefault_code();
	if (!read_image(h) || !choose_variant(h) || !check_image(h) || !check_env_deps(h) || !open_files(h) || !prepare(h))
		return fall_back(h);
	if (h->init_why.reason && (h->probe || h->debug)) {
		h->why = h->init_why;
		say(h, h->probe ? "probe" : "level", h->probe ? "would restore the link level" : "link level", h->why.reason);
	}
	if (h->probe) {
		if (!h->init_why.reason)
			say(h, "probe", 0, "would restore");
		rs_exit_group(0);
	}
	if (!take_over(h))
		return fall_back(h);
	return 0;
}

__attribute__((visibility("default"))) HOOK_NO_IMAGE unsigned int la_version(unsigned int version)
{
	struct hook h;
	(void)version;
	hook_init(&h);
	if (!find_exec(&h, __builtin_frame_address(0)))
		return 0; /* not a normal dynamic exec: not ours to judge */
	if (h.measure == 1) { /* a start the hook finds no image for (RESIDENT_DIR is empty), ended at main */
		open_image(&h);
		fall_back(&h);
		rs_end_at(rs_aux(&h.live.aux, AT_PHDR) - RS_EHDR_SIZE + h.measure_main);
		return 0;
	}
	if (!open_image(&h)) {
		if (!h.why.reason && (h.debug || h.probe))
			registered_elsewhere(&h);
		return fall_back(&h);
	}
	if (h.valgrind) { /* its CPU is not the one the image was made for, nor does it model the takeover */
		refuse(&h, "running under valgrind", 0);
		return fall_back(&h);
	}
	return restore(&h);
}
