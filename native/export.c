/*
 * export.c - the entry point of an exported file (`resident export`): the
 * third caller of the restore core, beside the hook and core_test.
 *
 * The kernel has mapped everything at exec: the snapshot's regions are the
 * file's PT_LOAD segments, at their addresses, with the libraries' pages in
 * them; this stub and the image's metadata are segments of their own
 * (export.h). There is no ld.so and no library file to open. So the stub
 * gathers this exec's facts from its initial stack, checks what the
 * snapshot froze and a machine can change (the CPU features, the vDSO, the
 * stack limit), and hands the core a plan with no file: the routine maps
 * only the zero regions, unmaps only the stub, and does everything else as
 * for the hook (argv/env/auxv patches, canary and pointer guard from this
 * exec's AT_RANDOM, the vDSO moved where the snapshot expects it, thread
 * state, rseq, kernel state), then resumes where the hook resumes.
 *
 * There is no normal start to fall back to: a refusal is one line on stderr
 * and exit status 127, as exec's own for a program that cannot run.
 *
 * Run by itself (not exported: no metadata), it prints the CPU words of
 * struct rs_export, one hexadecimal value per line: the exporter records
 * them (one home for which words count: rs_export below).
 */
#include "elf.h"
#include "export.h"
#include "restore.h"
#include "text.h"

#define RS_EXIT_REFUSED 127
#define RS_PR_GET_SECCOMP 21

/* The CPU words that choose glibc's string and math functions, and the
 * register state the kernel enables for them. Leaf 1 ECX bit 31 (running
 * under a hypervisor) says nothing about the instructions. */
__attribute__((used)) struct rs_export rs_export = {
    .magic = RS_EXPORT_MAGIC,
    .version = RS_EXPORT_VERSION,
    .cpuid_count = 10,
    .cpuid =
	{
	    {1, 0, RS_CPUID_ECX, 0x7fffffffu, 0, 0},
	    {1, 0, RS_CPUID_EDX, 0xffffffffu, 0, 0},
	    {7, 0, RS_CPUID_EBX, 0xffffffffu, 0, 0},
	    {7, 0, RS_CPUID_ECX, 0xffffffffu, 0, 0},
	    {7, 0, RS_CPUID_EDX, 0xffffffffu, 0, 0},
	    {7, 1, RS_CPUID_EAX, 0xffffffffu, 0, 0},
	    {0xd, 1, RS_CPUID_EAX, 0xffffffffu, 0, 0},
	    {0x80000001u, 0, RS_CPUID_ECX, 0xffffffffu, 0, 0},
	    {0x80000001u, 0, RS_CPUID_EDX, 0xffffffffu, 0, 0},
	    {0, 0, RS_CPUID_XCR0, 0xffffffffu, 0, 0},
	},
};

/* Names for the bits users know, by word (index in rs_export.cpuid). */
static const struct {
	unsigned char word, bit;
	char name[14];
} feature_names[] = {
    {0, 0, "SSE3"},	   {0, 1, "PCLMULQDQ"},	    {0, 9, "SSSE3"},	     {0, 12, "FMA"},	      {0, 13, "CMPXCHG16B"},
    {0, 19, "SSE4.1"},	   {0, 20, "SSE4.2"},	    {0, 22, "MOVBE"},	     {0, 23, "POPCNT"},	      {0, 25, "AES"},
    {0, 26, "XSAVE"},	   {0, 27, "OSXSAVE"},	    {0, 28, "AVX"},	     {0, 29, "F16C"},	      {0, 30, "RDRAND"},
    {1, 15, "CMOV"},	   {1, 23, "MMX"},	    {1, 24, "FXSR"},	     {1, 25, "SSE"},	      {1, 26, "SSE2"},
    {2, 3, "BMI1"},	   {2, 4, "HLE"},	    {2, 5, "AVX2"},	     {2, 8, "BMI2"},	      {2, 9, "ERMS"},
    {2, 11, "RTM"},	   {2, 16, "AVX512F"},	    {2, 17, "AVX512DQ"},     {2, 18, "RDSEED"},	      {2, 19, "ADX"},
    {2, 28, "AVX512CD"},   {2, 29, "SHA"},	    {2, 30, "AVX512BW"},     {2, 31, "AVX512VL"},     {3, 1, "AVX512VBMI"},
    {3, 6, "AVX512VBMI2"}, {3, 8, "GFNI"},	    {3, 9, "VAES"},	     {3, 10, "VPCLMULQDQ"},   {3, 11, "AVX512VNNI"},
    {4, 4, "FSRM"},	   {5, 4, "AVX-VNNI"},	    {6, 0, "XSAVEOPT"},	     {6, 1, "XSAVEC"},	      {7, 0, "LAHF"},
    {7, 5, "LZCNT"},	   {7, 8, "PREFETCHW"},	    {7, 16, "FMA4"},	     {8, 27, "RDTSCP"},	      {9, 1, "SSE state"},
    {9, 2, "AVX state"},   {9, 5, "AVX-512 state"}, {9, 6, "AVX-512 state"}, {9, 7, "AVX-512 state"},
};

static void cpuid(rs_u32 leaf, rs_u32 subleaf, rs_u32 r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(subleaf));
}

/* Every word of rs_export on this CPU, in its order. CPUID traps to the
 * hypervisor in a virtual machine (~1.6 us here): each (leaf, subleaf) is
 * asked once, the words of one leaf being listed together. */
static void cpu_words(rs_u32 out[RS_EXPORT_CPUID_MAX])
{
	rs_u32 r[4] = {0}, max_basic[4], max_ext[4], leaf = ~0u, subleaf = ~0u;
	cpuid(0, 0, max_basic);
	cpuid(0x80000000u, 0, max_ext);
	for (rs_u32 i = 0; i < rs_export.cpuid_count && i < RS_EXPORT_CPUID_MAX; i++) {
		const struct rs_export_cpuid *c = &rs_export.cpuid[i];
		rs_u32 want = c->reg == RS_CPUID_XCR0 ? 1 : c->leaf, sub = c->reg == RS_CPUID_XCR0 ? 0 : c->subleaf;
		if (want != leaf || sub != subleaf) {
			leaf = want, subleaf = sub;
			r[0] = r[1] = r[2] = r[3] = 0;
			if (leaf <= (leaf & 0x80000000u ? max_ext[0] : max_basic[0]))
				cpuid(leaf, subleaf, r);
		}
		if (c->reg != RS_CPUID_XCR0)
			out[i] = r[c->reg & 3];
		else if (r[2] & 1u << 27) { /* OSXSAVE; without it xgetbv faults, and no state is enabled */
			rs_u32 lo, hi;
			__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
			out[i] = lo;
		} else
			out[i] = 0;
	}
}

/* ---- output ---- */

/* "resident: PATH: REASON[: DETAIL]" and exit 127. */
static __attribute__((noreturn)) void refuse_exit(const char *path, const char *reason, const char *detail)
{
	char line[RS_PATH_MAX + 256];
	char *end = line + sizeof line - 1, *p = rs_put(rs_put(rs_put(rs_put(line, end, "resident: "), end, path), end, ": "), end, reason);
	if (detail)
		p = rs_put(rs_put(p, end, ": "), end, detail);
	*p++ = '\n';
	rs_write(2, line, (rs_u64)(p - line));
	rs_exit_group(RS_EXIT_REFUSED);
}

static void print_cpu_words(void)
{
	char text[RS_EXPORT_CPUID_MAX * 12], *p = text, *end = text + sizeof text - 1;
	rs_u32 now[RS_EXPORT_CPUID_MAX];
	cpu_words(now);
	for (rs_u32 i = 0; i < rs_export.cpuid_count && i < RS_EXPORT_CPUID_MAX; i++)
		p = rs_put(rs_put_number(p, end, now[i], 16), end, "\n");
	rs_write(1, text, (rs_u64)(p - text));
}

/* "exported on a CPU with AVX2; this one has none" for the first missing bit. */
static void check_cpu(const char *path)
{
	rs_u32 now[RS_EXPORT_CPUID_MAX];
	cpu_words(now);
	for (rs_u32 i = 0; i < rs_export.cpuid_count && i < RS_EXPORT_CPUID_MAX; i++) {
		const struct rs_export_cpuid *c = &rs_export.cpuid[i];
		rs_u32 missing = c->value & c->mask & ~now[i];
		if (!missing)
			continue;
		rs_u32 bit = 0;
		while (!(missing >> bit & 1))
			bit++;
		char text[96], *end = text + sizeof text - 1, *p = rs_put(text, end, "exported on a CPU with ");
		const char *name = 0;
		for (rs_u32 k = 0; k < sizeof feature_names / sizeof feature_names[0]; k++)
			if (feature_names[k].word == i && feature_names[k].bit == bit)
				name = feature_names[k].name;
		if (name)
			p = rs_put(p, end, name);
		else
			p = rs_put_number(rs_put(rs_put_number(rs_put(p, end, "cpuid 0x"), end, c->leaf, 16), end, " bit "), end,
					  bit + 32 * c->reg, 10);
		p = rs_put(p, end, "; this one has none");
		*p = 0;
		refuse_exit(path, text, 0);
	}
}

/* ---- this exec ---- */

/* ld.so's extent in the snapshot: its file's regions from its base. */
static rs_u64 ldso_size(const struct rs_image *img)
{
	const struct rs_header *h = img->h;
	rs_u64 end = h->ldso_base;
	rs_u32 file = ~0u;
	for (rs_u32 i = 0; i < img->region_count; i++)
		if (img->regions[i].start <= h->resume_pc && h->resume_pc < img->regions[i].end)
			file = img->regions[i].file;
	for (rs_u32 i = 0; i < img->region_count; i++)
		if (img->regions[i].kind == RS_REGION_FILE && img->regions[i].file == file && img->regions[i].end > end)
			end = img->regions[i].end;
	return end - h->ldso_base;
}

static int debug_level(const struct rs_live *l)
{
	for (rs_u64 i = 0; i < l->env_count; i++)
		if (rs_memeq(l->envp[i], "RESIDENT_DEBUG=", 15))
			return l->envp[i][15] >= '1' && l->envp[i][15] <= '9' ? l->envp[i][15] - '0' : 0;
	return 0;
}

/* Under a seccomp filter: the calls every takeover makes (rs_takeover_denied),
 * and two that the hook knows allowed from ld.so's own use of them and a
 * static program may never make, asked harmlessly (an unaligned mprotect:
 * EINVAL; reading the thread pointer). */
static void check_filter(const char *path, struct rs_live *l)
{
	rs_u64 fs;
	if (rs_prctl(RS_PR_GET_SECCOMP, 0, 0, 0) == 0)
		return;
	l->filtered = 1;
	if (rs_takeover_denied() || rs_denied(rs_mprotect(1, 0, 0)) || rs_denied(rs_arch_prctl(RS_ARCH_GET_FS, (rs_uptr)&fs)))
		refuse_exit(path, "a system call the restore needs is denied (seccomp)", 0);
}

__attribute__((noreturn, used)) void rs_export_start(rs_u64 *sp)
{
	struct rs_live l = {0};
	struct rs_image img;
	struct rs_why why = {0, 0, 0};
	struct rs_utsname uts;
	l.argc = sp[0];
	l.argv = (char **)(sp + 1);
	l.envp = l.argv + l.argc + 1;
	while (l.envp[l.env_count])
		l.env_count++;
	rs_auxv_decode(&l.aux, (rs_u64 *)(l.envp + l.env_count + 1));
	if (!rs_export.meta) {
		print_cpu_words();
		rs_exit_group(0);
	}
	const char *path = (const char *)rs_aux(&l.aux, AT_EXECFN);
	path = path ? path : l.argc ? l.argv[0] : "?";
	if (rs_aux(&l.aux, AT_SECURE))
		refuse_exit(path, "setuid, setgid or file capabilities: an exported program never runs so", 0);
	check_cpu(path);
	if (!rs_image_parse(&img, (const void *)rs_export.meta, rs_export.meta_size, rs_export.file_size, &why))
		refuse_exit(path, why.reason, why.detail);
	struct rs_texts t = {path, debug_level(&l), {0, 0}, 0};
	if (t.debug >= 2)
		rs_clock_gettime(RS_CLOCK_MONOTONIC, &t.t0);
	l.at_base = img.h->ldso_base;
	l.ldso_size = ldso_size(&img);
	l.sysinfo_ehdr = rs_aux(&l.aux, AT_SYSINFO_EHDR);
	if (l.sysinfo_ehdr)
		rs_elf_loaded(l.sysinfo_ehdr, &l.vdso_size);
	l.sp = (rs_uptr)__builtin_frame_address(0);
	l.stack_end = rs_stack_top(l.argv, l.argc, l.envp, l.env_count, &l.aux);
	l.args_lo = (rs_uptr)sp;
	l.euid = (rs_u32)rs_aux(&l.aux, AT_EUID);
	rs_u64 lim[2], data[2], as[2];
	if (rs_uname(&uts) || rs_getrlimit(RS_RLIMIT_STACK, lim) || rs_getrlimit(RS_RLIMIT_DATA, data) || rs_getrlimit(RS_RLIMIT_AS, as))
		refuse_exit(path, "uname or getrlimit failed", 0);
	l.kernel_release = uts.release;
	l.kernel_version = uts.version;
	l.rlimit_stack = lim[0];
	l.rlimit_data = data[0];
	l.rlimit_as = as[0];
	check_filter(path, &l);
	/* The routine registers the snapshot's rseq area; asked with no area, a
	 * kernel that has rseq says EINVAL */
	if (img.h->rseq_addr && rs_rseq(0, 0, RS_RSEQ_FLAG_UNREGISTER, 0) == -RS_ENOSYS)
		refuse_exit(path, "this kernel has no rseq, the export's had", 0);
	if (!rs_check_exported(&img, &l, &why) || !rs_check_env_deps(&img, &l, &why))
		refuse_exit(path, why.reason, why.detail);
	l.exported = 1;
	l.self_start = rs_export.self_start;
	l.self_end = rs_export.self_end;
	l.brk_from = rs_export.brk_from;
	rs_u64 plan_words = rs_plan_size(&img) / 8;
	rs_u64 plan[plan_words]; /* below this frame: the routine's arguments, in place */
	for (rs_u64 i = 0; i < plan_words; i++)
		plan[i] = 0;
	l.plan_buf = plan;
	struct rs_args *args = rs_prepare(&img, &l, 0, -1, &t, &why);
	if (!args)
		refuse_exit(path, why.reason, why.detail);
	rs_start(args, &why); /* returns only if it could not start */
	refuse_exit(path, why.reason, why.detail);
}

/* The kernel starts here with rsp at argc. The stub runs 12 KiB lower: an
 * init-level image's frames below main are rebuilt right under argc, at
 * least a page clear of the stub's own (plan.c). */
__asm__(".text\n"
	".globl rs_export_entry\n"
	".type rs_export_entry, @function\n"
	"rs_export_entry:\n"
	"\txor %ebp, %ebp\n"
	"\tmov %rsp, %rdi\n"
	"\tsub $0x3000, %rsp\n"
	"\tand $-16, %rsp\n"
	"\tcall rs_export_start\n"
	"\thlt\n");
