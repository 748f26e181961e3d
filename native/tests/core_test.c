/*
 * core_test.c - host test of the restore core, built with libc and
 * sanitizers: `make -C native test`.
 *
 * Validator (restore.c): builds a small synthetic image in memory, checks
 * that it is accepted, that each kind of live difference is refused with the
 * right reason, and that random corruption (checksum recomputed, so the
 * parser must rely on its bounds checks alone) is refused or accepted without
 * any out-of-bounds read.
 * Planner (plan.c): rs_prepare on the synthetic image and fake live
 * facts; checks the arguments the routine would get (maps, pokes, unmaps,
 * vdso moves, fds, texts) without ever running the routine.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../restore.c"
#include "../files.c"
#include "../plan.c"
#include "../routine.c"

#define DATA_OFF 8192u
#define EXE_LO 0x100000ull
#define LDSO_BASE 0x200000ull
#define DATA_LO 0x300000ull
#define TCB 0x302000ull
#define RODATA_LO 0x400000ull

static unsigned char image[DATA_OFF];
static rs_u64 meta_size;
static int failures;

#define EXPECT(cond, ...)                                                                                                                  \
	do {                                                                                                                               \
		if (!(cond)) {                                                                                                             \
			failures++;                                                                                                        \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                               \
			fprintf(stderr, __VA_ARGS__);                                                                                      \
			fputc('\n', stderr);                                                                                               \
		}                                                                                                                          \
	} while (0)

static rs_u32 add_string(rs_u64 *at, const char *s)
{
	struct rs_header *h = (struct rs_header *)image;
	rs_u32 off = (rs_u32)(*at - h->strings_offset);
	strcpy((char *)image + *at, s);
	*at += strlen(s) + 1;
	return off;
}

static void seal(void)
{
	struct rs_header *h = (struct rs_header *)image;
	h->checksum = image_checksum(image, h->meta_size);
}

static unsigned char vdso[8192] __attribute__((aligned(4096)));
static unsigned char ldso[16384] __attribute__((aligned(4096)));

/* Layout: header | files[3] | regions[5] | patches[3] | env[1] | prefault[2] | cpu blob | mask | strings */
static void build_image(void)
{
	struct rs_header *h = (struct rs_header *)image;
	memset(image, 0, sizeof image);
	memcpy(h->magic, RS_MAGIC, 8);
	h->version = RS_VERSION;
	h->header_size = sizeof *h;
	h->level = RS_LEVEL_LINK;
	h->data_offset = DATA_OFF;
	h->file_size = DATA_OFF + 4096;
	rs_u64 at = sizeof *h;
	h->files = (struct rs_table){at, 3, sizeof(struct rs_file)};
	at += 3 * sizeof(struct rs_file);
	h->regions = (struct rs_table){at, 5, sizeof(struct rs_region)};
	at += 5 * sizeof(struct rs_region);
	h->patches = (struct rs_table){at, 3, sizeof(struct rs_patch)};
	at += 3 * sizeof(struct rs_patch);
	h->env = (struct rs_table){at, 1, 4};
	at += 8;
	h->prefault = (struct rs_table){at, 2, sizeof(struct rs_span)};
	at += 2 * sizeof(struct rs_span);
	h->env_deps = (struct rs_table){at, 0, 4};
	h->kernel_ops = (struct rs_table){at, 0, sizeof(struct rs_kernel_op)};
	h->cpu_features_len = 64;
	h->cpu_features_off = 0x1000;
	h->cpu_features_blob = at;
	at += 64;
	h->cpu_features_mask = at;
	memset(image + at, 0xff, 64);
	image[at + 27] = 0; /* the APIC id byte */
	at += 64;
	h->strings_offset = at;
	image[at++] = 0; /* "" at offset 0 */
	struct rs_file *f = (struct rs_file *)(image + h->files.offset);
	f[0] = (struct rs_file){add_string(&at, "/usr/bin/prog"), RS_FILE_MAPPED, 1, 2, 16384, 3, 4};
	f[1] = (struct rs_file){add_string(&at, "/lib64/ld.so"), RS_FILE_MAPPED, 1, 3, 16384, 3, 4};
	f[2] = (struct rs_file){add_string(&at, "/opt/lib/libx.so"), RS_FILE_ABSENT, 0, 0, 0, 0, 0};
	struct rs_region *r = (struct rs_region *)(image + h->regions.offset);
	r[0] = (struct rs_region){EXE_LO, EXE_LO + 8192, 0, 5, RS_REGION_FILE, 0, 0, 0, 0};
	r[1] = (struct rs_region){LDSO_BASE, LDSO_BASE + 16384, 0, 5, RS_REGION_FILE, 1, 0, 0, 0};
	r[2] = (struct rs_region){DATA_LO, DATA_LO + 4096, DATA_OFF, 1, RS_REGION_IMAGE, 0, RS_RF_PATCHED, 0, 0};
	r[3] = (struct rs_region){DATA_LO + 4096, DATA_LO + 16384, 0, 3, RS_REGION_ZERO, 0, 0, 0, 0};
	r[4] = (struct rs_region){RODATA_LO, RODATA_LO + 8192, 8192, 1, RS_REGION_FILE, 0, 0, 0, 0}; /* not populated whole */
	struct rs_span *sp = (struct rs_span *)(image + h->prefault.offset);
	sp[0] = (struct rs_span){EXE_LO, EXE_LO + 4096}; /* in code, populated whole: not passed on */
	sp[1] = (struct rs_span){RODATA_LO + 4096, RODATA_LO + 8192};
	struct rs_patch *p = (struct rs_patch *)(image + h->patches.offset);
	p[0] = (struct rs_patch){DATA_LO, RS_PATCH_ARGC, 0, 0};
	p[1] = (struct rs_patch){DATA_LO + 8, RS_PATCH_ENV_STRING, add_string(&at, "LD_LIBRARY_PATH"), 16};
	p[2] = (struct rs_patch){DATA_LO + 16, RS_PATCH_AUXV_VALUE, AT_PLATFORM, 0};
	((rs_u32 *)(image + h->env.offset))[0] = add_string(&at, "LD_LIBRARY_PATH=/opt/lib");
	h->strings_size = at - h->strings_offset;
	h->meta_size = (at + 7) & ~7ull;
	meta_size = h->meta_size;
	strcpy(h->platform, "x86_64");
	strcpy(h->kernel_release, "6.18.0");
	strcpy(h->kernel_version, "#1 SMP");
	h->hwcap = 0x178bfbff;
	h->vdso_vmas[0] = (struct rs_vdso_vma){0x7f0000000000ull, 0x7f0000004000ull, RS_VDSO_VVAR, 0};
	h->vdso_vmas[1] = (struct rs_vdso_vma){0x7f0000004000ull, 0x7f0000006000ull, RS_VDSO_VDSO, 0};
	for (unsigned i = 0; i < sizeof vdso; i++)
		vdso[i] = (unsigned char)(i * 7);
	h->vdso_hash = memory_checksum(vdso, sizeof vdso);
	h->ldso_base = LDSO_BASE;
	h->syscall_ret_off = 0x2000;
	ldso[0x2000] = 0x0f, ldso[0x2001] = 0x05, ldso[0x2002] = 0xc3;
	for (int i = 0; i < 64; i++)
		ldso[0x1000 + i] = image[h->cpu_features_blob + i] = (unsigned char)(i + 1);
	h->resume_pc = h->resume_cont = LDSO_BASE + 0x100;
	h->user_entry = h->at_entry = EXE_LO + 0x40;
	h->at_phdr = EXE_LO + 0x40;
	h->at_phent = 56;
	h->at_phnum = 9;
	h->at_base = LDSO_BASE;
	h->at_sysinfo_ehdr = 0x7f0000004000ull;
	h->rlimit_stack = 8u << 20;
	h->fs_base = TCB;
	h->tid_address = TCB + 0x2d0;
	h->rseq_addr = TCB + 0x400;
	h->rseq_len = 32;
	h->rseq_sig = 0x53053053;
	h->heap_word = TCB + 0x600;
	h->heap_prefault = 0x21000;
	seal();
}

static char *envp[] = {"HOME=/root", "LD_LIBRARY_PATH=/opt/lib", "LD_AUDIT=/x/libresident.so", 0};
static char *argv[] = {"prog", 0};
static rs_u64 auxv[20];
static unsigned char rnd[16];

static void build_live(struct rs_live *l)
{
	int n = 0;
	auxv[n++] = AT_HWCAP, auxv[n++] = 0x178bfbff;
	auxv[n++] = AT_PLATFORM, auxv[n++] = (rs_uptr) "x86_64";
	auxv[n++] = AT_RANDOM, auxv[n++] = (rs_uptr)rnd;
	auxv[n++] = AT_NULL, auxv[n++] = 0;
	memset(l, 0, sizeof *l);
	l->argc = 1;
	l->argv = argv;
	l->envp = envp;
	l->env_count = 3;
	rs_auxv_decode(&l->aux, auxv);
	l->at_base = (rs_uptr)ldso;
	l->ldso_size = sizeof ldso;
	l->sysinfo_ehdr = (rs_uptr)vdso;
	l->vdso_size = sizeof vdso;
	l->sp = 0x7ffd00000000ull;
	l->stack_end = 0x7ffd00100000ull;
	l->args_lo = 0; /* these arrays and strings are not on one stack */
	l->exe_dev = 1;
	l->exe_ino = 2;
	l->kernel_release = "6.18.0";
	l->kernel_version = "#1 SMP";
	l->rlimit_stack = 8u << 20;
	l->rlimit_data = l->rlimit_as = ~0ull;
}

static int parse(struct rs_image *img, struct rs_why *why)
{
	/* A heap copy of exactly meta_size bytes, so ASan sees any overread. */
	unsigned char *copy = malloc(meta_size);
	memcpy(copy, image, meta_size);
	int ok = rs_image_parse(img, copy, meta_size, DATA_OFF + 4096, why);
	if (!ok)
		free(copy);
	return ok;
}

static void test_accepts(void)
{
	struct rs_image img;
	struct rs_why why = {0};
	struct rs_live live;
	build_image();
	build_live(&live);
	EXPECT(parse(&img, &why), "parse refused: %s", why.reason);
	EXPECT(rs_check_live(&img, &live, &why), "live refused: %s %s", why.reason, why.detail ? why.detail : "");
	free((void *)img.meta);
}

static const char *live_refusal(void (*change)(struct rs_live *))
{
	struct rs_image img;
	struct rs_why why = {0};
	struct rs_live live;
	build_image();
	build_live(&live);
	change(&live);
	if (!parse(&img, &why))
		return "parse";
	int ok = rs_check_live(&img, &live, &why);
	free((void *)img.meta);
	return ok ? "accepted" : why.reason;
}

static char *env_more[] = {"LD_PRELOAD=/x.so", "LD_LIBRARY_PATH=/opt/lib", 0};
static char *env_less[] = {"HOME=/", 0};
static char *env_other[] = {"LD_LIBRARY_PATH=/opt/lib2", 0};
static char *env_ok[] = {"LD_BIND_NOW=1", "MALLOCX=1", "LD_LIBRARY_PATH=/opt/lib", 0};
static void env_added(struct rs_live *l) { l->envp = env_more, l->env_count = 2; }
static void env_removed(struct rs_live *l) { l->envp = env_less, l->env_count = 1; }
static void env_changed(struct rs_live *l) { l->envp = env_other, l->env_count = 1; }
static void env_ignored(struct rs_live *l) { l->envp = env_ok, l->env_count = 3; }
static char *env_audit2[] = {"LD_AUDIT=/x/other.so:/x/libresident.so", "LD_LIBRARY_PATH=/opt/lib", 0};
static char *env_audit1[] = {"LD_AUDIT=:/x/libresident.so::", "LD_LIBRARY_PATH=/opt/lib", 0};
static void audit_two(struct rs_live *l) { l->envp = env_audit2, l->env_count = 2; }
static void audit_one(struct rs_live *l) { l->envp = env_audit1, l->env_count = 2; }
static void kernel(struct rs_live *l) { l->kernel_version = "#2 SMP"; }
static void rlimit(struct rs_live *l) { l->rlimit_stack = ~0ull; }
static void cpu(struct rs_live *l) { ldso[0x1005] ^= 1; }
static void apic(struct rs_live *l) { ldso[0x1000 + 27] ^= 0x40; }
static void vdso_bytes(struct rs_live *l) { vdso[100] ^= 1; }
static void hwcap(struct rs_live *l) { auxv[1] ^= 2; }
/* a stack just above the snapshot's data: its growth zone covers the regions */
static void stack(struct rs_live *l) { l->sp = DATA_LO + 0x100000; }
static void exe(struct rs_live *l) { l->exe_ino = 9; }
/* the ENV_STRING patch (envp[1] + 16) would point below the exec's arguments */
static void args_above(struct rs_live *l) { l->args_lo = (rs_uptr)envp[1] + 17; }

static void test_live_refusals(void)
{
	EXPECT(!strcmp(live_refusal(env_added), "env differs"), "LD_PRELOAD added");
	EXPECT(!strcmp(live_refusal(env_removed), "env differs"), "LD_LIBRARY_PATH removed");
	EXPECT(!strcmp(live_refusal(env_changed), "env differs"), "LD_LIBRARY_PATH changed");
	EXPECT(!strcmp(live_refusal(env_ignored), "accepted"), "LD_BIND_NOW and MALLOCX are not tracked");
	EXPECT(!strcmp(live_refusal(audit_two), "other audit modules in LD_AUDIT"), "two audit modules");
	EXPECT(!strcmp(live_refusal(audit_one), "accepted"), "empty LD_AUDIT entries are skipped");
	EXPECT(!strcmp(live_refusal(kernel), "kernel changed"), "kernel");
	EXPECT(!strcmp(live_refusal(rlimit), "stack limit differs"), "ulimit -s");
	EXPECT(!strcmp(live_refusal(cpu), "cpu differs"), "cpu");
	ldso[0x1005] ^= 1;
	EXPECT(!strcmp(live_refusal(apic), "accepted"), "apic id is masked");
	ldso[0x1000 + 27] ^= 0x40;
	EXPECT(!strcmp(live_refusal(vdso_bytes), "vdso differs"), "vdso");
	vdso[100] ^= 1;
	EXPECT(!strcmp(live_refusal(hwcap), "cpu differs"), "hwcap");
	EXPECT(!strcmp(live_refusal(stack), "address conflict"), "stack");
	EXPECT(!strcmp(live_refusal(exe), "executable changed"), "exe");
	EXPECT(!strcmp(live_refusal(args_above), "corrupt image: patch value"), "patch value outside the arguments");
}

/* Fields whose bad values a byte flip rarely produces. */
static void test_bounds(void)
{
	struct rs_image img;
	struct rs_why why = {0};
	struct rs_header *h = (struct rs_header *)image;
	build_image();
	h->cpu_features_len = 4000; /* more than the metadata: must not wrap */
	seal();
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: cpu features"), "cpu len > meta");
	build_image();
	h->regions.count = 0;
	seal();
	EXPECT(!parse(&img, &why), "no regions");
	build_image();
	h->files.count = 0xffffffffu;
	seal();
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: table"), "huge count");
	build_image();
	h->strings_size = ~0ull;
	seal();
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: strings"), "huge strings");
	static const rs_u64 bad_heap[][2] = {{TCB + 0x604, 0x21000},
					     {TCB + 0x600, 0x21001},
					     {TCB + 0x600, RS_HEAP_PREFAULT_MAX + RS_PAGE},
					     {0, 0x21000},
					     {EXE_LO + 0x40, 0x21000}};
	for (unsigned i = 0; i < sizeof bad_heap / sizeof bad_heap[0]; i++) {
		build_image();
		h->heap_word = bad_heap[i][0];
		h->heap_prefault = bad_heap[i][1];
		seal();
		EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: heap"), "bad heap fields %u", i);
	}
	/* prefault spans: unaligned, empty, out of order, across regions, in a written or an image region */
	static const struct rs_span bad_spans[][2] = {{{EXE_LO, EXE_LO + 4096}, {RODATA_LO + 4096, RODATA_LO + 6000}},
						      {{EXE_LO, EXE_LO}, {RODATA_LO + 4096, RODATA_LO + 8192}},
						      {{RODATA_LO, RODATA_LO + 4096}, {EXE_LO, EXE_LO + 4096}},
						      {{EXE_LO, EXE_LO + 4096}, {EXE_LO, EXE_LO + 8192}},
						      {{EXE_LO, EXE_LO + 4096}, {RODATA_LO + 4096, RODATA_LO + 12288}},
						      {{EXE_LO, EXE_LO + 4096}, {DATA_LO + 4096, DATA_LO + 8192}},
						      {{EXE_LO, EXE_LO + 4096}, {DATA_LO, DATA_LO + 4096}}};
	for (unsigned i = 0; i < sizeof bad_spans / sizeof bad_spans[0]; i++) {
		build_image();
		memcpy(image + h->prefault.offset, bad_spans[i], sizeof bad_spans[i]);
		seal();
		EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: prefault span"), "bad prefault spans %u", i);
	}
	build_image();
	h->prefault.count = RS_PREFAULT_MAX + 1;
	seal();
	EXPECT(!parse(&img, &why), "too many prefault spans");
	build_image();
	((struct rs_patch *)(image + h->patches.offset))[0].addr += 4;
	seal();
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: patch outside writable region"), "unaligned patch");
	/* header fields that repeat the tables, each off by a little (checksum resealed) */
	static const struct {
		size_t field;
		rs_u64 delta;
		const char *reason;
	} inconsistent[] = {
	    {offsetof(struct rs_header, ldso_base), 0x1000, "corrupt image: ld.so base"},
	    {offsetof(struct rs_header, at_base), 0x1000, "corrupt image: ld.so base"},
	    {offsetof(struct rs_header, user_entry), 0x10, "corrupt image: entry point"},
	    {offsetof(struct rs_header, at_phdr), 0x2000, "corrupt image: program headers"},
	    {offsetof(struct rs_header, at_sysinfo_ehdr), 0x1000, "corrupt image: vdso address"},
	    {offsetof(struct rs_header, tid_address), 0x1000, "corrupt image: thread state"},
	};
	for (unsigned i = 0; i < sizeof inconsistent / sizeof inconsistent[0]; i++) {
		build_image();
		*(rs_u64 *)(image + inconsistent[i].field) += inconsistent[i].delta;
		seal();
		EXPECT(!parse(&img, &why) && !strcmp(why.reason, inconsistent[i].reason), "inconsistent header %u: %s", i,
		       why.reason ? why.reason : "accepted");
	}
}

static void test_checksum(void)
{
	struct rs_image img;
	struct rs_why why = {0};
	build_image();
	image[300] ^= 1;
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: checksum"), "flipped byte");
}

/* ---- planner ---- */

static char *plan_envp[] = {"HOME=/root", "LD_LIBRARY_PATH=/opt/lib", 0};

/* The synthetic image (as built) parsed and planned against fake live facts;
 * a refusal is counted as a failure. */
static int plan(struct rs_image *img, struct rs_live *live, struct rs_args **args, int *fds)
{
	struct rs_why why = {0};
	struct rs_texts t = {"/usr/bin/prog", 2, {1, 2}};
	if (!parse(img, &why)) {
		fprintf(stderr, "plan: parse refused: %s\n", why.reason);
		failures++;
		return 0;
	}
	build_live(live);
	live->argv = argv;
	live->envp = plan_envp;
	live->env_count = 2;
	live->fs_base = 0x7f1234567000ull;
	auxv[6] = AT_PHDR, auxv[7] = 0x40; /* differs from the image: rewritten */
	auxv[8] = AT_ENTRY, auxv[9] = EXE_LO + 0x40; /* equal to the image's: left alone */
	auxv[10] = AT_NULL, auxv[11] = 0;
	rs_auxv_decode(&live->aux, auxv);
	fds[0] = 7, fds[1] = 8, fds[2] = -1;
	*args = rs_prepare(img, live, fds, 6, &t, &why);
	if (!*args) {
		fprintf(stderr, "plan: prepare refused: %s %s\n", why.reason, why.detail ? why.detail : "");
		failures++;
	}
	return *args != 0;
}

static int in_range(rs_u64 a, rs_u64 lo, rs_u64 hi) { return a >= lo && a < hi; }

/* The unmaps and the kept ranges tile [0, TASK_SIZE) exactly. */
static void expect_tiling(const struct rs_args *a, struct rs_range keep[3])
{
	rs_u64 at = 0;
	for (rs_u32 i = 0; i < a->unmap_count; i++) {
		const struct rs_range *u = &a->unmaps[i];
		EXPECT(u->start < u->end, "empty unmap %u", i);
		EXPECT(u->start >= at, "unmaps overlap or unsorted at %u", i);
		for (int k = 0; k < 3; k++)
			EXPECT(u->end <= keep[k].start || u->start >= keep[k].end, "unmap %u hits kept range %d", i, k);
		at = u->end;
	}
	rs_u64 covered = 0;
	for (rs_u32 i = 0; i < a->unmap_count; i++)
		covered += a->unmaps[i].end - a->unmaps[i].start;
	rs_u64 kept = 0; /* the three kept ranges are disjoint in these tests */
	for (int k = 0; k < 3; k++)
		kept += keep[k].end - keep[k].start;
	EXPECT(covered + kept == RS_TASK_SIZE, "unmaps + kept != user space");
}

static void test_plan(void)
{
	struct rs_image img;
	struct rs_live live;
	struct rs_args *a;
	int fds[3];
	build_image();
	if (!plan(&img, &live, &a, fds))
		return;
	/* maps: one per region, patched region writable first, the right fds */
	EXPECT(a->map_count == 5, "map count %u", a->map_count);
	EXPECT(a->span_count == 1 && a->spans[0].start == RODATA_LO + 4096 && a->spans[0].end == RODATA_LO + 8192,
	       "prefault spans of regions not populated whole, only (%u)", a->span_count);
	EXPECT(a->maps[0].fd == 7 && a->maps[1].fd == 8 && a->maps[2].fd == 6 && a->maps[3].fd == -1, "map fds");
	EXPECT(a->maps[2].prot == 3 && a->maps[2].final_prot == 1, "patched region mapped writable, then read-only");
	EXPECT(a->maps[3].flags & RS_MAP_ANONYMOUS && !(a->maps[0].flags & RS_MAP_ANONYMOUS), "anonymous only for ZERO");
	/* file segments: populated when read-only and small (code, rodata), never when writable */
	for (int i = 0; i < 2; i++)
		EXPECT(!!(a->maps[i].flags & RS_MAP_POPULATE) == (!(a->maps[i].prot & RS_PROT_WRITE) && a->maps[i].len <= (4u << 20)),
		       "file region %d populate policy", i);
	EXPECT(a->maps[2].flags & RS_MAP_POPULATE && a->maps[3].flags & RS_MAP_POPULATE, "populate image and small zero regions");
	/* pokes: 3 patches, AT_PHDR (AT_ENTRY is equal), canary, guard */
	EXPECT(a->poke_count == 6, "poke count %u", a->poke_count);
	EXPECT(a->pokes[0].addr == DATA_LO && a->pokes[0].value == (rs_uptr)argv - 8, "ARGC patch");
	EXPECT(a->pokes[1].value == (rs_uptr)plan_envp[1] + 16, "ENV_STRING patch");
	EXPECT(a->pokes[2].value == (rs_uptr) "x86_64" || !strcmp((char *)a->pokes[2].value, "x86_64"), "AUXV_VALUE patch");
	EXPECT(a->pokes[3].addr == (rs_uptr)&auxv[7] && a->pokes[3].value == EXE_LO + 0x40, "AT_PHDR rewrite");
	EXPECT(a->pokes[4].addr == TCB + 0x28 && (a->pokes[4].value & 0xff) == 0, "canary, low byte zero");
	EXPECT(a->pokes[5].addr == TCB + 0x30, "pointer guard");
	/* fds 6, 7, 8 are one run: one close_range */
	EXPECT(a->fd_count == 3 && a->close_lo == 6 && a->close_hi == 8, "close range %u-%u", a->close_lo, a->close_hi);
	/* placement clear of every region and of the stack zone */
	for (rs_u32 i = 0; i < img.region_count; i++)
		EXPECT(a->self + a->self_len <= img.regions[i].start || a->self >= img.regions[i].end, "mapping hits region %u", i);
	/* vdso: far from the live block: one direct move per VMA */
	/* vdso: this kernel maps a new one at the capture address; the live one goes with the rest */
	EXPECT(a->vdso_map == 0x7f0000000000ull && a->move_count == 0, "a new vdso block, no moves");
	rs_u64 lo, hi;
	rs_stack_zone(&live, &lo, &hi);
	struct rs_range stack = {rs_page_down(live.sp) - 0x10000, live.stack_end};
	struct rs_range keep[3] = {{a->self, a->self + a->self_len}, stack, {stack.end, stack.end}};
	fill_unmaps(a, keep); /* sorts keep the same way */
	expect_tiling(a, keep);
	rs_abandon(a);
	free((void *)img.meta);

	/* a kernel without ARCH_MAP_VDSO_64: far from the live block, one direct move per VMA */
	rs_test_no_vdso_map = 1;
	build_image();
	if (!plan(&img, &live, &a, fds))
		return;
	EXPECT(a->vdso_map == 0 && a->move_count == 2 && a->moves[1].from == (rs_uptr)vdso && a->moves[1].to == 0x7f0000004000ull,
	       "direct moves");
	struct rs_range keep2[3] = {{a->self, a->self + a->self_len}, stack, {(rs_uptr)vdso - 0x4000, (rs_uptr)vdso + 0x2000}};
	fill_unmaps(a, keep2);
	expect_tiling(a, keep2);
	rs_test_no_vdso_map = 0;
	EXPECT(!strcmp(a->line, "resident: restored /usr/bin/prog (takeover ") && a->line_len == strlen(a->line), "line");
	EXPECT(!strncmp(a->fatal, "resident: fatal /usr/bin/prog: ", a->fatal_len), "fatal prefix");
	rs_abandon(a);
	free((void *)img.meta);
}

/* Another soft stack limit: accepted only where the image says where libc
 * keeps the thread stack size it derived, which the takeover rewrites (but
 * not below 1 MiB, where glibc's own minimum would apply). */
static void test_stack_limit(void)
{
	struct rs_image img;
	struct rs_why why = {0};
	struct rs_live live;
	struct rs_header *h = (struct rs_header *)image;
	static const struct {
		rs_u64 word, limit;
		const char *expect;
	} cases[] = {{0, 64u << 20, "stack limit differs"},
		     {TCB + 0x608, 64u << 20, "accepted"},
		     {TCB + 0x608, ~0ull, "accepted"}, /* no limit: glibc's default size, RS_STACKSIZE_UNLIMITED */
		     {TCB + 0x608, 512u << 10, "stack limit differs"}};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		build_image();
		h->stacksize_word = cases[i].word;
		seal();
		EXPECT(parse(&img, &why), "stack limit case %u: parse refused: %s", i, why.reason);
		build_live(&live);
		live.rlimit_stack = cases[i].limit;
		int ok = rs_check_live(&img, &live, &why);
		EXPECT(!strcmp(ok ? "accepted" : why.reason, cases[i].expect), "stack limit case %u: %s", i, ok ? "accepted" : why.reason);
		free((void *)img.meta);
	}
	build_image();
	h->stacksize_word = TCB + 0x60c; /* not a word */
	seal();
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: thread stack size"), "unaligned stack size word");
}

/* ulimit -d: the takeover's own mapping shrinks, then the heap prefault goes,
 * then the exec starts normally. */
static void test_plan_limits(void)
{
	struct rs_image img;
	struct rs_live live;
	struct rs_args *a;
	int fds[3];
	build_image();
	if (!plan(&img, &live, &a, fds))
		return;
	rs_u64 wide = a->self_len, data = 0;
	for (rs_u32 i = 0; i < img.region_count; i++)
		if (img.regions[i].prot & RS_PROT_WRITE || img.regions[i].flags & RS_RF_PATCHED)
			data += img.regions[i].end - img.regions[i].start;
	EXPECT(a->heap_prefault == 0x21000, "heap prefault with no limit");
	rs_abandon(a);
	free((void *)img.meta);

	build_image();
	struct rs_why why = {0};
	EXPECT(parse(&img, &why), "parse");
	build_live(&live);
	live.argv = argv, live.envp = plan_envp, live.env_count = 2;
	struct rs_texts t = {"/usr/bin/prog", 0, {0, 0}};
	live.rlimit_data = data + wide + 0x21000 - RS_PAGE; /* the widened mapping does not fit */
	a = rs_prepare(&img, &live, fds, 6, &t, &why);
	EXPECT(a && a->self_len < wide && a->heap_prefault == 0x21000, "a smaller mapping, heap kept");
	rs_u64 tight = a ? a->self_len : 0;
	if (a)
		rs_abandon(a);
	live.rlimit_data = data + tight; /* nor the heap */
	a = rs_prepare(&img, &live, fds, 6, &t, &why);
	EXPECT(a && a->heap_prefault == 0, "the heap prefault left to malloc");
	if (a)
		rs_abandon(a);
	live.rlimit_data = data;
	a = rs_prepare(&img, &live, fds, 6, &t, &why);
	EXPECT(!a && !strcmp(why.reason, "resource limits"), "no room at all: a normal start");
	live.rlimit_data = ~0ull;
	live.rlimit_as = 4096;
	a = rs_prepare(&img, &live, fds, 6, &t, &why);
	EXPECT(!a && !strcmp(why.reason, "resource limits"), "ulimit -v");
	free((void *)img.meta);
}

/* Live and capture vdso blocks overlap: every VMA goes through the bounce area. */
static void test_plan_bounce(void)
{
	struct rs_image img;
	struct rs_live live;
	struct rs_args *a;
	int fds[3];
	struct rs_header *h = (struct rs_header *)image;
	build_image();
	rs_u64 live_block = (rs_uptr)vdso - 0x4000, old = live_block + 0x2000;
	h->vdso_vmas[0] = (struct rs_vdso_vma){old, old + 0x4000, RS_VDSO_VVAR, 0};
	h->vdso_vmas[1] = (struct rs_vdso_vma){old + 0x4000, old + 0x6000, RS_VDSO_VDSO, 0};
	h->at_sysinfo_ehdr = old + 0x4000;
	seal();
	rs_test_no_vdso_map = 1;
	int planned = plan(&img, &live, &a, fds);
	rs_test_no_vdso_map = 0;
	if (!planned)
		return;
	rs_u64 bounce = a->moves[0].to; /* page-aligned, inside the mapping, room for the whole block */
	EXPECT(a->move_count == 4, "bounce move count %u", a->move_count);
	EXPECT(bounce % 4096 == 0 && bounce > a->self && bounce + 0x6000 <= a->self + a->self_len, "bounce area in the mapping");
	EXPECT(a->moves[0].from == live_block, "vvar to bounce");
	EXPECT(a->moves[1].from == (rs_uptr)vdso && a->moves[1].to == bounce + 0x4000, "vdso to bounce");
	EXPECT(a->moves[2].from == bounce && a->moves[2].to == old, "vvar home");
	EXPECT(a->moves[3].from == bounce + 0x4000 && a->moves[3].to == old + 0x4000, "vdso home");
	EXPECT(!in_range(old, a->self, a->self + a->self_len), "mapping clear of the old block");
	rs_abandon(a);
	free((void *)img.meta);
}

/* Random corruption with a valid checksum: only the bounds checks stand
 * between the parser and an out-of-bounds read (ASan reports those). */
/* An accepted mutant also goes through the planner (real mmap of the takeover
 * mapping, then abandoned): its tables must not make it write out of bounds,
 * and the plan must keep the mapping clear of every region. */
static unsigned fuzz_plan(struct rs_image *img, struct rs_live *live)
{
	struct rs_why why = {0};
	struct rs_texts t = {"/usr/bin/prog", 0, {0, 0}};
	int fds[64];
	if (img->file_count > 64)
		return 0;
	for (rs_u32 i = 0; i < img->file_count; i++)
		fds[i] = 7 + (int)i;
	live->fs_base = 0x7f1234567000ull;
	struct rs_args *a = rs_prepare(img, live, fds, 6, &t, &why);
	if (!a)
		return 0;
	for (rs_u32 i = 0; i < img->region_count; i++)
		EXPECT(a->self + a->self_len <= img->regions[i].start || a->self >= img->regions[i].end, "fuzz: mapping hits region %u", i);
	EXPECT(a->map_count == img->region_count, "fuzz: map count");
	rs_abandon(a);
	return 1;
}

/* The init level: frames below main in the metadata, the patch kinds of
 * version 6 and the variables the constructors looked up. */
static rs_u64 fake_stack[64] __attribute__((aligned(16)));

static void test_init_level(void)
{
	struct rs_header *h = (struct rs_header *)image;
	build_image();
	rs_u64 at = h->meta_size;
	h->level = RS_LEVEL_INIT;
	h->old_stack_argc = 0x7ffc00010000ull;
	h->frame_addr = h->old_stack_argc - 32;
	h->frame_blob = at;
	h->frame_resume = EXE_LO + 0x80;
	h->heap_word = h->heap_prefault = 0;
	h->mm_start_brk = h->mm_brk = 0x560000000000ull;
	rs_u64 *frame = (rs_u64 *)(image + at);
	frame[0] = 0x1111, frame[1] = 0x2222, frame[2] = 0x0000000100003333ull, frame[3] = 0x4444;
	at += 32;
	/* patches: the three of build_image, then four of version 6 */
	struct rs_patch *p = (struct rs_patch *)(image + at);
	memcpy(p, image + h->patches.offset, 3 * sizeof *p);
	p[3] = (struct rs_patch){h->frame_addr + 16, RS_PATCH_ARGC_COUNT, 4, 0x0000000100003333ll};
	p[4] = (struct rs_patch){h->frame_addr + 8, RS_PATCH_MANGLED_ARGC, 0, -24};
	p[5] = (struct rs_patch){DATA_LO + 24, RS_PATCH_MANGLED, 0, (rs_i64)(EXE_LO + 0x40)};
	p[6] = (struct rs_patch){DATA_LO + 32, RS_PATCH_ARG_BASENAME, 0, 0};
	h->patches = (struct rs_table){at, 7, sizeof(struct rs_patch)};
	at += 7 * sizeof *p;
	h->env_deps = (struct rs_table){at, 2, 4};
	rs_u32 *deps = (rs_u32 *)(image + at);
	at += 8;
	/* kernel state: a SIGINT handler in the executable's code, the umask */
	h->kernel_ops = (struct rs_table){at, 2, sizeof(struct rs_kernel_op)};
	struct rs_kernel_op *k = (struct rs_kernel_op *)(image + at);
	k[0] = (struct rs_kernel_op){RS_KOP_SIGACTION, 2, {EXE_LO + 0x40, 0x04000000, EXE_LO + 0x60, 0}};
	k[1] = (struct rs_kernel_op){RS_KOP_UMASK, 0, {077, 0, 0, 0}};
	at += 2 * sizeof *k;
	/* the string table moves last, so that the new strings can follow it */
	memmove(image + at, image + h->strings_offset, h->strings_size);
	h->strings_offset = at;
	at += h->strings_size;
	deps[0] = add_string(&at, "HOME=/root");
	deps[1] = add_string(&at, "NOT_SET_HERE");
	h->strings_size = at - h->strings_offset;
	h->meta_size = (at + 7) & ~7ull;
	meta_size = h->meta_size;
	seal();

	struct rs_image img;
	struct rs_why why = {0};
	struct rs_live live;
	build_live(&live);
	static char prog[] = "/usr/local/bin/prog";
	char *args[] = {prog, "x", 0};
	fake_stack[32] = 2;
	memcpy(&fake_stack[33], args, sizeof args);
	live.argc = 2;
	live.argv = (char **)&fake_stack[33];
	live.args_lo = (rs_uptr)&fake_stack[32];
	live.stack_end = (rs_uptr)&fake_stack[64];
	live.sp = (rs_uptr)&fake_stack[0];
	EXPECT(parse(&img, &why), "init: parse refused: %s", why.reason);
	if (!img.frame)
		return;
	EXPECT(img.frame_len == 32 && rs_frame_at(&img, &live) == live.args_lo - 32, "init: frames below main");
	EXPECT(rs_check_live(&img, &live, &why), "init: live refused: %s %s", why.reason, why.detail ? why.detail : "");
	rs_u64 canary, guard;
	rs_live_guards(&live, &canary, &guard);
	const struct rs_patch *q = img.patches;
	EXPECT(rs_patch_addr(&img, &live, &q[3]) == live.args_lo - 16, "init: a patch in the frames moves with them");
	EXPECT(rs_patch_value(&img, &live, &q[3], 0) == 0x0000000200003333ull, "init: argc count");
	rs_u64 m = rs_patch_value(&img, &live, &q[4], 0);
	EXPECT(((m >> 17 | m << 47) ^ guard) == live.args_lo - 24, "init: mangled stack pointer");
	m = rs_patch_value(&img, &live, &q[5], 0);
	EXPECT(((m >> 17 | m << 47) ^ guard) == EXE_LO + 0x40, "init: mangled code pointer");
	EXPECT(rs_patch_value(&img, &live, &q[6], 0) == (rs_uptr)prog + 15, "init: basename");
	EXPECT(rs_patch_addr(&img, &live, &q[5]) == DATA_LO + 24, "init: a patch outside the frames stays");
	/* a variable the constructors read, changed or set since: no restore */
	static char *other[] = {"HOME=/home/u", "LD_LIBRARY_PATH=/opt/lib", "LD_AUDIT=/x/libresident.so", 0};
	EXPECT(rs_check_env_deps(&img, &live, &why), "init: variables as at capture refused: %s", why.reason);
	EXPECT(img.kop_count == 2 && img.kops[1].kind == RS_KOP_UMASK, "init: kernel state table");
	live.envp = other;
	EXPECT(rs_check_live(&img, &live, &why), "init: the variables the constructors read are not rs_check_live's");
	EXPECT(!rs_check_env_deps(&img, &live, &why) && !strcmp(why.reason, "env differs"), "init: HOME changed");
	static char *more[] = {"HOME=/root", "LD_LIBRARY_PATH=/opt/lib", "LD_AUDIT=/x/libresident.so", "NOT_SET_HERE=1", 0};
	live.envp = more;
	live.env_count = 4;
	EXPECT(!rs_check_env_deps(&img, &live, &why) && !strcmp(why.reason, "env differs"), "init: NOT_SET_HERE set");
	free((void *)img.meta);
	/* a signal no handler can be set for, a fallback image that is not at the end */
	k[0].arg = 9;
	seal();
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: kernel state"), "init: sigaction(SIGKILL) accepted");
	k[0].arg = 2;
	h->fallback_offset = DATA_OFF;
	h->fallback_size = 4096 - 1;
	seal();
	EXPECT(!parse(&img, &why) && !strcmp(why.reason, "corrupt image: fallback"), "init: a fallback short of the file's end accepted");
	h->fallback_offset = h->fallback_size = 0;
	/* the link level carries none of it */
	h->level = RS_LEVEL_LINK;
	seal();
	EXPECT(!parse(&img, &why), "init fields at the link level accepted");
}

static void test_fuzz(unsigned rounds)
{
	struct rs_live live;
	unsigned accepted = 0, planned = 0;
	srand(1);
	for (unsigned i = 0; i < rounds; i++) {
		struct rs_image img;
		struct rs_why why = {0};
		build_image();
		build_live(&live);
		int flips = 1 + rand() % 4;
		for (int k = 0; k < flips; k++) {
			rs_u64 at = (rs_u64)rand() % meta_size;
			image[at] = rand() % 3 ? (unsigned char)rand() : (rand() % 2 ? 0xff : 0);
		}
		((struct rs_header *)image)->meta_size = meta_size; /* keep the buffer size honest */
		seal();
		if (parse(&img, &why)) {
			accepted++;
			if (rs_check_live(&img, &live, &why))
				planned += fuzz_plan(&img, &live);
			free((void *)img.meta);
		}
	}
	printf("fuzz: %u rounds, %u still valid, %u planned\n", rounds, accepted, planned);
}

int main(int argc, char **argv_)
{
	test_accepts();
	test_live_refusals();
	test_checksum();
	test_bounds();
	test_plan();
	test_plan_limits();
	test_stack_limit();
	test_plan_bounce();
	test_init_level();
	test_fuzz(argc > 1 ? (unsigned)atoi(argv_[1]) : 200000);
	if (failures)
		return 1;
	printf("core_test: ok\n");
	return 0;
}
