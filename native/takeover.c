/*
 * takeover.c - the system-call half of the restore core: check the files an
 * image depends on, build the takeover mapping, and the position-independent
 * routine that replaces this process's address space with the snapshot.
 *
 * Until rs_start runs the routine nothing the program could notice has
 * changed (some fds are open, one mapping exists; rs_abandon undoes both).
 * After that there is no way back: a failing step prints
 * "resident: fatal PATH: STEP failed, errno N" and exits with 127. Every
 * condition a step depends on is checked beforehand (restore.c), so that
 * path exists for kernel surprises only.
 */
#include "restore.h"

/* ---- files ---- */

static int same_file(const struct rs_file *f, const struct rs_stat *st)
{
	return st->st_dev == f->dev && st->st_ino == f->ino && (rs_u64)st->st_size == f->size && (rs_i64)st->st_mtime_sec == f->mtime_sec &&
	       (rs_i64)st->st_mtime_nsec == f->mtime_nsec && (rs_i64)st->st_ctime_sec == f->ctime_sec &&
	       (rs_i64)st->st_ctime_nsec == f->ctime_nsec;
}

/* The words HookContract/Staleness.cs uses too (StalenessRuleTests). */
static const char *changed_reason(const struct rs_image *img, rs_u32 i, long r)
{
	int missing = r == -RS_ENOENT || r == -RS_ENOTDIR;
	if (i == 0)
		return "executable changed";
	if (img->files[i].flags == RS_FILE_MAPPED)
		return missing ? "library missing" : "library changed";
	return missing ? "file missing" : "file changed";
}

/* MAPPED files are opened (the routine maps them from these fds, which also
 * pins the very inode that was checked); STAMP files are only stat'ed. */
static int check_file(const struct rs_image *img, rs_u32 i, int *fd, struct rs_why *why)
{
	const struct rs_file *f = &img->files[i];
	const char *path = img->strings + f->path;
	struct rs_stat st;
	long r;
	*fd = -1;
	if (f->flags == RS_FILE_ABSENT) {
		r = rs_stat(path, &st);
		return r == -RS_ENOENT || r == -RS_ENOTDIR ? 1 : rs_refuse(why, "file appeared", path);
	}
	if (f->flags == RS_FILE_STAMP) {
		r = rs_stat(path, &st);
	} else {
		/* non-blocking: a FIFO put in a library's place fails same_file, it does not hang us */
		r = rs_openat(RS_AT_FDCWD, path, RS_O_RDONLY | RS_O_CLOEXEC | RS_O_NONBLOCK | RS_O_NOCTTY);
		if (r >= 0) {
			*fd = (int)r;
			r = rs_fstat(*fd, &st);
		}
	}
	if (r < 0 || !same_file(f, &st))
		return rs_refuse(why, changed_reason(img, i, r < 0 ? r : 0), path);
	return 1;
}

void rs_close_files(const int *fds, rs_u32 count)
{
	for (rs_u32 i = 0; i < count; i++)
		if (fds[i] >= 0)
			rs_close(fds[i]);
}

int rs_open_files(const struct rs_image *img, int *fds, struct rs_why *why)
{
	for (rs_u32 i = 0; i < img->file_count; i++)
		fds[i] = -1;
	for (rs_u32 i = 0; i < img->file_count; i++)
		if (!check_file(img, i, &fds[i], why)) {
			rs_close_files(fds, i + 1);
			return 0;
		}
	return 1;
}

int rs_check_rseq(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	if (!live->rseq_area != !h->rseq_addr) /* e.g. a seccomp filter refused this exec's rseq() */
		return rs_refuse(why, "rseq differs",
				 live->rseq_area ? "registered now, not at capture" : "registered at capture, not now");
	if (!live->rseq_area)
		return 1;
	if (rs_rseq(live->rseq_area, h->rseq_len, 0, h->rseq_sig) != -RS_EBUSY)
		return rs_refuse(why, "rseq differs", "this exec's registration is not the capture's length and signature");
	return 1;
}

/* ---- the takeover mapping ---- */

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
 *                   | struct rs_span  spans[]          |  prefault spans to populate
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

enum { RS_STEP_MUNMAP, RS_STEP_MREMAP, RS_STEP_MMAP, RS_STEP_MPROTECT, RS_STEP_SET_FS, RS_STEP_ROBUST, RS_STEP_RSEQ, RS_STEP_COUNT };

#define RS_LINE_MAX 4224 /* a path (4096) and the words around it */
#define RS_PATH_MAX 4096
#define RS_EXTRA_POKES 9 /* six auxv entries, canary, pointer guard, thread stack size */

#define RS_MARK_COUNT 7

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
	rs_u32 map_count, poke_count, fd_count, span_count;
	rs_u32 close_lo, close_hi; /* fds are exactly [lo, hi]; both 0 if not */

	/* thread state (image header) */
	rs_u64 fs_base, tid_address, robust_head, robust_len;
	rs_u64 rseq_addr, live_rseq; /* live_rseq: this exec's area, unregistered by rs_start */
	rs_u32 rseq_len, rseq_sig;

	/* resume */
	rs_u64 argc_addr; /* &argc of this exec: rsp after the final ret */
	rs_u64 resume_cont; /* pushed below argc, "returned" to */
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
	char step[RS_STEP_COUNT][32]; /* "mmap failed, errno " ... */

	/* debug 3: when each stage of the routine ended, appended to the line as
	 * microseconds from t0 (profiling the takeover without a tracer) */
	struct rs_timespec marks[RS_MARK_COUNT];
	rs_u32 mark_count;
	char marks_text[64];
};

/* The routine's section; the linker defines its bounds. */
#define RS_ROUTINE __attribute__((section("rs_restore")))
extern const char __start_rs_restore[] __attribute__((visibility("hidden")));
extern const char __stop_rs_restore[] __attribute__((visibility("hidden")));
RS_ROUTINE __attribute__((noreturn)) void rs_takeover(struct rs_args *a);

struct rs_layout {
	rs_u64 args_off, maps_off, pokes_off, fds_off, spans_off, bounce_off, total;
	rs_u64 span; /* the mapping's length: total, widened (see RS_FLUSH_SPAN) unless limits are tight */
	rs_u32 prot; /* the mapping's protection: W+X if the kernel allows (anon_map) and limits are not tight */
	int heap; /* prefault malloc's first heap (not when the limits leave no room for it) */
};

/* Unmapping or reprotecting a few populated pages makes the kernel flush
 * them from the TLB one by one; above 33 pages (x86's
 * tlb_single_page_flush_ceiling) it flushes everything once. Under this
 * machine's hypervisor the first costs ~10 us a page, the second ~15 us in
 * all (bench/vmcost.c). So the takeover mapping spans RS_FLUSH_SPAN pages
 * with its first and last page populated: its final munmap is one flush. */
#define RS_FLUSH_SPAN (40ull * RS_PAGE)

/* The vvar..vdso block at capture [start, end) and the live one's start. */
struct rs_block {
	rs_u64 start, end, live;
};

static void find_block(const struct rs_image *img, const struct rs_live *live, struct rs_block *b)
{
	b->start = ~0ull;
	b->end = 0;
	rs_u64 vdso = 0;
	for (int i = 0; i < RS_MAX_VDSO_VMAS; i++) {
		const struct rs_vdso_vma *v = &img->h->vdso_vmas[i];
		if (!v->kind)
			continue;
		b->start = v->start < b->start ? v->start : b->start;
		b->end = v->end > b->end ? v->end : b->end;
		vdso = v->kind == RS_VDSO_VDSO ? v->start : vdso;
	}
	/* Offsets inside the block are the kernel's, and the kernel is unchanged. */
	b->live = live->sysinfo_ehdr - (vdso - b->start);
}

#ifdef RS_HOSTED
int rs_test_no_vdso_map; /* core_test: plan as on a kernel without ARCH_MAP_VDSO_64 */
#endif

/* The kernel maps a vDSO only where none is mapped yet, so while this exec's
 * is there it answers EEXIST where it can (CONFIG_CHECKPOINT_RESTORE, as
 * CRIU's restorer uses it), EINVAL where it cannot. */
static int can_map_vdso(rs_u64 at)
{
#ifdef RS_HOSTED
	if (rs_test_no_vdso_map)
		return 0;
#endif
	return rs_arch_prctl(RS_ARCH_MAP_VDSO_64, at) == -RS_EEXIST;
}

/* Do the live and the capture vvar..vdso blocks overlap (but differ)? */
static int block_overlaps(const struct rs_block *b)
{
	rs_u64 len = b->end - b->start;
	return b->live != b->start && b->live < b->end && b->start < b->live + len;
}

static void plan_layout(const struct rs_image *img, rs_u64 block_len, struct rs_layout *l)
{
	rs_u64 off;
	l->args_off = rs_page_up((rs_u64)(__stop_rs_restore - __start_rs_restore));
	off = l->args_off + ((sizeof(struct rs_args) + 7) & ~7ul);
	l->maps_off = off;
	off += (rs_u64)img->region_count * sizeof(struct rs_map);
	l->pokes_off = off;
	off += ((rs_u64)img->patch_count + RS_EXTRA_POKES) * sizeof(struct rs_poke);
	l->fds_off = off;
	off += ((rs_u64)img->file_count + 1) * sizeof(int);
	l->spans_off = off = (off + 7) & ~7ull;
	off += (rs_u64)img->prefault_count * sizeof(struct rs_span);
	l->bounce_off = rs_page_up(off);
	l->total = l->bounce_off + block_len;
	l->span = l->total + RS_PAGE > RS_FLUSH_SPAN ? l->total + RS_PAGE : RS_FLUSH_SPAN;
	l->prot = RS_PROT_READ | RS_PROT_WRITE | RS_PROT_EXEC;
	l->heap = 1;
}

/*
 * ulimit -d and -v: what the process holds when the routine has mapped the
 * last region — every region, its own mapping, the kept stack and vvar..vdso
 * block, malloc's prefaulted first heap — must fit RLIMIT_AS, and what of it
 * is private and writable (the kernel's data_vm: writable regions, PATCHED
 * ones too as they are mapped writable first, the writable part of its own
 * mapping, the heap) RLIMIT_DATA; else an mmap half-way would fail after the
 * point of no return. A normal start maps the same regions; the takeover's
 * own mapping is the difference, so where it does not fit as it is, it is
 * made smaller (no widening, code R+X and not W+X), then the heap prefault is
 * left to malloc; if that does not fit either, the program starts normally.
 * The stack is counted as this exec's frames plus the kernel's first 128 KiB.
 */
static int limits_fit(const struct rs_image *img, const struct rs_live *live, const struct rs_layout *l, rs_u64 block_len)
{
	rs_u64 all = 0, data = 0, heap = l->heap ? img->h->heap_prefault : 0;
	for (rs_u32 i = 0; i < img->region_count; i++) {
		const struct rs_region *r = &img->regions[i];
		all += r->end - r->start;
		data += r->prot & RS_PROT_WRITE || r->flags & RS_RF_PATCHED ? r->end - r->start : 0;
	}
	rs_u64 self_data = l->prot & RS_PROT_EXEC ? l->span : l->span - l->args_off;
	rs_u64 stack = live->stack_end - rs_page_down(live->sp) + (128ull << 10);
	return data + self_data + heap <= live->rlimit_data && all + l->span + stack + block_len + heap <= live->rlimit_as;
}

static int fit_limits(const struct rs_image *img, const struct rs_live *live, struct rs_layout *l, rs_u64 block_len)
{
	if (limits_fit(img, live, l, block_len))
		return 1;
	l->span = l->total;
	l->prot = RS_PROT_READ | RS_PROT_WRITE;
	if (limits_fit(img, live, l, block_len))
		return 1;
	l->heap = 0;
	return limits_fit(img, live, l, block_len);
}

static int overlaps(rs_u64 a, rs_u64 len, const struct rs_range *r) { return a < r->end && r->start < a + len; }

/* Would [a, a + len) collide with the snapshot or a kept range? */
static int spot_taken(const struct rs_image *img, rs_u64 a, rs_u64 len, const struct rs_range *avoid, int n)
{
	if (a < 0x10000 || a > RS_TASK_SIZE - len)
		return 1;
	for (int i = 0; i < n; i++)
		if (overlaps(a, len, &avoid[i]))
			return 1;
	for (rs_u32 i = 0; i < img->region_count; i++) {
		struct rs_range r = {img->regions[i].start, img->regions[i].end};
		if (overlaps(a, len, &r))
			return 1;
	}
	return 0;
}

/* Populate what the takeover writes at once (code, arguments, bounce area)
 * and the last page, which widens the final munmap's flush (RS_FLUSH_SPAN). */
static rs_u64 populated(rs_u64 a, rs_u64 total, rs_u64 span)
{
	rs_madvise(a, total, RS_MADV_POPULATE_WRITE);
	rs_madvise(a + span - RS_PAGE, RS_PAGE, RS_MADV_POPULATE_WRITE);
	return a;
}

/* The mapping is made writable and executable at once: the routine is
 * copied in and run without an mprotect, whose TLB flush and refault of the
 * code page cost ~30 us here (docs/benchmarks.md). It exists only while
 * ld.so and this hook run, before any code of the program, and the
 * routine's last system call unmaps it. A kernel that refuses W+X memory
 * (SELinux execmem, PaX) gets R+W and, after the copy, an mprotect to R+X. */
static long anon_map(rs_u64 a, rs_u64 len, int flags, rs_u32 *prot)
{
	flags |= RS_MAP_PRIVATE | RS_MAP_ANONYMOUS;
	long r = rs_mmap(a, len, (int)*prot, flags, -1, 0);
	if ((r == -RS_EACCES || r == -RS_EPERM) && (*prot & RS_PROT_EXEC)) {
		*prot = RS_PROT_READ | RS_PROT_WRITE;
		r = rs_mmap(a, len, (int)*prot, flags, -1, 0);
	}
	return r;
}

/* A kernel before 4.17 takes MAP_FIXED_NOREPLACE for a hint: a free spot is
 * honoured, an occupied one not (undone here). */
static rs_u64 map_at(rs_u64 a, rs_u64 len, rs_u32 *prot)
{
	long r = anon_map(a, len, RS_MAP_FIXED_NOREPLACE, prot);
	if ((rs_u64)r == a)
		return a;
	if (!rs_failed(r))
		rs_munmap((rs_u64)r, len);
	return 0;
}

/* Where the takeover mapping goes. First right above the live stack: then
 * everything the takeover unmaps below the vdso block (the executable, this
 * hook, ld.so's early allocations) is one munmap, whose pages span far more
 * than 33 and so cost one TLB flush, where a few hook pages between this
 * mapping and the vdso cost one each. Else where the kernel would put it,
 * next to the live ld.so (page tables exist there), else in the gaps just
 * below each snapshot region or above the last one. Never on the snapshot
 * or a kept range; MAP_FIXED_NOREPLACE refuses spots live mappings use. */
static rs_u64 place_mapping(const struct rs_image *img, struct rs_layout *l, rs_u64 stack_end, const struct rs_range *avoid, int n)
{
	const rs_u64 gap = 0x10000, len = l->span;
	if (!spot_taken(img, stack_end, len, avoid, n) && map_at(stack_end, len, &l->prot))
		return populated(stack_end, l->total, len);
	long r = anon_map(0, len, 0, &l->prot);
	if (!rs_failed(r) && !spot_taken(img, (rs_u64)r, len, avoid, n))
		return populated((rs_u64)r, l->total, len);
	if (!rs_failed(r))
		rs_munmap((rs_u64)r, len);
	int tries = 0;
	for (rs_u32 i = 0; img->region_count && i <= img->region_count && tries < 16; i++) {
		rs_u64 a = i < img->region_count ? img->regions[i].start - len - gap : img->regions[i - 1].end + gap;
		if (i < img->region_count && img->regions[i].start < len + gap)
			continue;
		if (spot_taken(img, a, len, avoid, n))
			continue;
		tries++;
		if (map_at(a, len, &l->prot))
			return populated(a, l->total, len);
	}
	return 0;
}

/* ---- filling the arguments ---- */

/* Prefault at mmap time what the program is about to touch anyway: a page
 * fault costs ~9 us here, populating a page a fraction of that, but every
 * populated page costs at mmap, in memory and again at exit. So:
 * - code (a file's executable segments) and RELRO from the image, up to
 *   RS_POPULATE_SHARED_MAX each: shared page cache, no copy;
 * - not a file's other read-only segments: the first holds the ELF headers
 *   and linking tables (ld.so's work, done by now), the last .rodata and
 *   .eh_frame, read sparsely;
 * - writable and zero regions (private copies) up to RS_POPULATE_PRIVATE_MAX
 *   in all, in address order: a program with megabytes of relocated tables
 *   it may never read maps the rest lazily.
 * Bigger regions (libLLVM's 40 MB of code, 8 MB of RELRO) are left to the
 * kernel's fault-around. The measurements behind each rule are in
 * docs/benchmarks.md. */
#ifndef RS_POPULATE_SHARED_MAX
#define RS_POPULATE_SHARED_MAX (4ull << 20)
#endif
#define RS_POPULATE_PRIVATE_MAX (1ull << 20)

static int populate(const struct rs_region *r, rs_u32 prot, rs_u64 *private_left)
{
	rs_u64 len = r->end - r->start;
	/* Of a file's read-only segments only code: the first one holds the ELF
	 * headers and the dynamic linking tables (.dynsym, .rela.dyn: ld.so's
	 * work, done by now), the last .rodata and .eh_frame, read sparsely. */
	if (r->kind == RS_REGION_FILE && prot == RS_PROT_READ)
		return 0;
	if (!(prot & RS_PROT_WRITE))
		return len <= RS_POPULATE_SHARED_MAX;
	if (r->kind == RS_REGION_FILE || len > *private_left)
		return 0;
	*private_left -= len;
	return 1;
}

static void fill_maps(struct rs_args *a, const struct rs_image *img, const int *fds, int image_fd)
{
	rs_u64 private_left = RS_POPULATE_PRIVATE_MAX;
	for (rs_u32 i = 0; i < img->region_count; i++) {
		const struct rs_region *r = &img->regions[i];
		struct rs_map *m = &a->maps[i];
		m->start = r->start;
		m->len = r->end - r->start;
		m->offset = r->kind == RS_REGION_ZERO ? 0 : r->offset;
		m->final_prot = r->prot;
		m->prot = r->prot | (r->flags & RS_RF_PATCHED ? RS_PROT_WRITE : 0);
		m->fd = r->kind == RS_REGION_FILE ? fds[r->file] : r->kind == RS_REGION_IMAGE ? image_fd : -1;
		m->flags = RS_MAP_PRIVATE | RS_MAP_FIXED_NOREPLACE | (m->fd < 0 ? RS_MAP_ANONYMOUS : 0) |
			   (populate(r, m->prot, &private_left) ? RS_MAP_POPULATE : 0);
	}
	a->map_count = img->region_count;
}

/* The image's prefault spans (pages the constructors touched at capture) in
 * regions that are not populated whole: the rest of libLLVM's 97 MB of code,
 * say, stays lazy. Spans and regions are both sorted. */
static void fill_spans(struct rs_args *a, const struct rs_image *img)
{
	rs_u32 r = 0;
	a->span_count = 0;
	for (rs_u32 i = 0; i < img->prefault_count; i++) {
		const struct rs_span *s = &img->prefault[i];
		while (r < img->region_count && img->regions[r].end <= s->start)
			r++;
		if (r < img->region_count && !(a->maps[r].flags & RS_MAP_POPULATE))
			a->spans[a->span_count++] = *s;
	}
}

static void add_poke(struct rs_args *a, rs_u64 addr, rs_u64 value)
{
	a->pokes[a->poke_count].addr = addr;
	a->pokes[a->poke_count].value = value;
	a->poke_count++;
}

/* The auxv entries that describe the loaded program: the snapshot's values,
 * so getauxval() agrees with the restored address space. */
static void poke_auxv(struct rs_args *a, const struct rs_image *img, const struct rs_live *live)
{
	const struct rs_header *h = img->h;
	int done = 0;
	for (rs_u64 *v = live->auxv; v[0] != AT_NULL && done < 6; v += 2) {
		rs_u64 want;
		switch (v[0]) {
		case AT_PHDR:
			want = h->at_phdr;
			break;
		case AT_PHENT:
			want = h->at_phent;
			break;
		case AT_PHNUM:
			want = h->at_phnum;
			break;
		case AT_ENTRY:
			want = h->at_entry;
			break;
		case AT_BASE:
			want = h->at_base;
			break;
		case AT_SYSINFO_EHDR:
			want = h->at_sysinfo_ehdr;
			break;
		default:
			continue;
		}
		done++;
		if (v[1] != want)
			add_poke(a, (rs_uptr)&v[1], want);
	}
}

/* Canary and pointer guard as glibc derives them from AT_RANDOM (the canary's
 * low byte zeroed), so they are fresh per exec instead of frozen in the image. */
static void poke_guards(struct rs_args *a, const struct rs_image *img, const struct rs_live *live)
{
	const rs_u8 *rnd = 0;
	for (rs_u64 *v = live->auxv; v[0] != AT_NULL; v += 2)
		if (v[0] == AT_RANDOM)
			rnd = (const rs_u8 *)v[1];
	rs_u64 canary = 0, guard = 0;
	for (int i = 7; i >= 0; i--) {
		canary = canary << 8 | rnd[i];
		guard = guard << 8 | rnd[8 + i];
	}
	add_poke(a, img->h->fs_base + 0x28, canary & ~0xfful);
	add_poke(a, img->h->fs_base + 0x30, guard);
}

static void fill_pokes(struct rs_args *a, const struct rs_image *img, const struct rs_live *live)
{
	rs_u64 base;
	a->poke_count = 0;
	for (rs_u32 i = 0; i < img->patch_count; i++) {
		const struct rs_patch *p = &img->patches[i];
		rs_patch_base(img, live, p, &base); /* resolvable: rs_check_live */
		add_poke(a, p->addr, base + (rs_u64)p->delta);
	}
	poke_auxv(a, img, live);
	poke_guards(a, img, live);
	/* glibc's default thread stack size is the soft stack limit, page-aligned */
	if (live->rlimit_stack != img->h->rlimit_stack && rs_stacksize_patchable(img, live))
		add_poke(a, img->h->stacksize_word, rs_page_up(live->rlimit_stack));
}

/* Unmap everything but the kept ranges (sorted here; they may touch). */
static void fill_unmaps(struct rs_args *a, struct rs_range keep[3])
{
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (keep[j].start < keep[i].start) {
				struct rs_range t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	rs_u64 cursor = 0;
	a->unmap_count = 0;
	for (int i = 0; i <= 3; i++) {
		rs_u64 stop = i < 3 ? keep[i].start : RS_TASK_SIZE;
		if (stop > cursor)
			a->unmaps[a->unmap_count++] = (struct rs_range){cursor, stop};
		if (i < 3 && keep[i].end > cursor)
			cursor = keep[i].end;
	}
}

/* Each vvar/vdso VMA goes back to its capture address. If the live and the
 * capture block overlap, a direct move would unmap a VMA not yet moved, so
 * all go to the spare bounce area first. */
static void plan_moves(struct rs_args *a, const struct rs_image *img, const struct rs_block *b, rs_u64 bounce)
{
	int via = block_overlaps(b);
	a->move_count = 0;
	if (b->live == b->start)
		return;
	for (int pass = via ? 0 : 1; pass < 2; pass++)
		for (int i = 0; i < RS_MAX_VDSO_VMAS; i++) {
			const struct rs_vdso_vma *v = &img->h->vdso_vmas[i];
			if (!v->kind)
				continue;
			rs_u64 off = v->start - b->start;
			struct rs_move *m = &a->moves[a->move_count++];
			m->from = (pass == 1 && via ? bounce : b->live) + off;
			m->len = v->end - v->start;
			m->to = pass == 0 ? bounce + off : v->start;
		}
}

/* Arrays, not pointers: no relocations, so no RELRO segment in the .so. */
static const char step_text[RS_STEP_COUNT][32] = {
    "munmap failed, errno ",	 "mremap failed, errno ",	   "mmap failed, errno ", "mprotect failed, errno ",
    "arch_prctl failed, errno ", "set_robust_list failed, errno ", "rseq failed, errno ",
};

static rs_u32 put_text(char *to, rs_u32 at, rs_u32 cap, const char *s)
{
	while (*s && at < cap)
		to[at++] = *s++;
	return at;
}

/* Paths are cut at RS_PATH_MAX so the routine always has room to append. */
static void fill_texts(struct rs_args *a, const struct rs_texts *t)
{
	rs_u32 n;
	a->debug = t->debug;
	a->t0 = t->t0;
	n = put_text(a->line, 0, RS_LINE_MAX, "resident: restored ");
	n = put_text(a->line, n, n + RS_PATH_MAX, t->path);
	a->line_len = put_text(a->line, n, RS_LINE_MAX - 32, t->debug >= 2 ? " (takeover " : "\n");
	put_text(a->tail, 0, sizeof a->tail - 1, " us)\n");
	put_text(a->marks_text, 0, sizeof a->marks_text - 1, " us: start/unmap/vdso/map/patch/thread/close");
	a->mark_count = 0;
	n = put_text(a->fatal, 0, RS_LINE_MAX, "resident: fatal ");
	n = put_text(a->fatal, n, n + RS_PATH_MAX, t->path);
	a->fatal_len = put_text(a->fatal, n, RS_LINE_MAX - 64, ": ");
	for (int i = 0; i < RS_STEP_COUNT; i++)
		put_text(a->step[i], 0, sizeof a->step[i] - 1, step_text[i]);
}

static void fill_state(struct rs_args *a, const struct rs_image *img, const struct rs_live *live)
{
	const struct rs_header *h = img->h;
	a->fs_base = h->fs_base;
	a->tid_address = h->tid_address;
	a->robust_head = h->robust_head;
	a->robust_len = h->robust_len;
	a->rseq_addr = h->rseq_addr;
	a->rseq_len = h->rseq_len;
	a->rseq_sig = h->rseq_sig;
	a->live_rseq = live->rseq_area;
	a->argc_addr = (rs_uptr)live->argv - 8;
	a->resume_cont = h->resume_cont;
	a->user_entry = h->user_entry;
	a->gadget = h->ldso_base + h->syscall_ret_off;
	a->heap_word = h->heap_word;
	a->heap_prefault = h->heap_prefault;
}

static rs_u64 live_aux(const struct rs_live *live, rs_u64 type)
{
	for (const rs_u64 *v = live->auxv; v[0] != AT_NULL; v += 2)
		if (v[0] == type)
			return v[1];
	return 0;
}

/* The end of N NUL-terminated strings laid out one after the other from P
 * (the kernel's argument and environment areas). */
static rs_u64 strings_end(const char *p, rs_u64 n)
{
	while (n--)
		p += rs_strlen(p) + 1;
	return (rs_uptr)p;
}

/* Room a heap moved next to the snapshot's executable must find free. */
#define RS_HEAP_ROOM (1ull << 20)

/* Where the brk heap starts: next to the snapshot's executable, as in a
 * normal start, at the distance the kernel put this exec's break from this
 * exec's executable (its random brk offset: fresh per exec as before). Where
 * that spot is not free, or the break was moved already, it stays put. */
static rs_u64 heap_base(const struct rs_image *img, const struct rs_live *live, rs_u64 brk, const struct rs_range *avoid, int n)
{
	const struct rs_header *h = img->h;
	rs_u64 exe_end = live_aux(live, AT_PHDR) + (h->mm_brk_base - h->at_phdr); /* same file, same offsets */
	if (brk < exe_end || brk - exe_end > (1ull << 32))
		return brk;
	rs_u64 base = h->mm_brk_base + (brk - exe_end);
	return spot_taken(img, base, RS_HEAP_ROOM, avoid, n) ? brk : base;
}

/* What the kernel will report of the restored process (PR_SET_MM_MAP): the
 * snapshot's executable and heap, this exec's stack, arguments and auxv
 * (patched by then). The brk is read here, before anything moves it. */
static void fill_mm(struct rs_args *a, const struct rs_image *img, const struct rs_live *live, const struct rs_range *avoid, int n)
{
	const struct rs_header *h = img->h;
	struct rs_mm_map *m = &a->mm;
	long brk = rs_brk(0);
	if (!h->mm_start_code || !live->argc || rs_failed(brk))
		return;
	m->start_code = h->mm_start_code;
	m->end_code = h->mm_end_code;
	m->start_data = h->mm_start_data;
	m->end_data = h->mm_end_data;
	m->start_brk = m->brk = heap_base(img, live, (rs_u64)brk, avoid, n);
	m->start_stack = (rs_uptr)live->argv - 8;
	m->arg_start = (rs_uptr)live->argv[0];
	m->arg_end = m->env_start = strings_end(live->argv[0], live->argc);
	m->env_end = strings_end((const char *)m->env_start, live->env_count);
	m->auxv = (rs_uptr)live->auxv;
	rs_u64 pairs = 1;
	while (live->auxv[2 * (pairs - 1)] != AT_NULL)
		pairs++;
	m->auxv_size = (rs_u32)(pairs * 16);
	m->exe_fd = ~0u;
}

/* The fds were the lowest free numbers when opened, so they are usually one
 * run [lo, hi] with no fd of the program's in between: then one close_range
 * does. Otherwise, under a seccomp filter (which might not know the call) or
 * on a kernel without it (before 5.9) they are closed one by one. */
static void fill_fds(struct rs_args *a, const struct rs_image *img, const struct rs_live *live, const int *fds, int image_fd)
{
	int lo = image_fd, hi = image_fd;
	a->fd_count = 0;
	for (rs_u32 i = 0; i < img->file_count; i++)
		if (fds[i] >= 0) {
			a->fds[a->fd_count++] = fds[i];
			lo = fds[i] < lo ? fds[i] : lo;
			hi = fds[i] > hi ? fds[i] : hi;
		}
	a->fds[a->fd_count++] = image_fd;
	a->close_lo = a->close_hi = 0;
	if (!live->filtered && (rs_u32)(hi - lo) + 1 == a->fd_count) {
		a->close_lo = (rs_u32)lo;
		a->close_hi = (rs_u32)hi;
	}
}

/* The anonymous mapping is zero-filled, so only set fields need writing. */
static void fill_args(struct rs_args *a, const struct rs_layout *l, const struct rs_image *img, const struct rs_live *live, const int *fds,
		      int image_fd, const struct rs_texts *t)
{
	rs_u8 *self = (rs_u8 *)a - l->args_off;
	a->self = (rs_uptr)self;
	a->self_len = l->span;
	a->entry_off = (rs_u64)((const char *)rs_takeover - __start_rs_restore);
	a->maps = (struct rs_map *)(self + l->maps_off);
	a->pokes = (struct rs_poke *)(self + l->pokes_off);
	a->fds = (int *)(self + l->fds_off);
	a->spans = (struct rs_span *)(self + l->spans_off);
	fill_maps(a, img, fds, image_fd);
	fill_spans(a, img);
	fill_pokes(a, img, live);
	fill_fds(a, img, live, fds, image_fd);
	fill_state(a, img, live);
	fill_texts(a, t);
}

/* ADDR if it lies in the executable's code (room for the exit stub), else 0. */
static rs_u64 in_code_of_executable(const struct rs_image *img, rs_u64 addr)
{
	for (rs_u32 i = 0; i < img->region_count; i++) {
		const struct rs_region *r = &img->regions[i];
		if (r->kind == RS_REGION_FILE && r->file == 0 && r->prot & RS_PROT_EXEC && addr >= r->start && addr + 16 <= r->end)
			return addr;
	}
	return 0;
}

struct rs_args *rs_prepare(const struct rs_image *img, const struct rs_live *live, const int *fds, int image_fd,
			   const struct rs_texts *texts, struct rs_why *why)
{
	struct rs_block b;
	struct rs_layout l;
	rs_u64 lo, hi;
	rs_u64 end_at = texts->end_at ? in_code_of_executable(img, img->h->at_phdr - RS_EHDR_SIZE + texts->end_at) : 0;
	if (texts->end_at && !end_at) {
		rs_refuse(why, "main not in the executable's code", "RESIDENT_MEASURE would let main run");
		return 0;
	}
	find_block(img, live, &b);
	int remap = b.live != b.start && can_map_vdso(b.start);
	plan_layout(img, !remap && block_overlaps(&b) ? b.end - b.start : 0, &l);
	if (!fit_limits(img, live, &l, b.end - b.start)) {
		rs_refuse(why, "resource limits", "RLIMIT_DATA or RLIMIT_AS leave no room for the takeover");
		return 0;
	}
	rs_stack_zone(live, &lo, &hi);
	struct rs_range avoid[3] = {{b.start, b.end}, {b.live, b.live + (b.end - b.start)}, {lo, hi}};
	rs_u64 self = place_mapping(img, &l, live->stack_end, avoid, 3);
	if (!self) {
		rs_refuse(why, "address conflict", "no room for the takeover routine");
		return 0;
	}
	struct rs_args *a = (struct rs_args *)(self + l.args_off);
	rs_copy((void *)self, __start_rs_restore, (rs_u64)(__stop_rs_restore - __start_rs_restore));
	fill_args(a, &l, img, live, fds, image_fd, texts);
	if (!l.heap)
		a->heap_prefault = 0;
	a->end_at = end_at;
	struct rs_range taken[4] = {avoid[0], avoid[1], avoid[2], {self, self + l.span}};
	fill_mm(a, img, live, taken, 4);
	if (remap)
		a->vdso_map = b.start;
	else
		plan_moves(a, img, &b, self + l.bounce_off);
	/* Keep the stack from a margin below the current frames to its end, and
	 * the live vvar..vdso block unless a new one is mapped (then the stack
	 * twice: nothing more is kept). */
	struct rs_range stack = {rs_page_down(live->sp) - 0x10000, live->stack_end};
	struct rs_range keep[3] = {{self, self + l.span}, stack, remap ? stack : (struct rs_range){b.live, b.live + (b.end - b.start)}};
	fill_unmaps(a, keep);
	if (!(l.prot & RS_PROT_EXEC) && rs_failed(rs_mprotect(self, l.args_off, RS_PROT_READ | RS_PROT_EXEC))) {
		rs_munmap(self, l.span);
		rs_refuse(why, "mprotect failed", 0);
		return 0;
	}
	return a;
}

void rs_abandon(struct rs_args *a) { rs_munmap(a->self, a->self_len); }

int rs_start(struct rs_args *a, struct rs_why *why)
{
	/* The kernel writes to a registered rseq area on every preemption; this
	 * exec's area is about to be unmapped, so it must go first. */
	if (a->live_rseq && rs_failed(rs_rseq(a->live_rseq, a->rseq_len, RS_RSEQ_FLAG_UNREGISTER, a->rseq_sig)))
		return rs_refuse(why, "rseq differs", 0);
	void (*routine)(struct rs_args *) = (void (*)(struct rs_args *))(a->self + a->entry_off);
	routine(a);
	return 0;
}

/*
 * ---- the routine ----
 *
 * Runs from its copy in the takeover mapping, on the live stack. May use:
 * its own section (relative calls), *a, the stack, the always-inline
 * wrappers of sys.h. May not use: anything else (globals, string constants,
 * jump tables: all outside the copy and soon unmapped), the stack protector
 * (the canary moves under it), or %fs after ARCH_SET_FS.
 * `make check` verifies the section has no rip-relative reference and no
 * call or jump out of it.
 */

RS_ROUTINE static rs_u32 put_decimal(char *to, rs_u64 v)
{
	char digits[20];
	rs_u32 n = 0, i = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		to[i++] = digits[--n];
	return i;
}

RS_ROUTINE static void mark(struct rs_args *a)
{
	if (a->debug >= 3 && a->mark_count < RS_MARK_COUNT)
		rs_clock_gettime(RS_CLOCK_MONOTONIC, &a->marks[a->mark_count++]);
}

RS_ROUTINE static rs_u64 micros_since(const struct rs_timespec *t0, const struct rs_timespec *t)
{
	long us = (t->tv_sec - t0->tv_sec) * 1000000 + (t->tv_nsec - t0->tv_nsec) / 1000;
	return us > 0 ? (rs_u64)us : 0;
}

/* " [A/B/.../G us: start/unmap/...]": when each stage ended, from t0. */
RS_ROUTINE static rs_u32 put_marks(struct rs_args *a, rs_u32 n)
{
	a->line[n++] = ' ';
	a->line[n++] = '[';
	for (rs_u32 i = 0; i < a->mark_count; i++) {
		if (i)
			a->line[n++] = '/';
		n += put_decimal(a->line + n, micros_since(&a->t0, &a->marks[i]));
	}
	for (const char *s = a->marks_text; *s; s++)
		a->line[n++] = *s;
	a->line[n++] = ']';
	return n;
}

RS_ROUTINE __attribute__((noreturn)) static void fail(struct rs_args *a, int step, long r)
{
	rs_u32 n = a->fatal_len;
	for (const char *s = a->step[step]; *s; s++)
		a->fatal[n++] = *s;
	n += put_decimal(a->fatal + n, rs_failed(r) ? (rs_u64)-r : 0);
	a->fatal[n++] = '\n';
	rs_write(2, a->fatal, n);
	rs_exit_group(127);
}

RS_ROUTINE static void unmap_rest(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->unmap_count; i++) {
		long r = rs_munmap(a->unmaps[i].start, a->unmaps[i].end - a->unmaps[i].start);
		if (r)
			fail(a, RS_STEP_MUNMAP, r);
	}
}

/* The vvar..vdso block back at its capture addresses: a new one mapped
 * there (the live one went with the rest: one TLB flush for all), or each
 * VMA moved with mremap, each flushed page by page. */
RS_ROUTINE static void move_vdso(struct rs_args *a)
{
	if (a->vdso_map) { /* the size of the vDSO on success */
		long r = rs_arch_prctl(RS_ARCH_MAP_VDSO_64, a->vdso_map);
		if (rs_failed(r))
			fail(a, RS_STEP_MREMAP, r);
	}
	for (rs_u32 i = 0; i < a->move_count; i++) {
		const struct rs_move *m = &a->moves[i];
		long r = rs_mremap(m->from, m->len, m->to);
		if ((rs_u64)r != m->to)
			fail(a, RS_STEP_MREMAP, r);
	}
}

/* mov $231,%eax; xor %edi,%edi; syscall: exit_group(0) */
#define RS_EXIT_STUB 9
RS_ROUTINE static void write_exit(rs_u64 at)
{
	rs_u64 page = at & ~(rs_u64)(RS_PAGE - 1), len = rs_page_up(at + RS_EXIT_STUB) - page;
	if (rs_failed(rs_mprotect(page, len, RS_PROT_READ | RS_PROT_WRITE)))
		rs_exit_group(126);
	volatile rs_u8 *p = (volatile rs_u8 *)at;
	p[0] = 0xb8, p[1] = 0xe7, p[2] = 0, p[3] = 0, p[4] = 0, p[5] = 0x31, p[6] = 0xff, p[7] = 0x0f, p[8] = 0x05;
	rs_mprotect(page, len, RS_PROT_READ | RS_PROT_EXEC);
}

void rs_end_at(rs_u64 addr) { write_exit(addr); }

/* MAP_FIXED_NOREPLACE guards against a mapping the checks missed. A kernel
 * that refuses the flag (EINVAL: a filter, an emulator) gets MAP_FIXED, as
 * safe here: every range but the kept ones is unmapped by now, and no region
 * overlaps those (restore.c). One before 4.17 takes the flag for a hint,
 * which a free range honours. */
RS_ROUTINE static void map_regions(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->map_count; i++) {
		const struct rs_map *m = &a->maps[i];
		long r = rs_mmap(m->start, m->len, (int)m->prot, (int)m->flags, m->fd, m->offset);
		if (r == -RS_EINVAL)
			r = rs_mmap(m->start, m->len, (int)m->prot, (int)((m->flags & ~RS_MAP_FIXED_NOREPLACE) | RS_MAP_FIXED), m->fd,
				    m->offset);
		if ((rs_u64)r != m->start)
			fail(a, RS_STEP_MMAP, r);
	}
}

/* Advice only: a kernel without MADV_POPULATE_READ (before 5.14) faults the
 * pages in later, as a normal start does. */
RS_ROUTINE static void prefault_spans(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->span_count; i++)
		rs_madvise(a->spans[i].start, a->spans[i].end - a->spans[i].start, RS_MADV_POPULATE_READ);
}

/* Tell the kernel the restored layout, so that /proc/PID/auxv and stat, gdb,
 * ltrace and core dumps see it: the auxv as patched, the snapshot's
 * executable and heap. No privilege is needed without a new exe_fd. A kernel
 * without CONFIG_CHECKPOINT_RESTORE refuses it: the program runs the same,
 * only tools see the layout of the exec. */
RS_ROUTINE static void set_mm(struct rs_args *a)
{
	if (a->mm.start_code)
		rs_prctl(RS_PR_SET_MM, RS_PR_SET_MM_MAP, (rs_uptr)&a->mm, sizeof a->mm);
}

/* malloc's first sbrk would fault in its new pages one by one (several
 * microseconds each here); one madvise populates them. The break moves up
 * now and libc's __curbrk, still 0 in the snapshot, is set to where it was,
 * so that sbrk hands out exactly these pages: glibc's first extension for a
 * small request is top_pad (128 KiB) + a page, which heap_prefault matches.
 * A larger first sbrk extends further, a smaller one shrinks the break back.
 * If the break cannot move or libc's word is not 0, nothing changes. */
RS_ROUTINE static void prefault_heap(struct rs_args *a)
{
	if (!a->heap_prefault || *(volatile rs_u64 *)a->heap_word)
		return;
	long cur = rs_brk(0);
	if (rs_failed(cur) || cur % RS_PAGE || rs_brk((rs_u64)cur + a->heap_prefault) != cur + (long)a->heap_prefault)
		return;
	*(volatile rs_u64 *)a->heap_word = (rs_u64)cur;
	rs_madvise((rs_u64)cur, a->heap_prefault, RS_MADV_POPULATE_WRITE); /* before 5.14: faults later, as normal */
}

RS_ROUTINE static void apply_pokes(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->poke_count; i++)
		*(volatile rs_u64 *)a->pokes[i].addr = a->pokes[i].value;
}

RS_ROUTINE static void protect_patched(struct rs_args *a)
{
	for (rs_u32 i = 0; i < a->map_count; i++) {
		const struct rs_map *m = &a->maps[i];
		if (m->prot == m->final_prot)
			continue;
		long r = rs_mprotect(m->start, m->len, (int)m->final_prot);
		if (r)
			fail(a, RS_STEP_MPROTECT, r);
	}
}

/* The kernel-side thread state ld.so set up at capture (DESIGN.md): without
 * the tid store, raise() and recursive mutexes would use a stale tid. */
RS_ROUTINE static void set_thread(struct rs_args *a)
{
	long r = rs_arch_prctl(RS_ARCH_SET_FS, a->fs_base);
	if (r)
		fail(a, RS_STEP_SET_FS, r);
	if (a->tid_address) /* before glibc 2.34, libpthread's initialiser sets it, after the restore */
		*(volatile int *)a->tid_address = (int)rs_set_tid_address(a->tid_address);
	if (a->robust_head && (r = rs_set_robust_list(a->robust_head, a->robust_len)))
		fail(a, RS_STEP_ROBUST, r);
	if (a->rseq_addr && (r = rs_rseq(a->rseq_addr, a->rseq_len, 0, a->rseq_sig)))
		fail(a, RS_STEP_RSEQ, r);
}

RS_ROUTINE static void finish(struct rs_args *a)
{
	if (!a->close_hi || rs_close_range(a->close_lo, a->close_hi))
		for (rs_u32 i = 0; i < a->fd_count; i++)
			rs_close(a->fds[i]);
	mark(a);
	if (!a->debug)
		return;
	rs_u32 n = a->line_len;
	if (a->debug >= 2) {
		struct rs_timespec now;
		rs_clock_gettime(RS_CLOCK_MONOTONIC, &now);
		n += put_decimal(a->line + n, micros_since(&a->t0, &now));
		if (a->debug >= 3)
			n = put_marks(a, n);
		for (const char *s = a->tail; *s; s++)
			a->line[n++] = *s;
	}
	rs_write(2, a->line, n);
}

/* Return into the restored ld.so as if _dl_start had just returned there:
 * rsp = &argc - 8 holding the continuation after "mov %rax,%r12", r12 = the
 * user entry, rbp = 0. The jump goes through "syscall; ret" in ld.so's text
 * with munmap(self) loaded, so this mapping is gone before the ret. */
RS_ROUTINE __attribute__((noreturn)) static void resume(struct rs_args *a)
{
	rs_u64 *sp = (rs_u64 *)(a->argc_addr - 8);
	*sp = a->resume_cont;
	register rs_u64 r12 __asm__("r12") = a->user_entry;
	register rs_u64 rbp __asm__("rbp") = 0;
	register rs_u64 rax __asm__("rax") = __NR_munmap;
	register rs_u64 rdi __asm__("rdi") = a->self;
	register rs_u64 rsi __asm__("rsi") = a->self_len;
	__asm__ volatile("mov %[sp], %%rsp\n\tjmp *%[gadget]"
			 :
			 : [sp] "r"(sp), [gadget] "r"(a->gadget), "r"(r12), "r"(rbp), "r"(rax), "r"(rdi), "r"(rsi)
			 : "memory");
	__builtin_unreachable();
}

RS_ROUTINE __attribute__((noreturn, used)) void rs_takeover(struct rs_args *a)
{
	mark(a);
	unmap_rest(a);
	mark(a);
	move_vdso(a);
	mark(a);
	map_regions(a);
	if (a->end_at)
		write_exit(a->end_at);
	prefault_spans(a);
	mark(a);
	apply_pokes(a);
	set_mm(a);
	prefault_heap(a);
	protect_patched(a);
	mark(a);
	set_thread(a);
	mark(a);
	finish(a);
	resume(a);
}
