using Resident.Elf;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;
using Resident.Trace;

namespace Resident.Snapshots;

/// <summary>
/// Turns a process stopped at <c>_dl_start_user</c> into a <see cref="Snapshot"/>: which
/// pages to map from which file, which to store, which words to patch, and every fact the
/// restorer validates. Read-only towards the process; refuses with a RefusalException
/// whenever something could not be reproduced faithfully.
/// </summary>
public static partial class SnapshotBuilder
{
    public const string LdSoCache = "/etc/ld.so.cache";
    public const string LdSoPreload = "/etc/ld.so.preload";

    // Kernel mappings that are not regions: the live stack and vdso block of the new exec
    // replace them ([vvar]..[vdso] move as one block, see header.vdso_vmas).
    static readonly Dictionary<string, uint> VdsoKinds = new()
    {
        ["[vvar]"] = ImageFormat.VdsoVvar,
        ["[vvar_vclock]"] = ImageFormat.VdsoVvarVclock,
        ["[vdso]"] = ImageFormat.VdsoVdso,
    };

    public static Snapshot Build(IStoppedProcess p)
    {
        if (p.Registers.Rip != p.ResumePc)
            throw new RefusalException($"process is not at the resume point (rip 0x{p.Registers.Rip:x}, expected 0x{p.ResumePc:x})");
        var maps = ProcMaps.Read(p.Pid);
        var auxv = Auxv.Read(p.Pid);
        var stackVma = maps.FirstOrDefault(m => m.Name == "[stack]")
            ?? throw new RefusalException("no [stack] mapping at the stop point");
        var stack = ReadInitialStack(p, stackVma);

        var files = new FileTable(p.ProgramPath);
        var regions = BuildRegions(p, maps, files);
        var stackRange = new AddressRange(stackVma.Start, stackVma.End);
        var patches = PointerClassifier.Scan(
            regions.Where(r => r.Pages != null).SelectMany(r => r.Pages!.Select((page, i) =>
                new PointerClassifier.Chunk(r.Start + (ulong)i * ImageFormat.PageSize, page, r.Name))),
            stackRange, stack);
        regions = MarkPatched(regions, patches);

        var header = new RsHeader
        {
            Level = ImageFormat.LevelLink,
            Flags = p.LazyBind ? ImageFormat.HeaderFlagLazyBind : 0,
            CaptureTimeNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100,
        };
        var (cpu, mask) = FillLdso(ref header, p, maps, auxv, files);
        FillMachine(ref header, p, maps, auxv);
        FillResumeState(ref header, p, auxv, stackVma);
        FillHeap(ref header, p, maps);
        CheckProgramHeaders(header, regions);
        FillLayout(ref header, p);
        header.StacksizeWord = FindStacksizeWord(regions, header.RlimitStack);
        AddDependencies(files, p.ProbedAbsent, p.Opened);

        return new Snapshot
        {
            Header = header,
            ExePath = p.ProgramPath,
            Files = files.Entries,
            Regions = regions,
            Patches = patches,
            Env = EnvRule.Select(p.Environment),
            CpuFeatures = cpu,
            CpuFeaturesMask = mask,
        };
    }

    /// <summary>
    /// files[] as <see cref="Build"/> makes it (the executable, mapped files in address order,
    /// stamps and absences), without building anything else: what a refresh compares to decide
    /// whether an image whose stamps changed (an apt run rebuilt /etc/ld.so.cache) still holds.
    /// </summary>
    public static IReadOnlyList<FileEntry> FileStamps(IStoppedProcess p)
    {
        var files = new FileTable(p.ProgramPath);
        foreach (var vma in ProcMaps.Read(p.Pid))
            if (IsRegion(vma) && vma.IsFile)
                files.Mapped(vma);
        AddDependencies(files, p.ProbedAbsent, p.Opened);
        return files.Entries;
    }

    /// <summary>ld.so's base, its cpu_features (bytes and mask) and its syscall gadget.</summary>
    static (byte[] Cpu, byte[] Mask) FillLdso(ref RsHeader h, IStoppedProcess p, IReadOnlyList<MapsEntry> maps, Auxv auxv, FileTable files)
    {
        ulong ldsoBase = auxv.Get(Auxv.AT_BASE);
        var facts = LdsoFacts.Read(LdsoPath(maps, ldsoBase, files));
        var extent = new byte[facts.CpuFeaturesMaxLen];
        p.ReadMemory(ldsoBase + facts.CpuFeaturesOff, extent);
        var cpu = extent[..LdsoFacts.CpuFeaturesEnd(extent, a => maps.Any(m => m.Start <= a && a < m.End))];
        h.LdsoBase = ldsoBase;
        h.CpuFeaturesOff = facts.CpuFeaturesOff;
        h.SyscallRetOff = facts.SyscallRetOff;
        return (cpu, LdsoFacts.CpuFeaturesMask(cpu));
    }

    static InitialStack ReadInitialStack(IStoppedProcess p, MapsEntry stackVma)
    {
        ulong rsp = p.Registers.Rsp;
        if (rsp < stackVma.Start || rsp >= stackVma.End)
            throw new RefusalException($"rsp 0x{rsp:x} is not inside [stack]");
        var block = new byte[stackVma.End - rsp];
        p.ReadMemory(rsp, block);
        return InitialStack.Parse(rsp, block);
    }

    static List<Region> BuildRegions(IStoppedProcess p, IReadOnlyList<MapsEntry> maps, FileTable files, bool heap = false)
    {
        using var builder = new RegionBuilder(p);
        // Sized once: regrowing a list of ~50k pages touches megabytes of fresh memory.
        var pages = new List<RegionBuilder.PageInfo>(maps.Sum(m => (int)(m.Length / ImageFormat.PageSize)));
        foreach (var vma in maps)
        {
            if (!(heap && vma.Name == "[heap]") && !IsRegion(vma))
                continue;
            if (vma.Shared)
                throw new RefusalException($"shared mapping at 0x{vma.Start:x} ({vma.Name}) cannot be restored privately");
            FileEntry? file = null;
            uint index = 0;
            if (vma.IsFile)
                (file, index) = files.Mapped(vma);
            pages.AddRange(builder.Classify(vma, file, index));
        }
        return RegionBuilder.Merge(RegionBuilder.AbsorbZeroRuns(pages));
    }

    /// <summary>False for the kernel's own mappings; throws for ones a restore cannot reproduce.</summary>
    static bool IsRegion(MapsEntry vma)
    {
        if (vma.Name is "[stack]" or "[vsyscall]" || VdsoKinds.ContainsKey(vma.Name))
            return false;
        if (vma.Name == "[heap]")
            throw new RefusalException("a [heap] exists at the stop point: the program break cannot be restored");
        if (vma.IsSpecial && !vma.Name.StartsWith("[anon:", StringComparison.Ordinal))
            throw new RefusalException($"unsupported mapping {vma.Name} at 0x{vma.Start:x}");
        if (!vma.IsFile && vma.Name.StartsWith('/'))
            throw new RefusalException($"mapping of {vma.Name} has no inode");
        return true;
    }

    static List<Region> MarkPatched(List<Region> regions, List<Patch> patches)
    {
        var patched = new HashSet<int>();
        foreach (var patch in patches)
            patched.Add(regions.FindIndex(r => r.Contains(patch.Addr)));
        return regions.Select((r, i) => patched.Contains(i) ? r with { Flags = r.Flags | ImageFormat.RegionFlagPatched } : r).ToList();
    }

    static string LdsoPath(IReadOnlyList<MapsEntry> maps, ulong ldsoBase, FileTable files)
    {
        var vma = maps.FirstOrDefault(m => m.Start <= ldsoBase && ldsoBase < m.End && m.IsFile)
            ?? throw new RefusalException($"AT_BASE 0x{ldsoBase:x} is not a file mapping: no dynamic loader");
        if (!files.IsMapped(vma.Name))
            throw new RefusalException($"the dynamic loader {vma.Name} is not mapped from its file");
        return vma.Name;
    }

    /// <summary>The stamps and absences that make ld.so's library search come out the same.</summary>
    /// Paths ld.so opened are stamped as it named them: a library opened through a symlink
    /// (libfoo.so.1 -> libfoo.so.1.2.3) is mapped under its target's name, and a package upgrade
    /// that repoints the symlink leaves the old target untouched — only the symlink's stat shows it.
    static void AddDependencies(FileTable files, IReadOnlyList<string> probedAbsent, IReadOnlyList<string> opened)
    {
        files.AddStampOrAbsent(LdSoCache);
        files.AddStampOrAbsent(LdSoPreload);
        foreach (var path in opened)
            if (path.StartsWith('/'))
                files.AddStampOrAbsent(path);
        foreach (var path in probedAbsent)
            if (path.StartsWith('/')) // the hook stats absolute paths only; the tracer reports those
                files.AddAbsent(path);
    }

    static void FillMachine(ref RsHeader h, IStoppedProcess p, IReadOnlyList<MapsEntry> maps, Auxv auxv)
    {
        h.Hwcap = auxv.Get(Auxv.AT_HWCAP);
        h.Hwcap2 = auxv.Find(Auxv.AT_HWCAP2) ?? 0;
        var (release, version) = Interop.Uname();
        unsafe
        {
            fixed (byte* platform = h.Platform) FixedText.Set(platform, 16, ReadPlatform(p, auxv), "AT_PLATFORM");
            fixed (byte* r = h.KernelRelease) FixedText.Set(r, 65, release, "kernel release");
            fixed (byte* v = h.KernelVersion) FixedText.Set(v, 65, version, "kernel version");
        }
        var block = maps.Where(m => VdsoKinds.ContainsKey(m.Name)).OrderBy(m => m.Start).ToList();
        if (block.Count > ImageFormat.MaxVdsoVmas)
            throw new RefusalException($"{block.Count} vvar/vdso mappings, the format holds {ImageFormat.MaxVdsoVmas}");
        for (int i = 0; i < block.Count; i++)
            h.VdsoVmas[i] = new RsVdsoVma { Start = block[i].Start, End = block[i].End, Kind = VdsoKinds[block[i].Name] };
        var vdso = block.FirstOrDefault(m => m.Name == "[vdso]")
            ?? throw new RefusalException("no [vdso] mapping");
        var bytes = new byte[vdso.Length];
        p.ReadMemory(vdso.Start, bytes);
        h.VdsoHash = ImageFormat.Checksum(bytes);
    }

    static string ReadPlatform(IStoppedProcess p, Auxv auxv)
    {
        if (auxv.Find(Auxv.AT_PLATFORM) is not ulong addr || addr == 0)
            return "";
        var buf = new byte[16];
        p.ReadMemory(addr, buf);
        int n = Array.IndexOf(buf, (byte)0);
        if (n < 0)
            throw new RefusalException("AT_PLATFORM string is longer than 15 bytes");
        return System.Text.Encoding.UTF8.GetString(buf, 0, n);
    }

    static void FillResumeState(ref RsHeader h, IStoppedProcess p, Auxv auxv, MapsEntry stackVma)
    {
        var k = p.Kernel;
        h.ResumePc = p.ResumePc;
        h.ResumeCont = p.ResumeCont;
        h.UserEntry = p.Registers.Rax;
        h.FsBase = p.Registers.FsBase;
        h.TidAddress = k.TidAddress;
        h.RobustHead = k.RobustHead;
        h.RobustLen = k.RobustLen;
        h.RseqAddr = k.RseqAddr;
        h.RseqLen = k.RseqLen;
        h.RseqSig = k.RseqSig;
        h.AtPhdr = auxv.Get(Auxv.AT_PHDR);
        h.AtPhent = auxv.Get(Auxv.AT_PHENT);
        h.AtPhnum = auxv.Get(Auxv.AT_PHNUM);
        h.AtEntry = auxv.Get(Auxv.AT_ENTRY);
        h.AtBase = auxv.Get(Auxv.AT_BASE);
        h.AtSysinfoEhdr = auxv.Get(Auxv.AT_SYSINFO_EHDR);
        h.OldStackArgc = p.Registers.Rsp;
        h.OldStackEnd = stackVma.End;
        h.RlimitStack = ProcLimits.StackSoftLimit(p.Pid);
    }

    /// <summary>
    /// The restorer requires AT_PHDR right after the executable's ELF header (its consistency
    /// check, docs/image-format.md); every linker puts the program headers there. An executable
    /// that does not would only ever fall back, so it is refused here with the reason.
    /// </summary>
    static void CheckProgramHeaders(RsHeader h, IReadOnlyList<Region> regions)
    {
        var first = regions.FirstOrDefault(r => r.Kind == ImageFormat.RegionFile && r.File == 0 && r.Offset == 0);
        if (first == null || h.AtPhdr != first.Start + ElfFile.HeaderSize)
            throw new RefusalException("the program headers do not follow the ELF header (e_phoff is not 64): not supported");
    }

    /// <summary>
    /// mm_* (docs/image-format.md): the executable's code and data bounds as the kernel reports
    /// them for the captured exec (/proc/PID/stat fields 26, 27, 45, 46), and where its heap
    /// begins before the random offset: the end of its last segment's memory, page-aligned.
    /// </summary>
    static void FillLayout(ref RsHeader h, IStoppedProcess p)
    {
        var stat = ProcFs.Stat(p.Pid);
        if (stat.Length <= 46)
            throw new RefusalException($"/proc/{p.Pid}/stat has {stat.Length} fields: no code and data bounds");
        var loads = Elf.ElfFile.Read(p.ProgramPath).ProgramHeaders.Where(ph => ph.Type == Elf.ElfFile.PtLoad).ToList();
        ulong bias = h.AtPhdr - ElfFile.HeaderSize - loads[0].VAddr;   // CheckProgramHeaders: AT_PHDR follows the ELF header
        h.MmStartCode = stat[26];
        h.MmEndCode = stat[27];
        h.MmStartData = stat[45];
        h.MmEndData = stat[46];
        h.MmBrkBase = ImageFormat.AlignUp(bias + loads.Max(ph => ph.VAddr + ph.MemSize), ImageFormat.PageSize);
    }

    /// <summary>
    /// stacksize_word (docs/image-format.md): where libc keeps the default thread stack size it
    /// derived from the soft stack limit before the stop point (glibc 2.34 and later do it in
    /// __libc_early_init): the one {guardsize = a page, stackaddr = 0, stacksize = the limit,
    /// page-aligned} in the saved pages. 0 when there is none (glibc before 2.34 derives it later,
    /// after the restore) or more than one, or the limit is not one a restore could rewrite.
    /// </summary>
    static ulong FindStacksizeWord(IReadOnlyList<Region> regions, ulong rlimitStack)
    {
        if (rlimitStack == ProcLimits.Infinity || rlimitStack < 1UL << 20)
            return 0;
        ulong size = ImageFormat.AlignUp(rlimitStack, ImageFormat.PageSize);
        var found = new List<ulong>();
        foreach (var r in regions.Where(r => r.Pages != null && (r.Prot & 2) != 0))
            for (int pg = 0; pg < r.Pages!.Count; pg++)
            {
                var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(r.Pages[pg].Span);
                for (int i = 2; i < words.Length; i++)   // a struct that straddles two pages is not sought
                    if (words[i] == size && words[i - 1] == 0 && words[i - 2] == ImageFormat.PageSize)
                        found.Add(r.Start + (ulong)pg * ImageFormat.PageSize + (ulong)i * 8);
            }
        return found.Count == 1 ? found[0] : 0;
    }

    // glibc's first heap extension for a small request: DEFAULT_TOP_PAD (128 KiB) + the
    // request + MINSIZE, rounded up to a page (seen as brk(cur + 0x21000) in perl, python, git).
    const ulong FirstSbrk = 0x21000;

    /// <summary>
    /// heap_word/heap_prefault (docs/image-format.md): libc's <c>__curbrk</c>, if libc is mapped
    /// and has not read the break yet, so the restorer can hand malloc's first sbrk populated
    /// pages. Without it (another libc, a break already read) the fields stay 0: an
    /// optimisation only, never a reason to refuse.
    /// </summary>
    static void FillHeap(ref RsHeader h, IStoppedProcess p, IReadOnlyList<MapsEntry> maps)
    {
        if (CurbrkWord(maps) is not ulong word || ConstructorRun.ReadWord(p, word) is not 0UL)
            return;
        h.HeapWord = word;
        h.HeapPrefault = FirstSbrk;
    }

    /// <summary>Where libc keeps the program break it last asked for (<c>__curbrk</c>): libc mapped at offset 0 plus the symbol's
    /// .dynsym value; null without such a libc or symbol.</summary>
    static ulong? CurbrkWord(IReadOnlyList<MapsEntry> maps)
    {
        var libc = maps.FirstOrDefault(m => m.IsFile && m.Offset == 0 && Elf.LibcFile.Is(m.Name));
        if (libc == null)
            return null;
        try
        {
            return Elf.DynamicSymbols.Find(File.ReadAllBytes(libc.Name), "__curbrk") is ulong offset ? libc.Start + offset : null;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            return null;
        }
    }


    /// <summary>files[]: the executable first, then mapped files in address order, then stamps and absences.</summary>
    sealed class FileTable
    {
        readonly List<FileEntry> _entries = [];
        readonly Dictionary<string, int> _byPath = new(StringComparer.Ordinal);

        public FileTable(string exe)
        {
            var entry = FileStamp.Of(exe, ImageFormat.FileStamp)
                ?? throw new RefusalException($"{exe}: vanished during capture");
            Add(entry);
        }

        public IReadOnlyList<FileEntry> Entries => _entries;

        public bool IsMapped(string path) =>
            _byPath.TryGetValue(path, out int i) && (_entries[i].Flags & ImageFormat.FileMapped) != 0;

        /// <summary>The entry of the file a VMA maps, stat'ed once and checked against the VMA's inode.</summary>
        public (FileEntry, uint) Mapped(MapsEntry vma)
        {
            if (vma.Name.EndsWith(" (deleted)", StringComparison.Ordinal))
                throw new RefusalException($"{vma.Name[..^10]} was deleted or replaced during capture");
            if (!_byPath.TryGetValue(vma.Name, out int i))
            {
                var entry = FileStamp.Of(vma.Name, ImageFormat.FileMapped)
                    ?? throw new RefusalException($"{vma.Name} vanished during capture");
                i = Add(entry);
            }
            var e = _entries[i];
            if (e.Dev != vma.Dev || e.Ino != vma.Inode)
                throw new RefusalException($"{vma.Name} changed during capture (mapped inode differs from the file now)");
            if ((e.Flags & ImageFormat.FileMapped) == 0)
                _entries[i] = e = e with { Flags = ImageFormat.FileMapped };
            return (e, (uint)i);
        }

        public void AddStampOrAbsent(string path)
        {
            if (!_byPath.ContainsKey(path))
                Add(FileStamp.Of(path, ImageFormat.FileStamp) ?? FileEntry.Absent(path));
        }

        public void AddAbsent(string path)
        {
            if (!_byPath.ContainsKey(path))
                Add(FileEntry.Absent(path));
        }

        int Add(FileEntry e)
        {
            _entries.Add(e);
            return _byPath[e.Path] = _entries.Count - 1;
        }
    }
}
