/*
 * restore.h - the restore core's interface, shared by its entry points
 * (hook.c, for LD_AUDIT).
 *
 * The core works in three stages, one file each:
 *   1. rs_image_parse, rs_check_live (restore.c): pure validation of an image
 *      buffer against facts about this exec (no system calls; fuzzed on the
 *      host, see tests/core_test.c);
 *   2. rs_open_files, rs_check_rseq (files.c) and rs_prepare (plan.c):
 *      system calls that change nothing the program could notice (opens,
 *      one fresh mapping);
 *   3. rs_start -> rs_takeover (routine.c): the destructive,
 *      position-independent routine, built apart with its own flags.
 * Until rs_takeover is called the caller can still fall back by closing the
 * fds and unmapping the prepared mapping (rs_abandon).
 */
#ifndef RESIDENT_RESTORE_H
#define RESIDENT_RESTORE_H

#include "image.h"
#include "sys.h"

/* Why an image was refused: reason is a short constant text, detail an
 * optional name (a path, an env variable) printed after it. */
struct rs_why {
	const char *reason;
	const char *detail; /* 0 for none */
	rs_u64 detail_len; /* bytes of detail to print; 0: up to its NUL */
};

/* Record why and return 0, the failure value of every stage (and of the
 * hook's own checks). */
static inline int rs_refuse(struct rs_why *why, const char *reason, const char *detail)
{
	why->reason = reason;
	why->detail = detail;
	why->detail_len = 0;
	return 0;
}

/* The longest path the kernel resolves (PATH_MAX, NUL included): paths
 * read or printed are cut there. */
#define RS_PATH_MAX 4096

/* x86_64 glibc's tcbhead_t (the thread pointer's first words), the same from
 * 2.31 to 2.43: the words the takeover renews per exec. */
#define RS_TCB_CANARY 0x28 /* stack_guard */
#define RS_TCB_GUARD 0x30 /* pointer_guard */

/* ---- the auxiliary vector, decoded once per exec ----
 *
 * As musl's decode_vec: one pass over the (a_type, a_val) pairs records
 * where each type's value is, and every reader asks by type. The first
 * entry of a type counts. Types from RS_AUX_TYPES up (the kernel's highest
 * today is AT_MINSIGSTKSZ, 51) read as absent: what needs them falls back. */
#define RS_AUX_TYPES 64
struct rs_auxv {
	rs_u64 *v; /* the pairs, on the live stack, AT_NULL-terminated */
	rs_u32 words; /* words of v, AT_NULL's pair included */
	unsigned short at[RS_AUX_TYPES]; /* index in v of type T's value, 0 when absent */
};

RS_INLINE void rs_auxv_decode(struct rs_auxv *a, rs_u64 *v)
{
	rs_u32 i = 0;
	for (int t = 0; t < RS_AUX_TYPES; t++)
		a->at[t] = 0;
	for (; v[i] != AT_NULL; i += 2)
		if (v[i] < RS_AUX_TYPES && !a->at[v[i]])
			a->at[v[i]] = (unsigned short)(i + 1);
	a->v = v;
	a->words = i + 2;
}

RS_INLINE int rs_aux_has(const struct rs_auxv *a, rs_u64 type) { return type < RS_AUX_TYPES && a->at[type]; }

/* The value of TYPE, 0 when absent. */
RS_INLINE rs_u64 rs_aux(const struct rs_auxv *a, rs_u64 type) { return rs_aux_has(a, type) ? a->v[a->at[type]] : 0; }

/* The end of the [stack] VMA, without /proc: the kernel copies the exec's
 * file name last, ending 8 bytes below the stack's top. */
RS_INLINE rs_u64 rs_stack_top(char **argv, rs_u64 argc, char **envp, rs_u64 env_count, const struct rs_auxv *aux)
{
	const char *top = (const char *)rs_aux(aux, AT_EXECFN);
	if (!top && env_count)
		top = envp[env_count - 1];
	if (!top)
		top = argv[argc ? argc - 1 : 0];
	return rs_page_up((rs_uptr)top + rs_strlen(top) + 1 + 8);
}

/* Facts about this exec, gathered by the entry point before validation. */
struct rs_live {
	rs_u64 argc;
	char **argv; /* the live initial stack: argv[argc] == 0 */
	char **envp; /* envp[env_count] == 0 */
	rs_u64 env_count;
	struct rs_auxv aux; /* this exec's auxv */
	rs_u64 at_base; /* ld.so's load address */
	rs_u64 ldso_size; /* bytes from at_base that ld.so's PT_LOAD segments cover */
	rs_u64 sysinfo_ehdr; /* the live [vdso], 0 when there is none */
	rs_u64 vdso_size; /* bytes from sysinfo_ehdr known to be mapped (its PT_LOADs) */
	rs_u64 fs_base; /* the live thread pointer (%fs:0) */
	rs_u64 sp; /* a stack address of the entry point's frame */
	rs_u64 stack_end; /* end of the live [stack] VMA */
	rs_u64 args_lo; /* &argc: the exec's arrays and strings lie in [args_lo, stack_end) */
	rs_u64 exe_dev, exe_ino;
	rs_u32 euid;
	const char *kernel_release; /* uname(), NUL-terminated */
	const char *kernel_version;
	rs_u64 rlimit_stack; /* soft RLIMIT_STACK (RLIM_INFINITY: ~0) */
	rs_u64 rlimit_data, rlimit_as; /* soft RLIMIT_DATA, RLIMIT_AS: the takeover's peak must fit */
	int filtered; /* a seccomp filter is on: make no system call the takeover can do without */
	rs_u64 rseq_area; /* the rseq area this exec's ld.so registered (thread pointer + its
			   * __rseq_offset, when its __rseq_size is not 0), or 0 for none */
	/* An exported file (export.c): its segments hold the snapshot, mapped by the
	 * kernel; the takeover unmaps only [self_start, self_end), the stub and the
	 * image's metadata. 0 for the hook. */
	int exported;
	rs_u64 self_start, self_end;
	rs_u64 brk_from; /* the end the kernel counted this exec's break from (0: the executable's, from AT_PHDR) */
	void *plan_buf; /* zeroed memory of rs_plan_size() bytes for the routine's arguments: the routine runs in place */
};

/* A parsed image: pointers into the checksummed metadata buffer. */
struct rs_image {
	const rs_u8 *meta;
	rs_u64 meta_size;
	rs_u64 file_size;
	const struct rs_header *h;
	const struct rs_file *files;
	const struct rs_region *regions;
	const struct rs_patch *patches;
	const rs_u32 *env;
	const struct rs_span *prefault;
	const rs_u32 *env_deps;
	const struct rs_kernel_op *kops; /* init level: kernel state to replay */
	const rs_u8 *frame; /* init level: the frames below main (frame_len bytes), else 0 */
	rs_u64 frame_len;
	rs_u32 file_count, region_count, patch_count, env_count, prefault_count, env_dep_count, kop_count;
	rs_u64 base; /* where the image starts in its file: 0, or an init-level image's fallback_offset
		      * when restoring from the link-level image it carries (set by the caller after
		      * rs_image_parse); added to every offset into the file */
	const char *strings;
	rs_u64 strings_size;
};

/* rs_image_parse(img, buf, size, file_size, why): check the header, checksum
 * and every table of the metadata [0, size) of an image file of file_size
 * bytes; on success fill img (pointing into buf) and return 1. Treats the
 * buffer as hostile: every offset and count is bounds-checked. */
int rs_image_parse(struct rs_image *img, const void *buf, rs_u64 size, rs_u64 file_size, struct rs_why *why);

/* rs_image_header_ok(h, file_size, why): the checks that need only the
 * header, so the caller can size its buffer for meta_size. */
int rs_image_header_ok(const struct rs_header *h, rs_u64 file_size, struct rs_why *why);

/* rs_image_string(img, off): the NUL-terminated string at off, or 0. */
const char *rs_image_string(const struct rs_image *img, rs_u64 off);

/* rs_check_live(img, live, why): is the image valid for this exec? Reads the
 * live vdso, ld.so's cpu_features and the stack; makes no system call. */
int rs_check_live(const struct rs_image *img, const struct rs_live *live, struct rs_why *why);

/* rs_check_exported(img, live, why): the checks of rs_check_live that apply to
 * an exported file (export.c), whose snapshot the kernel mapped at exec. */
int rs_check_exported(const struct rs_image *img, const struct rs_live *live, struct rs_why *why);

/* rs_check_env_deps(img, live, why): the variables an init-level image's
 * constructors looked up have the capture's values in this exec (or are unset
 * as they were). Apart from rs_check_live: a failure here is not the end, an
 * image with fallback_size restores its link-level image instead. */
int rs_check_env_deps(const struct rs_image *img, const struct rs_live *live, struct rs_why *why);

/* rs_patch_base(img, live, p, base): this exec's BASE for patch p (image.h:
 * the word becomes BASE + delta); returns 0 if it does not exist here. The
 * kinds that are not BASE + delta (ARGC_COUNT, MANGLED, RANDOM, CANARY) have
 * base 0. */
int rs_patch_base(const struct rs_image *img, const struct rs_live *live, const struct rs_patch *p, rs_u64 *base);

/* rs_patch_value(img, live, p, random): the word patch p writes in this exec
 * (its base exists: rs_check_live), random the fresh word of RS_PATCH_RANDOM. */
rs_u64 rs_patch_value(const struct rs_image *img, const struct rs_live *live, const struct rs_patch *p, rs_u64 random);

/* rs_patch_addr(img, live, p): where patch p writes in this exec: its address,
 * moved with the frames below main when it lies in them (init level). */
rs_u64 rs_patch_addr(const struct rs_image *img, const struct rs_live *live, const struct rs_patch *p);

/* The frames below main in this exec's stack: they end where its argc is. */
RS_INLINE rs_u64 rs_frame_at(const struct rs_image *img, const struct rs_live *live) { return live->args_lo - img->frame_len; }

/* This exec's canary (low byte 0) and pointer guard, as glibc derives them
 * from the 16 AT_RANDOM bytes (present: rs_check_live). */
RS_INLINE void rs_live_guards(const struct rs_live *live, rs_u64 *canary, rs_u64 *guard)
{
	const rs_u8 *rnd = (const rs_u8 *)rs_aux(&live->aux, AT_RANDOM);
	rs_u64 c = 0, g = 0;
	for (int i = 7; i >= 0; i--) {
		c = c << 8 | rnd[i];
		g = g << 8 | rnd[8 + i];
	}
	*canary = c & ~0xfful;
	*guard = g;
}

/* rs_stack_zone(live, lo, hi): [lo, hi) is what the live stack owns or may
 * grow into; no snapshot mapping may lie there. */

/* rs_stacksize_patchable(img, live): this exec's soft RLIMIT_STACK differs from
 * the capture's and the image says where libc keeps the default thread stack
 * size it derived: the takeover writes what a normal start would derive. */
#define RS_STACKSIZE_MIN (1ull << 20)
int rs_stacksize_patchable(const struct rs_image *img, const struct rs_live *live);

/* rs_stacksize_for(live): the default thread stack size a normal start derives from this exec's
 * soft RLIMIT_STACK (glibc's __pthread_initialize_minimal): the limit page-aligned, or with no
 * limit x86_64's ARCH_STACK_DEFAULT_SIZE. */
#define RS_STACKSIZE_UNLIMITED (2ull << 20)
rs_u64 rs_stacksize_for(const struct rs_live *live);
void rs_stack_zone(const struct rs_live *live, rs_u64 *lo, rs_u64 *hi);

/* rs_open_files(img, fds, why): check every files[] entry against the file
 * system; MAPPED files stay open in fds[i] (else -1). On failure closes them
 * all and returns 0. fds has img->file_count slots. */
int rs_open_files(const struct rs_image *img, int *fds, struct rs_why *why);
void rs_close_files(const int *fds, rs_u32 count);

/* Under a seccomp filter a call the takeover needs may be denied that the
 * program's own start never made, so each is asked first with invalid
 * arguments: allowed, EINVAL; filtered, EPERM, EACCES or ENOSYS (a filter
 * that kills kills here, as it would at the program's first such call). */
RS_INLINE int rs_denied(long r) { return r == -RS_EPERM || r == -RS_EACCES || r == -RS_ENOSYS; }

/* rs_takeover_denied(): 1 when the filter denies one of the calls every
 * takeover makes (close_range is optional: under a filter the fds are closed
 * one by one). */
int rs_takeover_denied(void);

/* rs_check_rseq(img, live, why): this exec has an rseq registration exactly
 * when the capture had one (the routine registers the image's, which a
 * kernel or filter that refused this exec's would refuse too), and the
 * kernel holds exactly the one the takeover will undo: live->rseq_area with
 * the image's length and signature (same ld.so, same kernel). Asks by
 * registering the same area again, which the kernel answers EBUSY without
 * changing anything. */
int rs_check_rseq(const struct rs_image *img, const struct rs_live *live, struct rs_why *why);

/* rs_end_at(addr): the instruction at ADDR (main, for `resident add`'s timing)
 * becomes exit_group(0); the page gets its protection back. */
#define RS_EHDR_SIZE 64u /* sizeof(Elf64_Ehdr): AT_PHDR is right after it */
void rs_end_at(rs_u64 addr);

/* Text the takeover routine prints; it cannot reach string constants. */
struct rs_texts {
	const char *path; /* the program, for "resident: restored PATH" */
	int debug; /* RESIDENT_DEBUG level */
	struct rs_timespec t0; /* entry time, for debug level 2 */
	rs_u64 end_at; /* not 0: end the process at this offset from the executable's first byte (RESIDENT_MEASURE) */
};

struct rs_args;

/* rs_prepare(img, live, fds, image_fd, texts, why): place the takeover
 * routine and its arguments in one fresh mapping where the snapshot has
 * nothing; returns it or 0 (then nothing was changed). */
struct rs_args *rs_prepare(const struct rs_image *img, const struct rs_live *live, const int *fds, int image_fd,
			   const struct rs_texts *texts, struct rs_why *why);

/* rs_plan_size(img): the bytes of live->plan_buf an exported file's stub provides. */
rs_u64 rs_plan_size(const struct rs_image *img);

/* rs_abandon(args): undo rs_prepare (fall back after all). */
void rs_abandon(struct rs_args *args);

/* rs_start(args, why): unregister the live rseq area, the last step that can
 * still fail harmlessly, then run the routine. Returns only on failure. */
int rs_start(struct rs_args *args, struct rs_why *why);

#endif
