using System.Buffers.Binary;
using System.Numerics;
using Resident.Elf;
using Resident.Format;
using Resident.Proc;
using Resident.Trace;

namespace Resident.Snapshots;

/// <summary>
/// The init level (docs/init-level.md): a snapshot of the process stopped at main's first
/// instruction, after the constructor run, with every word that differs per exec found by
/// meaning and patched at restore, and what the constructors depended on stamped.
/// </summary>
public static partial class SnapshotBuilder
{
    /// <summary>
    /// The init-level snapshot of <paramref name="p"/>, stopped at main by <paramref name="run"/>
    /// (<see cref="ConstructorRunResult.At"/>), from its link-level snapshot <paramref name="link"/>
    /// (the machine, ld.so and thread facts, which the constructors do not change). Throws
    /// RefusalException with a one-line reason when the constructors' result cannot be proven
    /// the same for every exec.
    /// </summary>
    public static Snapshot BuildAtMain(IStoppedProcess p, Snapshot link, ConstructorRunResult run)
    {
        var deps = run.Init;
        if (deps.Refusals.Count > 0)   // every reason, in the order met, on one line
            throw new RefusalException(string.Join("; ", deps.Refusals));
        if (run.At is not StopRegisters at || run.Main is not ulong main || at.Rip != main)
            throw new RefusalException("the constructors did not reach main under the tracer");
        var maps = ProcMaps.Read(p.Pid);
        var stackVma = maps.FirstOrDefault(m => m.Name == "[stack]")
            ?? throw new RefusalException("no [stack] mapping at main");
        ulong argc = link.Header.OldStackArgc;
        if (at.Rsp >= argc || argc - at.Rsp > ImageFormat.FrameMax || at.Rsp < stackVma.Start || at.Rsp % 8 != 0)
            throw new RefusalException($"main's frame is not within {ImageFormat.FrameMax} bytes below argc (rsp 0x{at.Rsp:x}, argc at 0x{argc:x})");
        var block = new byte[stackVma.End - argc];
        p.ReadMemory(argc, block);
        var stack = InitialStack.Parse(argc, block);
        var frame = new byte[argc - at.Rsp];
        p.ReadMemory(at.Rsp, frame);

        var files = new FileTable(p.ProgramPath);
        var regions = BuildRegions(p, maps, files, heap: true);
        var stackRange = new AddressRange(stackVma.Start, stackVma.End);
        var chunks = regions.Where(r => r.Pages != null).SelectMany(r => r.Pages!.Select((page, i) =>
                new PointerClassifier.Chunk(r.Start + (ulong)i * ImageFormat.PageSize, page, r.Name)))
            .Append(new PointerClassifier.Chunk(at.Rsp, frame, FramesName)).ToList();
        var patches = PointerClassifier.Scan(chunks, stackRange, stack, belowArgc: true)
            .Select(x => AsBasename(x, stack, block)).ToList();
        var guard = ReadWord(p, link.Header.FsBase + TcbPointerGuard);
        var taken = patches.Select(x => x.Addr).ToHashSet();
        patches.AddRange(Mangled(chunks, guard, CodeOrZero(regions, link.Header), stackRange, argc, taken));
        var site = FindMainCaller(p, at, main);
        patches.Add(ArgcCount(site, at.Rsp, frame));
        var libcData = ConstructorRun.LibcData(link);
        var early = p.Syscalls.Where(c => InitDependencies.IsTcacheKey(c, a => libcData.Any(r => a >= r.Start && a < r.End))).Select(c => c.Args[0]);
        patches.AddRange(Reseeded(chunks, deps.Reseed.Concat(early).Distinct().ToList(), patches, p));
        patches.AddRange(CanaryCopies(chunks, ReadWord(p, link.Header.FsBase + TcbCanary), link.Header.FsBase, patches));
        regions = MarkPatched(regions, patches.Where(x => !(x.Addr >= at.Rsp && x.Addr < argc)).ToList());

        var header = link.Header;
        header.Level = ImageFormat.LevelInit;
        header.CaptureTimeNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        header.FrameAddr = at.Rsp;
        header.FrameResume = site.Resume;
        (header.MmStartBrk, header.MmBrk) = Break(p, maps);
        header.HeapWord = 0;
        header.HeapPrefault = 0;
        header.StacksizeWord = FindStacksizeWord(regions, header.RlimitStack);
        CheckProgramHeaders(header, regions);
        AddDependencies(files, p.ProbedAbsent, p.Opened);
        foreach (var path in deps.Files)
            files.AddStampOrAbsent(path);
        foreach (var path in deps.Absent)
            files.AddAbsent(path);

        // the program, its capture environment and CPU facts are the link snapshot's; memory and files are main's
        return link with
        {
            Header = header,
            Files = files.Entries,
            Regions = regions,
            Patches = patches,
            EnvDeps = EnvironmentDependencies(deps.Environment, p.Environment),
            Frame = frame,
            // The constructors' code pages are what the link level populates, for constructors
            // that run after it; here they have run. Populating them anyway cost clang-format
            // ~0.9 ms more than main's own faults (docs/benchmarks.md, "The init level").
            Prefault = [],
            KernelOps = deps.KernelOps,
        };
    }

    internal const ulong TcbPointerGuard = 0x30;   // restore.h RS_TCB_GUARD
    internal const ulong TcbCanary = 0x28;   // restore.h RS_TCB_CANARY
    const string FramesName = "the frames below main";

    static ulong ReadWord(IStoppedProcess p, ulong addr)
    {
        Span<byte> w = stackalloc byte[8];
        p.ReadMemory(addr, w);
        return BinaryPrimitives.ReadUInt64LittleEndian(w);
    }

    /// <summary>
    /// A pointer into argv[i] at the offset where its last '/' ends is, by meaning, the
    /// program's short name (glibc's program_invocation_short_name): in another exec it is the
    /// same distance into nothing, so it becomes "the basename of argv[i]".
    /// </summary>
    static Patch AsBasename(Patch x, InitialStack stack, byte[] block)
    {
        if (x.Kind != ImageFormat.PatchArgString || x.Delta <= 0)
            return x;
        var range = stack.ArgStrings[(int)x.Index];
        var text = block.AsSpan((int)(range.Start - stack.ArgcAddr), (int)(range.End - range.Start - 1));
        return text.LastIndexOf((byte)'/') + 1 == x.Delta ? x with { Kind = ImageFormat.PatchArgBasename, Delta = 0 } : x;
    }

    /// <summary>Is an address code of the snapshot (its executable regions, the vdso) or 0: what glibc keeps mangled.</summary>
    static Func<ulong, bool> CodeOrZero(IReadOnlyList<Region> regions, RsHeader h)
    {
        var code = regions.Where(r => (r.Prot & MapsEntry.ProtExec) != 0).Select(r => (r.Start, r.End)).ToList();
        for (int i = 0; i < ImageFormat.MaxVdsoVmas; i++)
            if (h.VdsoVmas[i] is { Kind: ImageFormat.VdsoVdso } v)
                code.Add((v.Start, v.End));
        return a => a == 0 || code.Any(c => a >= c.Start && a < c.End);
    }

    /// <summary>
    /// The words glibc keeps mangled with the pointer guard (PTR_MANGLE: rol(v ^ guard, 17)):
    /// the atexit handlers the constructors registered, the setjmp buffer below main. Each one
    /// whose demangled value is code, 0 or a stack address becomes a patch that mangles the same
    /// value with the guard of the exec, which the takeover draws afresh as at the link level.
    /// A word of any other meaning demangles to such a value by chance with odds under 2^-40. In
    /// the frames below main, where the setjmp buffer is, a small number is one too (rbp, mangled).
    /// </summary>
    static List<Patch> Mangled(IReadOnlyList<PointerClassifier.Chunk> chunks, ulong guard, Func<ulong, bool> codeOrZero,
        AddressRange stack, ulong argc, HashSet<ulong> taken)
    {
        var found = new List<Patch>();
        foreach (var chunk in chunks)
        {
            var span = chunk.Bytes.Span;
            for (int i = 0; i + 8 <= span.Length; i += 8)
            {
                ulong addr = chunk.Addr + (ulong)i;
                ulong v = BitOperations.RotateRight(BinaryPrimitives.ReadUInt64LittleEndian(span[i..]), 17) ^ guard;
                if (v >> 47 != 0 || taken.Contains(addr))
                    continue;
                // the setjmp buffer below main saves rbp mangled, whatever it held (a small number, say)
                bool inFrame = chunk.Name == FramesName && v < 1UL << 16;
                if (codeOrZero(v) || inFrame)
                    found.Add(new Patch(addr, ImageFormat.PatchMangled, 0, (long)v));
                else if (stack.Contains(v))
                    found.Add(new Patch(addr, ImageFormat.PatchMangledArgc, 0, (long)(v - argc)));
            }
        }
        return found;
    }

    /// <summary>
    /// The words a constructor filled from getrandom that the takeover draws afresh (malloc's
    /// tcache key, <see cref="InitDependencies.Reseed"/>), and every copy of their value in the
    /// saved pages: the key glibc writes into each chunk freed into the tcache, by which it
    /// recognises a double free. All get one fresh value per exec, as in a normal start.
    /// </summary>
    static List<Patch> Reseeded(IReadOnlyList<PointerClassifier.Chunk> chunks, IReadOnlyList<ulong> words, List<Patch> patches, IStoppedProcess p)
    {
        if (words.Count > 1)
            throw new RefusalException("the constructors drew more than one random word (glibc's tcache key is one)");
        var found = new List<Patch>();
        if (words.Count == 0)
            return found;
        ulong key = ReadWord(p, words[0]);
        foreach (var chunk in chunks)
        {
            var span = chunk.Bytes.Span;
            for (int i = 0; i + 8 <= span.Length; i += 8)
                if (BinaryPrimitives.ReadUInt64LittleEndian(span[i..]) == key)
                    found.Add(new Patch(chunk.Addr + (ulong)i, ImageFormat.PatchRandom, 0, 0));
        }
        if (words[0] % 8 != 0 || !found.Any(x => x.Addr == words[0]))
            throw new RefusalException($"a constructor drew random bytes into 0x{words[0]:x}, which is not a saved word");
        var addrs = found.Select(x => x.Addr).ToHashSet();
        patches.RemoveAll(x => addrs.Contains(x.Addr));
        return found;
    }

    /// <summary>
    /// Copies of the stack protector's canary outside the thread pointer's own word (which the
    /// takeover renews): in the frames below main, and wherever a constructor kept one. The
    /// canary is random with a zero low byte, so a word equal to it is a copy by meaning; each
    /// gets this exec's canary.
    /// </summary>
    static List<Patch> CanaryCopies(IReadOnlyList<PointerClassifier.Chunk> chunks, ulong canary, ulong fsBase, List<Patch> patches)
    {
        var taken = patches.Select(x => x.Addr).ToHashSet();
        var found = new List<Patch>();
        foreach (var chunk in chunks)
        {
            var span = chunk.Bytes.Span;
            for (int i = 0; i + 8 <= span.Length; i += 8)
            {
                ulong addr = chunk.Addr + (ulong)i;
                if (BinaryPrimitives.ReadUInt64LittleEndian(span[i..]) == canary && addr != fsBase + TcbCanary && !taken.Contains(addr))
                    found.Add(new Patch(addr, ImageFormat.PatchCanary, 0, 0));
            }
        }
        return found;
    }

    /// <summary>Where main's caller loads main's arguments: found from main's return address (<see cref="MainCaller"/>).</summary>
    static MainCaller.Site FindMainCaller(IStoppedProcess p, StopRegisters at, ulong main)
    {
        ulong ret = ReadWord(p, at.Rsp);
        var code = new byte[MainCaller.WindowSize];
        p.ReadMemory(ret - (ulong)code.Length, code);
        return MainCaller.Find(code, ret, at.Rsp + 8, new MainCaller.MainCall(at.Rdi, at.Rsi, at.Rdx, main), a => ConstructorRun.ReadWord(p, a))
            ?? throw new RefusalException($"main's caller (returning to 0x{ret:x}) does not load main's arguments as glibc does");
    }

    /// <summary>The frame's copy of argc, which main's caller loads: this exec's argc at restore.</summary>
    static Patch ArgcCount(MainCaller.Site site, ulong rspAtMain, byte[] frame)
    {
        ulong slot = (ulong)((long)rspAtMain + 8 + site.ArgcOffset);
        ulong word = slot & ~7UL;
        uint index = (uint)(slot & 7);
        if (word < rspAtMain || word + 8 > rspAtMain + (ulong)frame.Length || (site.ArgcSize == 8 ? index != 0 : index is not (0 or 4)))
            throw new RefusalException($"main's caller keeps argc at 0x{slot:x}, outside its frame");
        long saved = BinaryPrimitives.ReadInt64LittleEndian(frame.AsSpan((int)(word - rspAtMain)));
        return new Patch(word, ImageFormat.PatchArgcCount, index, saved);
    }

    /// <summary>The kernel's start_brk (/proc/PID/stat field 47) and the break: libc's __curbrk, else the [heap]'s end.</summary>
    static (ulong StartBrk, ulong Brk) Break(IStoppedProcess p, IReadOnlyList<MapsEntry> maps)
    {
        var stat = ProcFs.Stat(p.Pid);
        if (stat.Length <= 47)
            throw new RefusalException($"/proc/{p.Pid}/stat has {stat.Length} fields: no start_brk");
        ulong start = stat[47];
        var heap = maps.FirstOrDefault(m => m.Name == "[heap]");
        ulong brk = heap?.End ?? start;
        if (CurbrkWord(maps) is ulong word && ConstructorRun.ReadWord(p, word) is ulong cur && cur >= start && cur <= brk)
            brk = cur;
        return (start, brk);
    }

    /// <summary>Each variable the constructors looked up: "NAME=VALUE" as the capture had it, or "NAME" when unset.</summary>
    static List<string> EnvironmentDependencies(IReadOnlyList<string> names, IReadOnlyList<string> environment) =>
        names.Where(n => n.Length > 0 && !n.Contains('='))
            .Select(n => environment.FirstOrDefault(e => e.StartsWith(n + "=", StringComparison.Ordinal)) ?? n)
            .Distinct(StringComparer.Ordinal).ToList();
}
