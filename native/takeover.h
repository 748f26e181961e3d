/*
 * takeover.h - what plan.c hands the routine (routine.c): the takeover
 * mapping's layout and struct rs_args, the one contract between the two
 * halves of the takeover, as CRIU's restorer.h is between cr-restore.c and
 * criu/pie. Nothing else crosses: the routine is built apart and copied.
 */
#ifndef RESIDENT_TAKEOVER_H
#define RESIDENT_TAKEOVER_H

#include "restore.h"

/*
 * One anonymous mapping holds everything the routine uses, because the
 * routine unmaps every other page of the process, the hook's included
 * (the idea of CRIU's task_restore_args):
 *
 *   self ─────────► +----------------------------------+
 *                   | code: copy of section rs_restore |  R+W+X (anon_map)
 *   + args_off ───► +----------------------------------+  (page boundary)
 *                   | struct rs_args                   |
 *                   | struct rs_map   maps[]           |  one per region
 *                   | struct rs_poke  pokes[]          |  patches, auxv, canary, guard
 *                   | int             fds[]            |  closed at the end
 *                   | struct rs_span  spans[]          |  prefault spans to populate (read, then write)
 *                   | struct rs_kcall kcalls[]         |  kernel state to set (init level)
 *   + bounce_off ─► +----------------------------------+  (page boundary)
 *                   | bounce: vdso block size          |  only if the blocks overlap
 *   + self_len ───► +----------------------------------+
 *
 * It is placed where the snapshot, both vdso blocks and the live stack zone
 * are not. The routine's last system call unmaps it: no page is left behind.
 */
struct rs_range {
	rs_u64 start, end;
};

struct rs_move {
	rs_u64 from, len, to; /* mremap(from, len, len, MAYMOVE|FIXED, to) */
};

struct rs_map {
	rs_u64 start, len, offset;
	rs_u32 prot; /* mapped with: final_prot, plus WRITE when patched */
	rs_u32 final_prot; /* mprotect to this after the pokes if it differs */
	rs_u32 flags; /* MAP_PRIVATE|MAP_FIXED_NOREPLACE[|MAP_ANONYMOUS][|MAP_POPULATE] */
	int fd; /* -1 for anonymous */
};

struct rs_poke {
	rs_u64 addr, value; /* *(u64 *)addr = value */
};

/* struct prctl_mm_map of <linux/prctl.h>: what /proc/PID/stat, /proc/PID/auxv and
 * a core dump say about the process's layout. */
struct rs_mm_map {
	rs_u64 start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	rs_u64 arg_start, arg_end, env_start, env_end;
	rs_u64 auxv; /* the live auxv, as patched */
	rs_u32 auxv_size; /* bytes, AT_NULL included */
	rs_u32 exe_fd; /* -1: /proc/PID/exe stays (it is the same file) */
};
_Static_assert(sizeof(struct rs_mm_map) == 104, "struct prctl_mm_map");

/* One system call replayed as the constructors made it (init level:
 * rs_kernel_op), its pointer argument aimed at its own data. */
struct rs_kcall {
	rs_u64 nr, arg[4];
	rs_u64 data[4];
};

enum {
	RS_STEP_MUNMAP,
	RS_STEP_MREMAP,
	RS_STEP_MMAP,
	RS_STEP_MPROTECT,
	RS_STEP_SET_FS,
	RS_STEP_ROBUST,
	RS_STEP_RSEQ,
	RS_STEP_KERNEL,
	RS_STEP_COUNT
};

/* A path and the words around it: "resident: restored ", the takeover time
 * and debug 3's marks, or "resident: fatal ", a step and an errno. */
#define RS_LINE_MAX (RS_PATH_MAX + 256)
#define RS_STEP_TEXT 32 /* "set_robust_list failed, errno " and its NUL */
#define RS_MARK_COUNT 7 /* rs_takeover's mark() calls */

struct rs_args {
	rs_u64 self, self_len; /* the takeover mapping */
	rs_u64 entry_off; /* rs_takeover's offset in it */
	struct rs_range unmaps[4]; /* the complement of what is kept */
	rs_u32 unmap_count;
	rs_u32 move_count;
	struct rs_move moves[2 * RS_MAX_VDSO_VMAS]; /* vvar..vdso to their capture addresses */
	rs_u64 vdso_map; /* not 0: the live block was unmapped with the rest; map a new one here (ARCH_MAP_VDSO_64) */
	rs_u64 end_at; /* not 0: write exit_group(0) at this address once mapped (RESIDENT_MEASURE) */
	struct rs_map *maps;
	struct rs_poke *pokes;
	int *fds;
	struct rs_span *spans;
	struct rs_kcall *kcalls;
	rs_u32 map_count, poke_count, fd_count, span_count, kcall_count;
	rs_u32 write_span_count; /* spans[span_count ...] of these are populated for writing (init level) */
	rs_u32 close_lo, close_hi; /* fds are exactly [lo, hi]; both 0 if not */

	/* thread state (image header) */
	rs_u64 fs_base, tid_address, robust_head, robust_len;
	rs_u64 rseq_addr, live_rseq; /* live_rseq: this exec's area, unregistered by rs_start */
	rs_u32 rseq_len, rseq_sig;

	/* resume */
	rs_u64 resume_sp; /* rsp for the final ret: &argc - 8 (link level), the rebuilt frames (init level) */
	rs_u64 resume_cont; /* written at resume_sp, "returned" to */
	rs_u64 user_entry; /* r12 */
	rs_u64 gadget; /* "syscall; ret" in the restored ld.so */

	/* heap prefault (image header): libc's __curbrk and how far to extend */
	rs_u64 heap_word, heap_prefault;

	/* the layout the kernel reports (PR_SET_MM_MAP); mm.start_code 0: leave it */
	struct rs_mm_map mm;

	/* log: line = "resident: restored PATH\n", or with debug 2 the same up to
	 * " (takeover " and the routine appends the microseconds and tail */
	int debug;
	struct rs_timespec t0;
	rs_u32 line_len, fatal_len;
	char line[RS_LINE_MAX];
	char fatal[RS_LINE_MAX]; /* "resident: fatal PATH: " */
	char tail[8];
	char step[RS_STEP_COUNT][RS_STEP_TEXT]; /* "mmap failed, errno " ... */

	/* debug 3: when each stage of the routine ended, appended to the line as
	 * microseconds from t0 (profiling the takeover without a tracer) */
	struct rs_timespec marks[RS_MARK_COUNT];
	rs_u32 mark_count;
	char marks_text[64];
};

#define RS_EXIT_FATAL 127 /* a step of the routine failed: the process is lost (as exec's own 127) */
#define RS_EXIT_MEASURE 126 /* RESIDENT_MEASURE could not write its exit at main */
#define RS_EXIT_STUB 9 /* bytes of the exit_group(0) written at main for RESIDENT_MEASURE */

/* The routine's section (routine.c, built apart); the linker defines its
 * bounds, and plan.c copies [__start, __stop) into the takeover mapping. */
#define RS_ROUTINE __attribute__((section("rs_restore")))
extern const char __start_rs_restore[] __attribute__((visibility("hidden")));
extern const char __stop_rs_restore[] __attribute__((visibility("hidden")));
RS_ROUTINE __attribute__((noreturn)) void rs_takeover(struct rs_args *a);

#endif
