/*
 * plan.c - stage 2, second half: build the takeover mapping (takeover.h)
 * where the snapshot is not, fill in everything the routine will do, and
 * start it (rs_start). Until the routine runs nothing the program could
 * notice has changed: one mapping exists, and rs_abandon undoes it.
 */
#include "takeover.h"

#define RS_MMAP_MIN_ADDR 0x10000 /* vm.mmap_min_addr's default: nothing is placed below */
#define RS_PLACE_GAP 0x10000 /* between the takeover mapping and a snapshot region it is placed next to */
#define RS_PLACE_TRIES 16 /* spots next to snapshot regions tried before giving up */
#define RS_STACK_FIRST (128ull << 10) /* the stack the kernel sets up for an exec, at least */
#define RS_STACK_MARGIN 0x10000 /* kept below the hook's frames: the routine's own */
#define RS_BRK_MAX_OFFSET (1ull << 32) /* farther from the executable, the break was moved: leave it */

/* Pokes besides the image's patches: poke_auxv's six auxv entries, the
 * canary, the pointer guard, glibc's default thread stack size. */
#define RS_EXTRA_POKES 9

struct rs_layout {
	rs_u64 args_off, maps_off, pokes_off, fds_off, spans_off, kcalls_off, bounce_off, total;
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

/* In place (an exported file): the routine runs from the stub's text and its
 * arguments lie in memory the stub provides (live->plan_buf), no code first. */
static void plan_layout(const struct rs_image *img, rs_u64 block_len, struct rs_layout *l, int in_place)
{
	rs_u64 off;
	l->args_off = in_place ? 0 : rs_page_up((rs_u64)(__stop_rs_restore - __start_rs_restore));
	off = l->args_off + ((sizeof(struct rs_args) + 7) & ~7ul);
	l->maps_off = off;
	off += (rs_u64)img->region_count * sizeof(struct rs_map);
	l->pokes_off = off;
	off += ((rs_u64)img->patch_count + img->frame_len / 8 + RS_EXTRA_POKES) * sizeof(struct rs_poke);
	l->fds_off = off;
	off += ((rs_u64)img->file_count + 1) * sizeof(int);
	l->spans_off = off = (off + 7) & ~7ull;
	off += ((rs_u64)img->prefault_count + 2ull * img->region_count) * sizeof(struct rs_span);
	l->kcalls_off = off;
	off += (rs_u64)img->kop_count * sizeof(struct rs_kcall);
	l->bounce_off = rs_page_up(off);
	l->total = l->bounce_off + block_len;
	l->span = l->total + RS_PAGE > RS_FLUSH_SPAN ? l->total + RS_PAGE : RS_FLUSH_SPAN;
	l->prot = RS_PROT_READ | RS_PROT_WRITE | RS_PROT_EXEC;
	l->heap = 1;
	if (in_place) {
		l->span = l->total;
		l->prot = RS_PROT_READ | RS_PROT_WRITE;
	}
}

rs_u64 rs_plan_size(const struct rs_image *img)
{
	struct rs_layout l;
	plan_layout(img, 0, &l, 1);
	return l.total;
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
	rs_u64 stack = live->stack_end - rs_page_down(live->sp) + RS_STACK_FIRST;
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
	if (a < RS_MMAP_MIN_ADDR || a > RS_TASK_SIZE - len)
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
	const rs_u64 gap = RS_PLACE_GAP, len = l->span;
	if (!spot_taken(img, stack_end, len, avoid, n) && map_at(stack_end, len, &l->prot))
		return populated(stack_end, l->total, len);
	long r = anon_map(0, len, 0, &l->prot);
	if (!rs_failed(r) && !spot_taken(img, (rs_u64)r, len, avoid, n))
		return populated((rs_u64)r, l->total, len);
	if (!rs_failed(r))
		rs_munmap((rs_u64)r, len);
	int tries = 0;
	for (rs_u32 i = 0; img->region_count && i <= img->region_count && tries < RS_PLACE_TRIES; i++) {
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

/* ---- the routine's arguments ---- */

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
	if (r->kind == RS_REGION_FILE && prot == RS_PROT_READ)
		return 0;
	if (!(prot & RS_PROT_WRITE))
		return len <= RS_POPULATE_SHARED_MAX;
	if (r->kind == RS_REGION_FILE || len > *private_left)
		return 0;
	*private_left -= len;
	return 1;
}

/* An exported file's FILE and IMAGE regions are its own segments, mapped by
 * the kernel at exec with their protection plus write where patched: their
 * maps have flags 0 (the routine maps only the zero regions, protects all),
 * and what the rule above would populate is populated by fill_spans. */
static int kernel_mapped(const struct rs_live *live, const struct rs_region *r) { return live->exported && r->kind != RS_REGION_ZERO; }

static void fill_maps(struct rs_args *a, const struct rs_image *img, const struct rs_live *live, const int *fds, int image_fd)
{
	rs_u64 private_left = RS_POPULATE_PRIVATE_MAX;
	for (rs_u32 i = 0; i < img->region_count; i++) {
		const struct rs_region *r = &img->regions[i];
		struct rs_map *m = &a->maps[i];
		m->start = r->start;
		m->len = r->end - r->start;
		m->offset = r->kind == RS_REGION_ZERO ? 0 : r->kind == RS_REGION_IMAGE ? img->base + r->offset : r->offset;
		m->final_prot = r->prot;
		m->prot = r->prot | (r->flags & RS_RF_PATCHED ? RS_PROT_WRITE : 0);
		m->fd = kernel_mapped(live, r) ? -1 : r->kind == RS_REGION_FILE ? fds[r->file] : r->kind == RS_REGION_IMAGE ? image_fd : -1;
		m->flags = RS_MAP_PRIVATE | RS_MAP_FIXED_NOREPLACE | (m->fd < 0 ? RS_MAP_ANONYMOUS : 0) |
			   (populate(r, m->prot, &private_left) ? RS_MAP_POPULATE : 0);
		if (kernel_mapped(live, r))
			m->flags &= RS_MAP_POPULATE; /* 0, or only the wish */
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
	for (rs_u32 i = 0; i < img->region_count; i++) /* an exported file's segments, read-only ones */
		if (a->maps[i].flags == RS_MAP_POPULATE && !(a->maps[i].prot & RS_PROT_WRITE))
			a->spans[a->span_count++] = (struct rs_span){a->maps[i].start, a->maps[i].start + a->maps[i].len};
	for (rs_u32 i = 0; i < img->prefault_count; i++) {
		const struct rs_span *s = &img->prefault[i];
		while (r < img->region_count && img->regions[r].end <= s->start)
			r++;
		if (r < img->region_count && !(a->maps[r].flags & RS_MAP_POPULATE))
			a->spans[a->span_count++] = *s;
	}
	a->write_span_count = 0;
	for (rs_u32 i = 0; i < img->region_count; i++) /* an exported file's segments, writable ones */
		if (a->maps[i].flags == RS_MAP_POPULATE && a->maps[i].prot & RS_PROT_WRITE)
			a->spans[a->span_count + a->write_span_count++] =
			    (struct rs_span){a->maps[i].start, a->maps[i].start + a->maps[i].len};
	/* Init level: main and exit() run on the constructors' data at once (clang-format's
	 * option registry and its 3000 static destructors: megabytes). Copying it all in
	 * one system call costs less than the copy-on-write faults one by one (~9 us each
	 * here; docs/benchmarks.md), and a normal start holds the same pages private. */
	if (img->frame)
		for (rs_u32 i = 0; i < img->region_count; i++)
			if (img->regions[i].kind == RS_REGION_IMAGE && img->regions[i].prot & RS_PROT_WRITE &&
			    !(a->maps[i].flags & RS_MAP_POPULATE))
				a->spans[a->span_count + a->write_span_count++] =
				    (struct rs_span){img->regions[i].start, img->regions[i].end};
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
	const struct {
		rs_u32 type;
		rs_u64 want;
	} at[] = {{AT_PHDR, h->at_phdr},   {AT_PHENT, h->at_phent}, {AT_PHNUM, h->at_phnum},
		  {AT_ENTRY, h->at_entry}, {AT_BASE, h->at_base},   {AT_SYSINFO_EHDR, h->at_sysinfo_ehdr}};
	for (rs_u32 i = 0; i < sizeof at / sizeof at[0]; i++)
		if (rs_aux_has(&live->aux, at[i].type) && rs_aux(&live->aux, at[i].type) != at[i].want)
			add_poke(a, (rs_uptr)&live->aux.v[live->aux.at[at[i].type]], at[i].want);
}

/* Canary and pointer guard as glibc derives them from AT_RANDOM (the canary's
 * low byte zeroed), so they are fresh per exec instead of frozen in the image. */
static void poke_guards(struct rs_args *a, const struct rs_image *img, const struct rs_live *live)
{
	rs_u64 canary, guard;
	rs_live_guards(live, &canary, &guard);
	add_poke(a, img->h->fs_base + RS_TCB_CANARY, canary);
	add_poke(a, img->h->fs_base + RS_TCB_GUARD, guard);
}

/* The init level's frames below main, word by word, into this exec's stack
 * (rs_frame_at); the patches that follow overwrite the words they patch. */
static void poke_frame(struct rs_args *a, const struct rs_image *img, const struct rs_live *live)
{
	const rs_u64 *w = (const rs_u64 *)img->frame;
	rs_u64 at = rs_frame_at(img, live);
	for (rs_u64 i = 0; i < img->frame_len / 8; i++)
		add_poke(a, at + 8 * i, w[i]);
}

/* Needs one fresh word for every RS_PATCH_RANDOM patch (malloc's tcache key
 * and its copies in the freed chunks: one value, as in a normal start): 0 if
 * getrandom fails (a filter, an early boot's empty pool), and the program
 * starts normally. */
static int fill_pokes(struct rs_args *a, const struct rs_image *img, const struct rs_live *live)
{
	rs_u64 random = 0;
	int drawn = 0;
	a->poke_count = 0;
	poke_frame(a, img, live);
	for (rs_u32 i = 0; i < img->patch_count; i++) {
		const struct rs_patch *p = &img->patches[i];
		if (p->kind == RS_PATCH_RANDOM && !drawn++ && rs_getrandom(&random, sizeof random, RS_GRND_NONBLOCK) != sizeof random)
			return 0;
		add_poke(a, rs_patch_addr(img, live, p), rs_patch_value(img, live, p, random)); /* resolvable: rs_check_live */
	}
	poke_auxv(a, img, live);
	poke_guards(a, img, live);
	/* glibc's default thread stack size is the soft stack limit, page-aligned */
	if (live->rlimit_stack != img->h->rlimit_stack && rs_stacksize_patchable(img, live))
		add_poke(a, img->h->stacksize_word, rs_stacksize_for(live));
	return 1;
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
static const char step_text[RS_STEP_COUNT][RS_STEP_TEXT] = {
    "munmap failed, errno ",	 "mremap failed, errno ",	   "mmap failed, errno ", "mprotect failed, errno ",
    "arch_prctl failed, errno ", "set_robust_list failed, errno ", "rseq failed, errno ", "kernel state failed, errno ",
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
	/* link level: return into _dl_start_user below argc; init level: into
	 * main's caller, at the rebuilt frames' first word */
	a->resume_sp = img->frame ? rs_frame_at(img, live) : live->args_lo - 8;
	a->resume_cont = img->frame ? h->frame_resume : h->resume_cont;
	a->user_entry = h->user_entry;
	a->gadget = h->ldso_base + h->syscall_ret_off;
	a->heap_word = h->heap_word;
	a->heap_prefault = h->heap_prefault;
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
	/* same file, same offsets; an exported file says where its segments end */
	rs_u64 exe_end = live->brk_from ? live->brk_from : rs_aux(&live->aux, AT_PHDR) + (h->mm_brk_base - h->at_phdr);
	if (brk < exe_end || brk - exe_end > RS_BRK_MAX_OFFSET)
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
	if (img->frame) { /* init level: malloc's heap goes on where it ended at capture */
		m->start_brk = h->mm_start_brk;
		m->brk = h->mm_brk;
	}
	m->start_stack = (rs_uptr)live->argv - 8;
	m->arg_start = (rs_uptr)live->argv[0];
	m->arg_end = m->env_start = strings_end(live->argv[0], live->argc);
	m->env_end = strings_end((const char *)m->env_start, live->env_count);
	m->auxv = (rs_uptr)live->aux.v;
	m->auxv_size = live->aux.words * 8;
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
	for (rs_u32 i = 0; fds && i < img->file_count; i++) /* an exported file opens none */
		if (fds[i] >= 0) {
			a->fds[a->fd_count++] = fds[i];
			lo = fds[i] < lo ? fds[i] : lo;
			hi = fds[i] > hi ? fds[i] : hi;
		}
	if (image_fd >= 0)
		a->fds[a->fd_count++] = image_fd;
	a->close_lo = a->close_hi = 0;
	if (!live->filtered && (rs_u32)(hi - lo) + 1 == a->fd_count) {
		a->close_lo = (rs_u32)lo;
		a->close_hi = (rs_u32)hi;
	}
}

/* The kernel state the constructors set (init level), as calls for the
 * routine, pointers into the takeover mapping. A limit is set after the
 * mappings: a call that would fail must be caught here, before the point of
 * no return. Unprivileged, a hard limit only goes down, so each new hard
 * limit must be at most this exec's (or the previous call's): a capture as
 * root that raised one falls back for other users. */
static int fill_kcalls(struct rs_args *a, const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	rs_u64 hard[RS_RLIM_NLIMITS] = {0};
	rs_u32 known = 0; /* bit per resource: hard[] read */
	if (img->kop_count && live->filtered)
		return rs_refuse(why, "a system call the takeover needs is denied (seccomp)", "the constructors' kernel state");
	for (rs_u32 i = 0; i < img->kop_count; i++) {
		const struct rs_kernel_op *k = &img->kops[i];
		struct rs_kcall *c = &a->kcalls[i];
		rs_u64 data = (rs_uptr)c->data;
		rs_copy(c->data, k->value, sizeof c->data);
		if (k->kind == RS_KOP_SIGACTION) {
			c->nr = RS_NR_RT_SIGACTION;
			c->arg[0] = k->arg, c->arg[1] = data, c->arg[2] = 0, c->arg[3] = 8;
		} else if (k->kind == RS_KOP_SIGPROCMASK) {
			c->nr = RS_NR_RT_SIGPROCMASK;
			c->arg[0] = k->arg, c->arg[1] = data, c->arg[2] = 0, c->arg[3] = 8;
		} else if (k->kind == RS_KOP_UMASK) {
			c->nr = RS_NR_UMASK;
			c->arg[0] = k->value[0];
		} else if (k->kind == RS_KOP_NAME) {
			c->nr = RS_NR_PRCTL;
			c->arg[0] = RS_PR_SET_NAME, c->arg[1] = data;
		} else { /* RS_KOP_RLIMIT */
			rs_u64 lim[2];
			if (!(known & 1u << k->arg)) {
				if (rs_getrlimit((int)k->arg, lim))
					return rs_refuse(why, "getrlimit failed", 0);
				hard[k->arg] = lim[1];
				known |= 1u << k->arg;
			}
			if (k->value[1] > hard[k->arg])
				return rs_refuse(why, "resource limits", "a constructor sets a hard limit above this exec's");
			hard[k->arg] = k->value[1];
			c->nr = RS_NR_PRLIMIT64;
			c->arg[0] = 0, c->arg[1] = k->arg, c->arg[2] = data, c->arg[3] = 0;
		}
	}
	a->kcall_count = img->kop_count;
	return 1;
}

/* The anonymous mapping is zero-filled, so only set fields need writing. */
static int fill_args(struct rs_args *a, const struct rs_layout *l, const struct rs_image *img, const struct rs_live *live, const int *fds,
		     int image_fd, const struct rs_texts *t, struct rs_why *why)
{
	rs_u8 *self = (rs_u8 *)a - l->args_off;
	a->self = (rs_uptr)self;
	a->self_len = l->span;
	a->entry_off = (rs_u64)((const char *)rs_takeover - __start_rs_restore);
	a->maps = (struct rs_map *)(self + l->maps_off);
	a->pokes = (struct rs_poke *)(self + l->pokes_off);
	a->fds = (int *)(self + l->fds_off);
	a->spans = (struct rs_span *)(self + l->spans_off);
	a->kcalls = (struct rs_kcall *)(self + l->kcalls_off);
	fill_maps(a, img, live, fds, image_fd);
	fill_spans(a, img);
	if (!fill_pokes(a, img, live))
		return rs_refuse(why, "getrandom failed", "a word the constructors drew at random");
	if (!fill_kcalls(a, img, live, why))
		return 0;
	fill_fds(a, img, live, fds, image_fd);
	fill_state(a, img, live);
	fill_texts(a, t);
	return 1;
}

/* ADDR if it lies in the executable's code (room for the exit stub), else 0. */
static rs_u64 in_code_of_executable(const struct rs_image *img, rs_u64 addr)
{
	for (rs_u32 i = 0; i < img->region_count; i++) {
		const struct rs_region *r = &img->regions[i];
		if (r->kind == RS_REGION_FILE && r->file == 0 && r->prot & RS_PROT_EXEC && addr >= r->start &&
		    addr + RS_EXIT_STUB <= r->end)
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
	/* The routine writes the frames below main over ld.so's, which are dead
	 * by then, but never over its own: they lie below this one. */
	if (img->frame && rs_frame_at(img, live) < rs_page_down(live->sp) + RS_PAGE) {
		rs_refuse(why, "address conflict", "the frames below main");
		return 0;
	}
	find_block(img, live, &b);
	int remap = b.live != b.start && can_map_vdso(b.start);
	if (live->exported && !remap && block_overlaps(&b)) { /* no bounce area in place */
		rs_refuse(why, "address conflict", "the vdso");
		return 0;
	}
	plan_layout(img, !remap && block_overlaps(&b) ? b.end - b.start : 0, &l, live->exported);
	if (!fit_limits(img, live, &l, b.end - b.start)) {
		rs_refuse(why, "resource limits", "RLIMIT_DATA or RLIMIT_AS leave no room for the takeover");
		return 0;
	}
	rs_stack_zone(live, &lo, &hi);
	struct rs_range avoid[3] = {{b.start, b.end}, {b.live, b.live + (b.end - b.start)}, {lo, hi}};
	rs_u64 self = live->exported ? (rs_uptr)live->plan_buf : place_mapping(img, &l, live->stack_end, avoid, 3);
	if (!self) {
		rs_refuse(why, "address conflict", "no room for the takeover routine");
		return 0;
	}
	struct rs_args *a = (struct rs_args *)(self + l.args_off);
	if (!live->exported)
		rs_copy((void *)self, __start_rs_restore, (rs_u64)(__stop_rs_restore - __start_rs_restore));
	if (!fill_args(a, &l, img, live, fds, image_fd, texts, why)) {
		if (!live->exported)
			rs_munmap(self, l.span);
		return 0;
	}
	if (live->exported) { /* the routine runs in place; the resume unmaps the stub and the metadata */
		a->self = live->self_start;
		a->self_len = live->self_end - live->self_start;
		a->entry_off = (rs_uptr)rs_takeover - live->self_start;
	}
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
	struct rs_range stack = {rs_page_down(live->sp) - RS_STACK_MARGIN, live->stack_end};
	struct rs_range keep[3] = {{self, self + l.span}, stack, remap ? stack : (struct rs_range){b.live, b.live + (b.end - b.start)}};
	if (live->exported) { /* the stub and the metadata go last (resume); the live vdso block if a new one is mapped */
		a->unmaps[0] = (struct rs_range){b.live, b.live + (b.end - b.start)};
		a->unmap_count = remap ? 1 : 0;
	} else
		fill_unmaps(a, keep);
	if (!live->exported && !(l.prot & RS_PROT_EXEC) && rs_failed(rs_mprotect(self, l.args_off, RS_PROT_READ | RS_PROT_EXEC))) {
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
