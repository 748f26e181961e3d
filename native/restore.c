/*
 * restore.c - image validation: the pure half of the restore core.
 *
 * May use: the image buffer, the facts in struct rs_live, live memory those
 * facts point at (stack, vdso, ld.so). May not use: system calls, globals,
 * libc. That keeps it buildable on the host (cc -DRS_HOSTED, with libc) so it
 * can be fuzzed. The system-call stages live in files.c, plan.c and
 * routine.c.
 *
 * Everything in the image is treated as hostile until proven otherwise:
 * offsets are checked against sizes before they are added, counts before
 * they are multiplied, and every string offset against the string table,
 * whose last byte must be NUL.
 */
#include "restore.h"

#define RS_OFFSETOF(t, f) __builtin_offsetof(t, f)

_Static_assert(sizeof(struct rs_header) % 8 == 0, "header is 8-aligned");
_Static_assert(RS_OFFSETOF(struct rs_header, checksum) == 32, "checksum word");
_Static_assert(RS_OFFSETOF(struct rs_header, rlimit_stack) == 624 && RS_OFFSETOF(struct rs_header, heap_word) == 632 &&
		   RS_OFFSETOF(struct rs_header, prefault) == 648 && RS_OFFSETOF(struct rs_header, mm_start_code) == 664 &&
		   RS_OFFSETOF(struct rs_header, frame_addr) == 728 && RS_OFFSETOF(struct rs_header, kernel_ops) == 784 &&
		   RS_OFFSETOF(struct rs_header, variant_count) == 816 && sizeof(struct rs_header) == 824,
	       "v8 header");
_Static_assert(sizeof(struct rs_kernel_op) == 40, "rs_kernel_op");
_Static_assert(sizeof(struct rs_span) == 16, "rs_span");
_Static_assert(sizeof(struct rs_file) == 64, "rs_file");
_Static_assert(sizeof(struct rs_region) == 48, "rs_region");
_Static_assert(sizeof(struct rs_patch) == 24, "rs_patch");
_Static_assert(sizeof(struct rs_vdso_vma) == 24, "rs_vdso_vma");

#define RS_RSEQ_MIN_LEN 32u
#define RS_ROBUST_HEAD_LEN 24u
#define RS_CPU_FEATURES_MAX 4096u

/* Space below the live stack pointer kept free of snapshot mappings so the
 * program's stack can grow (8 MiB default RLIMIT_STACK + the kernel's 1 MiB
 * stack guard gap, rounded up). */
#define RS_STACK_RESERVE (16ull << 20)
#define RS_STACK_GUARD_GAP (256ull * RS_PAGE) /* the kernel's stack_guard_gap */

/* ---- checksum ---- */

/* rs_checksum over [0, size) of an image's metadata, the checksum word read
 * as zero (image.h). size is a multiple of 8. */
static rs_u64 image_checksum(const rs_u8 *p, rs_u64 size)
{
	rs_u64 h = RS_FNV_OFFSET;
	for (rs_u64 i = 0; i < size; i += 8) {
		rs_u64 w = 0;
		for (int b = 7; b >= 0; b--)
			w = (w << 8) | p[i + b];
		if (i == RS_OFFSETOF(struct rs_header, checksum))
			w = 0;
		h = (h ^ w) * RS_FNV_PRIME;
	}
	return h;
}

/* The same hash over live memory (the vdso), 8-aligned, size % 8 == 0. */
static rs_u64 memory_checksum(const void *p, rs_u64 size)
{
	const rs_u64 *w = p;
	rs_u64 h = RS_FNV_OFFSET;
	for (rs_u64 i = 0; i < size / 8; i++)
		h = (h ^ w[i]) * RS_FNV_PRIME;
	return h;
}

/* ---- header and tables ---- */

int rs_image_header_ok(const struct rs_header *h, rs_u64 file_size, struct rs_why *why)
{
	if (!rs_memeq(h->magic, RS_MAGIC, 8))
		return rs_refuse(why, "corrupt image: magic", 0);
	if (h->version != RS_VERSION)
		return rs_refuse(why, "image version differs", 0);
	if (h->header_size != sizeof(struct rs_header))
		return rs_refuse(why, "corrupt image: header size", 0);
	if (h->file_size != file_size)
		return rs_refuse(why, "corrupt image: file size", 0);
	if (h->meta_size < sizeof(struct rs_header) || h->meta_size % 8 || h->meta_size > file_size)
		return rs_refuse(why, "corrupt image: meta size", 0);
	if (h->data_offset % RS_PAGE || h->data_offset < h->meta_size || h->data_offset > file_size)
		return rs_refuse(why, "corrupt image: data offset", 0);
	return 1;
}

/* Locate table t of entries of size want inside [0, meta); 0 if it is not. */
static const void *table_at(const rs_u8 *meta, rs_u64 meta_size, const struct rs_table *t, rs_u32 want)
{
	if (t->entry_size != want || t->offset % 8 || t->offset > meta_size)
		return 0;
	if ((rs_u64)t->count * want > meta_size - t->offset)
		return 0;
	return meta + t->offset;
}

const char *rs_image_string(const struct rs_image *img, rs_u64 off) { return off < img->strings_size ? img->strings + off : 0; }

/* The init level's frames below main: 8-aligned, at most RS_FRAME_MAX bytes
 * ending at the capture's argc, which is 16-aligned as every exec's is, so the
 * frames keep their alignment in any exec. The link level has none. */
static int locate_frame(struct rs_image *img, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	img->frame = 0;
	img->frame_len = 0;
	if (h->level == RS_LEVEL_LINK)
		return !(h->frame_addr | h->frame_blob | h->frame_resume | h->mm_start_brk | h->mm_brk | h->env_deps.count |
			 h->kernel_ops.count | h->fallback_offset | h->fallback_size) ||
		       rs_refuse(why, "corrupt image: init fields at the link level", 0);
	if (h->level != RS_LEVEL_INIT)
		return rs_refuse(why, "corrupt image: level", 0);
	rs_u64 len = h->old_stack_argc - h->frame_addr;
	if (h->old_stack_argc % 16 || h->frame_addr % 8 || h->frame_addr >= h->old_stack_argc || len > RS_FRAME_MAX || h->frame_blob % 8 ||
	    h->frame_blob > img->meta_size || len > img->meta_size - h->frame_blob)
		return rs_refuse(why, "corrupt image: frames below main", 0);
	img->frame = img->meta + h->frame_blob;
	img->frame_len = len;
	return 1;
}

static int locate_tables(struct rs_image *img, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	img->files = table_at(img->meta, img->meta_size, &h->files, sizeof(struct rs_file));
	img->regions = table_at(img->meta, img->meta_size, &h->regions, sizeof(struct rs_region));
	img->patches = table_at(img->meta, img->meta_size, &h->patches, sizeof(struct rs_patch));
	img->env = table_at(img->meta, img->meta_size, &h->env, sizeof(rs_u32));
	img->prefault = table_at(img->meta, img->meta_size, &h->prefault, sizeof(struct rs_span));
	img->env_deps = table_at(img->meta, img->meta_size, &h->env_deps, sizeof(rs_u32));
	img->kops = table_at(img->meta, img->meta_size, &h->kernel_ops, sizeof(struct rs_kernel_op));
	if (!img->files || !img->regions || !img->patches || !img->env || !img->prefault || !img->env_deps || !img->kops)
		return rs_refuse(why, "corrupt image: table", 0);
	img->env_dep_count = h->env_deps.count;
	img->kop_count = h->kernel_ops.count;
	img->file_count = h->files.count;
	img->region_count = h->regions.count;
	img->patch_count = h->patches.count;
	img->env_count = h->env.count;
	img->prefault_count = h->prefault.count;
	if (h->strings_offset > img->meta_size || h->strings_size > img->meta_size - h->strings_offset)
		return rs_refuse(why, "corrupt image: strings", 0);
	img->strings = (const char *)img->meta + h->strings_offset;
	img->strings_size = h->strings_size;
	/* A NUL last byte makes every in-range offset a terminated string. */
	if (!img->strings_size || img->strings[img->strings_size - 1])
		return rs_refuse(why, "corrupt image: strings", 0);
	if (img->file_count == 0)
		return rs_refuse(why, "corrupt image: no files", 0);
	return locate_frame(img, why);
}

static int check_files_table(const struct rs_image *img, struct rs_why *why)
{
	for (rs_u32 i = 0; i < img->file_count; i++) {
		const struct rs_file *f = &img->files[i];
		const char *path = rs_image_string(img, f->path);
		if (!path || path[0] != '/')
			return rs_refuse(why, "corrupt image: file path", 0);
		if (f->flags != RS_FILE_MAPPED && f->flags != RS_FILE_STAMP && f->flags != RS_FILE_ABSENT)
			return rs_refuse(why, "corrupt image: file flags", path);
	}
	if (img->files[0].flags != RS_FILE_MAPPED)
		return rs_refuse(why, "corrupt image: executable not mapped", 0);
	return 1;
}

static int check_region(const struct rs_image *img, const struct rs_region *r, struct rs_why *why)
{
	rs_u64 len = r->end - r->start;
	if (r->start % RS_PAGE || r->end % RS_PAGE || r->start >= r->end || r->end > RS_TASK_SIZE)
		return rs_refuse(why, "corrupt image: region bounds", 0);
	if (r->prot & ~7u || r->flags & ~RS_RF_PATCHED || !rs_image_string(img, r->name))
		return rs_refuse(why, "corrupt image: region fields", 0);
	if (r->kind == RS_REGION_FILE) {
		if (r->file >= img->file_count || img->files[r->file].flags != RS_FILE_MAPPED)
			return rs_refuse(why, "corrupt image: region file", 0);
		/* Pages wholly past the end of the file would raise SIGBUS. */
		if (r->offset % RS_PAGE || r->offset > rs_page_up(img->files[r->file].size) ||
		    len > rs_page_up(img->files[r->file].size) - r->offset)
			return rs_refuse(why, "corrupt image: region offset", 0);
	} else if (r->kind == RS_REGION_IMAGE) {
		if (r->offset % RS_PAGE || r->offset < img->h->data_offset || r->offset > img->file_size ||
		    len > img->file_size - r->offset)
			return rs_refuse(why, "corrupt image: region offset", 0);
	} else if (r->kind != RS_REGION_ZERO) {
		return rs_refuse(why, "corrupt image: region kind", 0);
	}
	/* Code always comes from the real files (perf, gdb; no text in images). */
	if (r->prot & RS_PROT_EXEC && r->kind != RS_REGION_FILE)
		return rs_refuse(why, "corrupt image: executable region not from a file", 0);
	return 1;
}

static int check_regions_table(const struct rs_image *img, struct rs_why *why)
{
	for (rs_u32 i = 0; i < img->region_count; i++) {
		if (!check_region(img, &img->regions[i], why))
			return 0;
		if (i && img->regions[i].start < img->regions[i - 1].end)
			return rs_refuse(why, "corrupt image: regions overlap", 0);
	}
	return 1;
}

/* The region holding [addr, addr + len), or 0. Regions are sorted. */
static const struct rs_region *region_of(const struct rs_image *img, rs_u64 addr, rs_u64 len)
{
	rs_u32 lo = 0, hi = img->region_count;
	while (lo < hi) {
		rs_u32 mid = lo + (hi - lo) / 2;
		const struct rs_region *r = &img->regions[mid];
		if (addr >= r->end)
			lo = mid + 1;
		else if (addr < r->start)
			hi = mid;
		else
			return len <= r->end - addr ? r : 0;
	}
	return 0;
}

/* Writable while the routine pokes it (mapped W first if PATCHED). */
static int pokeable(const struct rs_image *img, rs_u64 addr, rs_u64 len)
{
	const struct rs_region *r = region_of(img, addr, len);
	return r && (r->prot & RS_PROT_WRITE || r->flags & RS_RF_PATCHED);
}

static int writable(const struct rs_image *img, rs_u64 addr, rs_u64 len)
{
	const struct rs_region *r = region_of(img, addr, len);
	return r && r->prot & RS_PROT_WRITE;
}

static int executable(const struct rs_image *img, rs_u64 addr)
{
	const struct rs_region *r = region_of(img, addr, 1);
	return r && r->prot & RS_PROT_EXEC;
}

static int in_frame(const struct rs_image *img, rs_u64 addr)
{
	return img->frame && addr >= img->h->frame_addr && addr < img->h->old_stack_argc;
}

static int check_patches_table(const struct rs_image *img, struct rs_why *why)
{
	for (rs_u32 i = 0; i < img->patch_count; i++) {
		const struct rs_patch *p = &img->patches[i];
		rs_u32 last = img->h->level == RS_LEVEL_INIT ? RS_PATCH_KIND_MAX : RS_PATCH_AUXV_VALUE;
		if (p->kind < RS_PATCH_ARGC || p->kind > last || (p->kind == RS_PATCH_ARGC_COUNT && p->index != 0 && p->index != 4))
			return rs_refuse(why, "corrupt image: patch kind", 0);
		if (p->kind == RS_PATCH_ENV_STRING && !rs_image_string(img, p->index))
			return rs_refuse(why, "corrupt image: patch name", 0);
		if (p->addr % 8 || !(pokeable(img, p->addr, 8) || in_frame(img, p->addr)))
			return rs_refuse(why, "corrupt image: patch outside writable region", 0);
	}
	for (rs_u32 i = 0; i < img->env_count; i++)
		if (!rs_image_string(img, img->env[i]))
			return rs_refuse(why, "corrupt image: env", 0);
	for (rs_u32 i = 0; i < img->env_dep_count; i++)
		if (!rs_image_string(img, img->env_deps[i]))
			return rs_refuse(why, "corrupt image: env", 0);
	return 1;
}

/* Each replayed call is one the kernel takes from any process (restore.c
 * cannot know this exec's limits: plan.c checks the hard limits). */
static int check_kernel_ops_table(const struct rs_image *img, struct rs_why *why)
{
	if (img->kop_count > RS_KOP_TABLE_MAX)
		return rs_refuse(why, "corrupt image: kernel state table", 0);
	for (rs_u32 i = 0; i < img->kop_count; i++) {
		const struct rs_kernel_op *k = &img->kops[i];
		int ok;
		switch (k->kind) {
		case RS_KOP_SIGACTION:
			ok = k->arg >= 1 && k->arg <= 64 && k->arg != 9 && k->arg != 19;
			break;
		case RS_KOP_SIGPROCMASK:
			ok = k->arg <= 2;
			break;
		case RS_KOP_UMASK:
			ok = k->arg == 0 && k->value[0] <= 0777;
			break;
		case RS_KOP_RLIMIT:
			ok = k->arg < RS_RLIM_NLIMITS && k->value[0] <= k->value[1];
			break;
		case RS_KOP_NAME:
			ok = k->arg == 0 && rs_strnlen((const char *)k->value, 16) < 16;
			break;
		default:
			ok = 0;
		}
		if (!ok)
			return rs_refuse(why, "corrupt image: kernel state", 0);
	}
	return 1;
}

/* The link-level image an init-level one carries for an exec whose
 * looked-up variables differ: whole pages at the end of the file, after
 * every region of this one. */
static int check_fallback(const struct rs_image *img, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	if (!h->fallback_offset && !h->fallback_size)
		return 1;
	if (!h->env_deps.count || h->fallback_offset % RS_PAGE || h->fallback_offset < h->data_offset ||
	    h->fallback_size < sizeof(struct rs_header) || h->fallback_offset > img->file_size ||
	    img->file_size - h->fallback_offset != h->fallback_size)
		return rs_refuse(why, "corrupt image: fallback", 0);
	for (rs_u32 i = 0; i < img->region_count; i++) {
		const struct rs_region *r = &img->regions[i];
		if (r->kind == RS_REGION_IMAGE && r->offset + (r->end - r->start) > h->fallback_offset)
			return rs_refuse(why, "corrupt image: fallback", 0);
	}
	return 1;
}

/* Prefault spans lie in read-only file regions, one region each: populating
 * them maps page cache pages and never copies one. */
static int check_prefault_table(const struct rs_image *img, struct rs_why *why)
{
	if (img->prefault_count > RS_PREFAULT_MAX)
		return rs_refuse(why, "corrupt image: prefault table", 0);
	for (rs_u32 i = 0; i < img->prefault_count; i++) {
		const struct rs_span *s = &img->prefault[i];
		if (s->start % RS_PAGE || s->end % RS_PAGE || s->start >= s->end || (i && s->start < img->prefault[i - 1].end))
			return rs_refuse(why, "corrupt image: prefault span", 0);
		const struct rs_region *r = region_of(img, s->start, s->end - s->start);
		if (!r || r->kind != RS_REGION_FILE || r->prot & RS_PROT_WRITE || r->flags & RS_RF_PATCHED)
			return rs_refuse(why, "corrupt image: prefault span", 0);
	}
	return 1;
}

/* The vvar..vdso block: sorted, page-aligned, exactly one [vdso], clear of
 * every region (it is moved back to these addresses). */
static int check_vdso_vmas(const struct rs_image *img, struct rs_why *why)
{
	int vdso = 0;
	rs_u64 prev_end = 0;
	for (int i = 0; i < RS_MAX_VDSO_VMAS; i++) {
		const struct rs_vdso_vma *v = &img->h->vdso_vmas[i];
		if (v->kind == 0)
			continue;
		if (v->kind > RS_VDSO_VDSO || v->start % RS_PAGE || v->end % RS_PAGE || v->start >= v->end || v->end > RS_TASK_SIZE ||
		    v->start < prev_end)
			return rs_refuse(why, "corrupt image: vdso table", 0);
		for (rs_u32 r = 0; r < img->region_count; r++)
			if (v->start < img->regions[r].end && img->regions[r].start < v->end)
				return rs_refuse(why, "corrupt image: vdso overlaps a region", 0);
		vdso += v->kind == RS_VDSO_VDSO;
		prev_end = v->end;
	}
	if (vdso != 1)
		return rs_refuse(why, "corrupt image: vdso table", 0);
	return 1;
}

/* Some header fields repeat what the tables say. The checksum only catches
 * accidents; a writer that got one of these wrong would crash the program or
 * make getauxval() lie, so they must agree: AT_BASE and ldso_base name the
 * start of the file whose text holds resume_pc, AT_ENTRY is the user entry,
 * AT_PHDR is right after the executable's ELF header (where every linker
 * puts the program headers; the capture refuses others), AT_SYSINFO_EHDR is the
 * [vdso] VMA, the tid word (if ld.so set one: glibc 2.34 and later) is in the
 * thread's first page. */
static int file_starts_at(const struct rs_image *img, rs_u32 file, rs_u64 base)
{
	for (rs_u32 i = 0; i < img->region_count; i++) {
		const struct rs_region *r = &img->regions[i];
		if (r->kind == RS_REGION_FILE && r->file == file && r->offset == 0)
			return r->start == base;
	}
	return 0;
}

/* The layout handed to PR_SET_MM_MAP describes the snapshot's executable:
 * code in one of its executable FILE regions, the data before the end of its
 * bss (a mapped page), all in order. All zero: none recorded. */
static int check_mm(const struct rs_image *img, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	if (!(h->mm_start_code | h->mm_end_code | h->mm_start_data | h->mm_end_data | h->mm_brk_base))
		return 1;
	const struct rs_region *code = region_of(img, h->mm_start_code, 1);
	if (!code || code->kind != RS_REGION_FILE || code->file != 0 || !(code->prot & RS_PROT_EXEC) ||
	    h->mm_start_code >= h->mm_end_code || h->mm_start_data > h->mm_end_data || h->mm_end_data > h->mm_brk_base ||
	    h->mm_brk_base % RS_PAGE || !region_of(img, h->mm_brk_base - 1, 1))
		return rs_refuse(why, "corrupt image: executable layout", 0);
	return 1;
}

static int check_consistent(const struct rs_image *img, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	const struct rs_region *ldso = region_of(img, h->resume_pc, 1);
	if (!ldso || ldso->kind != RS_REGION_FILE || !file_starts_at(img, ldso->file, h->ldso_base) || h->at_base != h->ldso_base)
		return rs_refuse(why, "corrupt image: ld.so base", 0);
	if (h->user_entry != h->at_entry)
		return rs_refuse(why, "corrupt image: entry point", 0);
	const struct rs_region *ph = h->at_phent <= 64 && h->at_phnum <= 4096 ? region_of(img, h->at_phdr, h->at_phent * h->at_phnum) : 0;
	if (!ph || ph->kind != RS_REGION_FILE || ph->file != 0 || ph->offset != 0 || h->at_phdr != ph->start + RS_EHDR_SIZE)
		return rs_refuse(why, "corrupt image: program headers", 0);
	for (int i = 0; i < RS_MAX_VDSO_VMAS; i++)
		if (h->vdso_vmas[i].kind == RS_VDSO_VDSO && h->vdso_vmas[i].start != h->at_sysinfo_ehdr)
			return rs_refuse(why, "corrupt image: vdso address", 0);
	if (h->tid_address && h->tid_address - h->fs_base >= RS_PAGE)
		return rs_refuse(why, "corrupt image: thread state", 0);
	return check_mm(img, why);
}

/* Thread and resume state must land in the snapshot's own mappings. */
static int check_state(const struct rs_image *img, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	rs_u64 cpu = h->cpu_features_len;
	if (cpu > RS_CPU_FEATURES_MAX || cpu > img->meta_size || h->cpu_features_blob > img->meta_size - cpu ||
	    h->cpu_features_mask > img->meta_size - cpu)
		return rs_refuse(why, "corrupt image: cpu features", 0);
	if (!pokeable(img, h->fs_base + RS_TCB_CANARY, 16) || (h->tid_address && !writable(img, h->tid_address, 4)))
		return rs_refuse(why, "corrupt image: thread state", 0);
	if (h->robust_head && (h->robust_len != RS_ROBUST_HEAD_LEN || !writable(img, h->robust_head, 24)))
		return rs_refuse(why, "corrupt image: robust list", 0);
	if (h->rseq_addr && (h->rseq_len < RS_RSEQ_MIN_LEN || h->rseq_addr % 32 || !writable(img, h->rseq_addr, h->rseq_len)))
		return rs_refuse(why, "corrupt image: rseq", 0);
	if (h->stacksize_word && (h->stacksize_word % 8 || !writable(img, h->stacksize_word, 8)))
		return rs_refuse(why, "corrupt image: thread stack size", 0);
	if (h->heap_prefault % RS_PAGE || h->heap_prefault > RS_HEAP_PREFAULT_MAX || (h->heap_prefault && !h->heap_word) ||
	    (h->heap_word && (h->heap_word % 8 || !writable(img, h->heap_word, 8))))
		return rs_refuse(why, "corrupt image: heap", 0);
	if (!executable(img, h->resume_cont) || !executable(img, h->user_entry) || h->syscall_ret_off > RS_TASK_SIZE ||
	    !executable(img, h->ldso_base + h->syscall_ret_off))
		return rs_refuse(why, "corrupt image: resume state", 0);
	if (h->level == RS_LEVEL_INIT &&
	    (!executable(img, h->frame_resume) || h->heap_prefault || h->mm_brk < h->mm_start_brk || h->mm_brk > RS_TASK_SIZE))
		return rs_refuse(why, "corrupt image: resume state", 0);
	return 1;
}

int rs_image_parse(struct rs_image *img, const void *buf, rs_u64 size, rs_u64 file_size, struct rs_why *why)
{
	img->meta = buf;
	img->h = buf;
	img->meta_size = size;
	img->file_size = file_size;
	if (size < sizeof(struct rs_header))
		return rs_refuse(why, "corrupt image: short", 0);
	if (!rs_image_header_ok(img->h, file_size, why))
		return 0;
	if (img->h->meta_size != size)
		return rs_refuse(why, "corrupt image: meta size", 0);
	if (image_checksum(img->meta, size) != img->h->checksum)
		return rs_refuse(why, "corrupt image: checksum", 0);
	return locate_tables(img, why) && check_files_table(img, why) && check_regions_table(img, why) && check_patches_table(img, why) &&
	       check_prefault_table(img, why) && check_kernel_ops_table(img, why) && check_fallback(img, why) &&
	       check_vdso_vmas(img, why) && check_state(img, why) && check_consistent(img, why);
}

/* ---- this exec against the image ---- */

/* Compare a NUL-padded fixed field of the header with a live string. */
static int field_equals(const char *field, rs_u64 size, const char *live)
{
	rs_u64 n = rs_strnlen(field, size);
	return n < size && rs_strnlen(live, size) == n && rs_memeq(field, live, n);
}

int rs_stacksize_patchable(const struct rs_image *img, const struct rs_live *live)
{
	return img->h->stacksize_word && live->rlimit_stack >= RS_STACKSIZE_MIN;
}

rs_u64 rs_stacksize_for(const struct rs_live *live)
{
	return live->rlimit_stack == ~0ull ? RS_STACKSIZE_UNLIMITED : rs_page_up(live->rlimit_stack);
}

static int check_machine(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	rs_u64 hwcap = rs_aux(&live->aux, AT_HWCAP);
	rs_u64 hwcap2 = rs_aux(&live->aux, AT_HWCAP2);
	const char *platform = (const char *)rs_aux(&live->aux, AT_PLATFORM);
	if (hwcap != h->hwcap || hwcap2 != h->hwcap2)
		return rs_refuse(why, "cpu differs", "hwcap");
	if (!platform || !field_equals(h->platform, sizeof h->platform, platform))
		return rs_refuse(why, "cpu differs", "platform");
	if (!field_equals(h->kernel_release, sizeof h->kernel_release, live->kernel_release) ||
	    !field_equals(h->kernel_version, sizeof h->kernel_version, live->kernel_version))
		return rs_refuse(why, "kernel changed", 0);
	/* libc sized its default thread stacks from this limit before the stop. */
	if (live->rlimit_stack != h->rlimit_stack && !rs_stacksize_patchable(img, live))
		return rs_refuse(why, "stack limit differs", 0);
	return 1;
}

static const struct rs_vdso_vma *vdso_vma(const struct rs_header *h)
{
	for (int i = 0; i < RS_MAX_VDSO_VMAS; i++)
		if (h->vdso_vmas[i].kind == RS_VDSO_VDSO)
			return &h->vdso_vmas[i];
	return 0;
}

/* Hash only what is known to be mapped: the image's size for the [vdso]
 * could be anything, the live ELF's extent is not. */
static int check_vdso(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	const struct rs_vdso_vma *v = vdso_vma(img->h);
	if (!live->sysinfo_ehdr || live->sysinfo_ehdr % RS_PAGE || v->end - v->start > live->vdso_size)
		return rs_refuse(why, "vdso differs", 0);
	if (memory_checksum((const void *)live->sysinfo_ehdr, v->end - v->start) != img->h->vdso_hash)
		return rs_refuse(why, "vdso differs", 0);
	return 1;
}

/* ifunc choices are baked into the snapshot; ld.so has already probed this
 * CPU, so compare its result instead of running CPUID again. */
static int check_cpu(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	rs_u64 len = h->cpu_features_len;
	if (h->cpu_features_off > live->ldso_size || len > live->ldso_size - h->cpu_features_off)
		return rs_refuse(why, "cpu differs", "features out of ld.so");
	const rs_u8 *now = (const rs_u8 *)(live->at_base + h->cpu_features_off);
	const rs_u8 *then = img->meta + h->cpu_features_blob;
	const rs_u8 *mask = img->meta + h->cpu_features_mask;
	for (rs_u64 i = 0; i < len; i++)
		if ((now[i] & mask[i]) != (then[i] & mask[i]))
			return rs_refuse(why, "cpu differs", 0);
	return 1;
}

/* Length of the NAME in "NAME=VALUE". */
static rs_u64 env_name_len(const char *s)
{
	rs_u64 n = 0;
	while (s[n] && s[n] != '=')
		n++;
	return n;
}

static int name_is(const char *s, rs_u64 n, const char *name) { return rs_strlen(name) == n && rs_memeq(s, name, n); }

static int has_prefix(const char *s, rs_u64 n, const char *prefix)
{
	rs_u64 p = rs_strlen(prefix);
	return n >= p && rs_memeq(s, prefix, p);
}

/* The variables that change what ld.so or malloc did before the stop point
 * (image.h: env table). LD_AUDIT is this hook; LD_BIND_NOW is set by capture. */
static int env_tracked(const char *s)
{
	rs_u64 n = env_name_len(s);
	if (name_is(s, n, "LD_AUDIT") || name_is(s, n, "LD_BIND_NOW"))
		return 0;
	return has_prefix(s, n, "LD_") || has_prefix(s, n, "MALLOC_") || name_is(s, n, "GLIBC_TUNABLES");
}

static int env_in_image(const struct rs_image *img, const char *s)
{
	for (rs_u32 i = 0; i < img->env_count; i++)
		if (rs_streq(img->strings + img->env[i], s))
			return 1;
	return 0;
}

static int env_in_live(const struct rs_live *live, const char *s)
{
	for (rs_u64 i = 0; i < live->env_count; i++)
		if (rs_streq(live->envp[i], s))
			return 1;
	return 0;
}

static int env_refuse(struct rs_why *why, const char *s)
{
	rs_refuse(why, "env differs", s);
	why->detail_len = env_name_len(s);
	return 0;
}

/* LD_AUDIT naming more than this hook: the other modules loaded before us
 * would lose every later callback after a takeover, so start normally.
 * ld.so splits the list at ':' and skips empty entries ("hook.so:" is one). */
static int other_audit_modules(const char *s)
{
	rs_u64 n = env_name_len(s), modules = 0;
	if (!name_is(s, n, "LD_AUDIT") || !s[n])
		return 0;
	for (s += n + 1; *s; s++)
		if (*s != ':' && (s[1] == ':' || s[1] == 0))
			modules++;
	return modules > 1;
}

static const char *live_env(const struct rs_live *live, const char *name);

/* The variables the constructors looked up (init level): each set to the
 * same value as at capture ("NAME=VALUE"), or unset ("NAME"). */
int rs_check_env_deps(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	for (rs_u32 i = 0; i < img->env_dep_count; i++) {
		const char *dep = img->strings + img->env_deps[i];
		rs_u64 n = env_name_len(dep);
		char name[256];
		if (n >= sizeof name)
			return rs_refuse(why, "corrupt image: env", 0);
		rs_copy(name, dep, n);
		name[n] = 0;
		const char *now = live_env(live, name);
		if (dep[n] ? !now || !rs_streq(now, dep) : now != 0)
			return env_refuse(why, dep);
	}
	return 1;
}

static int check_env(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	for (rs_u64 i = 0; i < live->env_count; i++) {
		if (other_audit_modules(live->envp[i]))
			return rs_refuse(why, "other audit modules in LD_AUDIT", 0);
		if (env_tracked(live->envp[i]) && !env_in_image(img, live->envp[i]))
			return env_refuse(why, live->envp[i]);
	}
	for (rs_u32 i = 0; i < img->env_count; i++)
		if (!env_in_live(live, img->strings + img->env[i]))
			return env_refuse(why, img->strings + img->env[i]);
	return 1;
}

/* The envp string whose name is name, or 0. */
static const char *live_env(const struct rs_live *live, const char *name)
{
	rs_u64 n = rs_strlen(name);
	for (rs_u64 i = 0; i < live->env_count; i++)
		if (env_name_len(live->envp[i]) == n && rs_memeq(live->envp[i], name, n))
			return live->envp[i];
	return 0;
}

/* After the last '/', as glibc's program_invocation_short_name. */
static const char *basename_of(const char *s)
{
	const char *b = s;
	for (; *s; s++)
		if (*s == '/')
			b = s + 1;
	return b;
}

/* PTR_MANGLE of x86_64 glibc: xor with the guard, rotate left by 17. */
static rs_u64 mangle(rs_u64 v, rs_u64 guard)
{
	v ^= guard;
	return v << 17 | v >> 47;
}

rs_u64 rs_patch_value(const struct rs_image *img, const struct rs_live *live, const struct rs_patch *p, rs_u64 random)
{
	rs_u64 base = 0, canary, guard;
	rs_patch_base(img, live, p, &base);
	switch (p->kind) {
	case RS_PATCH_ARGC_COUNT: {
		rs_u32 shift = p->index * 8;
		return ((rs_u64)p->delta & ~(0xffffffffull << shift)) | (live->argc & 0xffffffffull) << shift;
	}
	case RS_PATCH_MANGLED:
	case RS_PATCH_MANGLED_ARGC:
		rs_live_guards(live, &canary, &guard);
		return mangle(base + (rs_u64)p->delta, guard);
	case RS_PATCH_RANDOM:
		return random;
	case RS_PATCH_CANARY:
		rs_live_guards(live, &canary, &guard);
		return canary;
	default:
		return base + (rs_u64)p->delta;
	}
}

rs_u64 rs_patch_addr(const struct rs_image *img, const struct rs_live *live, const struct rs_patch *p)
{
	return in_frame(img, p->addr) ? p->addr - img->h->old_stack_argc + live->args_lo : p->addr;
}

/* rs_patch_base(img, live, p, base): this exec's BASE for patch p (image.h);
 * 0 when it does not exist in this exec. */
int rs_patch_base(const struct rs_image *img, const struct rs_live *live, const struct rs_patch *p, rs_u64 *base)
{
	int found = 1;
	switch (p->kind) {
	case RS_PATCH_ARGC:
		*base = (rs_uptr)live->argv - 8;
		break;
	case RS_PATCH_ARGV:
		*base = (rs_uptr)live->argv;
		break;
	case RS_PATCH_ENVP:
		*base = (rs_uptr)live->envp;
		break;
	case RS_PATCH_AUXV:
		*base = (rs_uptr)live->aux.v;
		break;
	case RS_PATCH_ARG_STRING:
		found = p->index < live->argc;
		*base = found ? (rs_uptr)live->argv[p->index] : 0;
		break;
	case RS_PATCH_ENV_STRING:
		*base = (rs_uptr)live_env(live, img->strings + p->index);
		found = *base != 0;
		break;
	case RS_PATCH_ARG_BASENAME:
		found = p->index < live->argc;
		*base = found ? (rs_uptr)basename_of(live->argv[p->index]) : 0;
		break;
	case RS_PATCH_MANGLED_ARGC:
		*base = (rs_uptr)live->argv - 8;
		break;
	case RS_PATCH_ARGC_COUNT:
	case RS_PATCH_MANGLED:
	case RS_PATCH_RANDOM:
	case RS_PATCH_CANARY:
		*base = 0;
		break;
	default:
		found = rs_aux_has(&live->aux, p->index);
		*base = rs_aux(&live->aux, p->index);
		break;
	}
	return found;
}

/* Is the word of a patch of this kind BASE + delta, a pointer into this exec's stack? */
static int points_into_stack(rs_u32 kind)
{
	return kind != RS_PATCH_ARGC_COUNT && kind != RS_PATCH_MANGLED && kind != RS_PATCH_RANDOM && kind != RS_PATCH_CANARY;
}

/* Every BASE is in this exec's initial stack (the arrays, the strings, the
 * AT_RANDOM bytes), and so must BASE + delta be: a delta that points
 * elsewhere came from a corrupt table, not from the capture. */
static int check_patches(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	rs_u64 base, lo = live->args_lo, hi;
	if (img->frame) /* the init level's frames below main, and the dead stack under them */
		rs_stack_zone(live, &lo, &hi);
	for (rs_u32 i = 0; i < img->patch_count; i++) {
		const struct rs_patch *p = &img->patches[i];
		if (rs_patch_base(img, live, p, &base)) {
			rs_u64 value = base + (rs_u64)p->delta;
			if (points_into_stack(p->kind) && (value < lo || value >= live->stack_end))
				return rs_refuse(why, "corrupt image: patch value", 0);
			continue;
		}
		if (p->kind == RS_PATCH_ENV_STRING)
			return rs_refuse(why, "env differs", img->strings + p->index);
		return rs_refuse(
		    why, p->kind == RS_PATCH_ARG_STRING || p->kind == RS_PATCH_ARG_BASENAME ? "too few arguments" : "auxv entry missing",
		    0);
	}
	return 1;
}

/* rs_stack_zone(live, lo, hi): addresses the live stack owns or may grow into:
 * down to its soft limit below the top and the kernel's guard gap (256
 * pages) below that, at least RS_STACK_RESERVE below this frame. With no
 * limit, RS_STACK_RESERVE (as far as an unlimited stack is guaranteed). */
void rs_stack_zone(const struct rs_live *live, rs_u64 *lo, rs_u64 *hi)
{
	rs_u64 sp = rs_page_down(live->sp), reach = RS_STACK_RESERVE;
	if (live->rlimit_stack != ~0ull && live->rlimit_stack < (1ull << 40)) {
		rs_u64 limit_low = live->stack_end - rs_page_up(live->rlimit_stack) - RS_STACK_GUARD_GAP;
		if (limit_low < sp && sp - limit_low > reach)
			reach = sp - limit_low;
	}
	*lo = sp > reach ? sp - reach : 0;
	*hi = live->stack_end;
}

static int check_stack(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	rs_u64 lo, hi;
	rs_stack_zone(live, &lo, &hi);
	for (rs_u32 i = 0; i < img->region_count; i++)
		if (img->regions[i].start < hi && lo < img->regions[i].end)
			return rs_refuse(why, "address conflict", "stack");
	for (int i = 0; i < RS_MAX_VDSO_VMAS; i++) {
		const struct rs_vdso_vma *v = &img->h->vdso_vmas[i];
		if (v->kind && v->start < hi && lo < v->end)
			return rs_refuse(why, "address conflict", "stack");
	}
	return 1;
}

/* The resume gadget must be where the image says: ld.so is the same file, so
 * the live copy (an exported file: the snapshot's, mapped by the kernel) has
 * the same bytes at the same offset. */
static int check_gadget(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	rs_u64 off = img->h->syscall_ret_off;
	if (off > live->ldso_size || live->ldso_size - off < 3)
		return rs_refuse(why, "corrupt image: resume gadget", 0);
	const rs_u8 *g = (const rs_u8 *)(live->at_base + off);
	if (g[0] != 0x0f || g[1] != 0x05 || g[2] != 0xc3)
		return rs_refuse(why, "corrupt image: resume gadget", 0);
	if (!rs_aux(&live->aux, AT_RANDOM))
		return rs_refuse(why, "auxv entry missing", "AT_RANDOM");
	return 1;
}

static int check_ldso(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	if (!check_gadget(img, live, why))
		return 0;
	if (img->files[0].dev != live->exe_dev || img->files[0].ino != live->exe_ino)
		return rs_refuse(why, "executable changed", 0);
	return 1;
}

int rs_check_live(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	return check_machine(img, live, why) && check_vdso(img, live, why) && check_cpu(img, live, why) && check_env(img, live, why) &&
	       check_patches(img, live, why) && check_stack(img, live, why) && check_ldso(img, live, why);
}

/* An exported file carries its libraries and runs without ld.so: no file,
 * environment variable of ld.so's or live ld.so to compare against. What
 * remains is what the kernel hands this exec: the vDSO the snapshot's
 * pointers lead into, the stack limit libc sized its thread stacks from, the
 * initial stack the patches point into. The CPU is the stub's to check
 * (export.c: CPUID against the export's). */
int rs_check_exported(const struct rs_image *img, const struct rs_live *live, struct rs_why *why)
{
	const struct rs_header *h = img->h;
	if (!check_vdso(img, live, why))
		return rs_refuse(why, "kernel differs: its vdso is not the export's", h->kernel_release);
	if (live->rlimit_stack != h->rlimit_stack && !rs_stacksize_patchable(img, live))
		return rs_refuse(why, "stack limit differs from the export's", 0);
	return check_patches(img, live, why) && check_stack(img, live, why) && check_gadget(img, live, why);
}
