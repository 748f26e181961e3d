using System.Buffers.Binary;
using Resident.Format;
using Resident.Proc;
using Resident.Snapshots;
using Resident.Trace;

namespace Resident.Capture;

/// <summary>
/// The proof behind an init-level image (docs/init-level.md): what the constructors left at main
/// must not depend on the exec. The system calls they make are judged as they run
/// (<see cref="InitDependencies"/>); what they read without one — argv and the environment
/// walked directly, AT_RANDOM's bytes, rdtsc, which this machine cannot trap — is found by a
/// differential capture: two more runs to main with the same layout (ADDR_NO_RANDOMIZE), the
/// second with two more arguments, one more variable, and of course another pid, other random
/// bytes and a later time. Their address spaces are compared word by word; a word that differs
/// must differ by meaning the restore already patches (a pointer into the stack, a mangled
/// pointer, the tcache key, the canary and guard). A word that holds argc in each run is
/// another copy of argc (glibc's __libc_argc, a constructor's own): it becomes an argc patch
/// of the image. Any other difference refuses the init level, naming where it is.
/// </summary>
public static class InitVerification
{
    /// <summary>What the second run adds: arguments no program expects, a variable no program reads.</summary>
    public static readonly IReadOnlyList<string> CheckArguments = ["resident-init-check", "--resident-init-check"];

    /// <summary>
    /// Runs the verification and returns the patches to add to <paramref name="image"/> (the init-level
    /// snapshot of the capture itself); throws RefusalException with the first difference found.
    /// </summary>
    /// <param name="start">starts the program to ld.so's stop point with the options given (as the capture did).</param>
    public static List<Patch> Verify(Func<CaptureOptions, IStoppedProcess> start, CaptureOptions options, Snapshot image)
    {
        var (inheritedB, inheritedC) = InheritedStates(image.KernelOps);
        var (linkB, b) = AtMain(start, options with { Variant = new([], [], NoRandomize: true, inheritedB) });
        var (linkC, c) = AtMain(start, options with
        {
            Variant = new(CheckArguments, [$"RESIDENT_INIT_CHECK={Guid.NewGuid():N}"], NoRandomize: true, inheritedC),
        });
        CompareKernelOps(image.KernelOps, b.KernelOps, c.KernelOps);
        var copies = Compare(b, c, linkB, linkC);
        return copies.Select(copy => InImage(copy, b, image)).ToList();
    }

    /// <summary>Signals a verification run may ignore and block: not those the tracer or the kernel's own faults need, nor SIGCHLD.</summary>
    static readonly HashSet<int> Untouchable = [4, 5, 6, 7, 8, 9, 11, 17, 18, 19, 31];

    /// <summary>Signals run C ignores and blocks whatever the constructors do: the ones programs commonly handle.</summary>
    static readonly int[] CommonSignals = [1, 2, 3, 10, 12, 13, 14, 15, 28];

    /// <summary>
    /// What runs B and C inherit: B a plain state (umask 022, nothing ignored or blocked, this
    /// process's open-file limit); C another umask, the common signals and every signal the
    /// capture's constructors touched ignored and blocked, a lower open-file limit. A
    /// constructor that reads any of it (umask() returns the old mask; sigaction the old
    /// action) and keeps it, or acts on it, shows as a difference.
    /// </summary>
    internal static (InheritedState B, InheritedState C) InheritedStates(IReadOnlyList<KernelOp> ops)
    {
        var signals = new SortedSet<int>(CommonSignals);
        foreach (var op in ops)
        {
            if (op.Kind == ImageFormat.KopSigaction)
                signals.Add((int)op.Arg);
            if (op.Kind == ImageFormat.KopSigprocmask)
                for (int s = 1; s <= 64; s++)
                    if ((op.Value[0] >> (s - 1) & 1) != 0)
                        signals.Add(s);
        }
        signals.ExceptWith(Untouchable);
        ulong blocked = signals.Aggregate(0UL, (m, s) => m | 1UL << (s - 1));
        var (soft, _) = Interop.GetLimits(Interop.RLIMIT_NOFILE);
        return (new InheritedState(0x12, [], 0, soft), new InheritedState(0x3f, [.. signals], blocked, soft > 64 ? soft / 2 : soft));
    }

    /// <summary>
    /// The kernel state the constructors set must be the same calls whatever the process inherited
    /// (runs B and C, one layout: equal word for word) and in the capture (its own layout: a
    /// handler's address may differ, nothing else).
    /// </summary>
    static void CompareKernelOps(IReadOnlyList<KernelOp> a, IReadOnlyList<KernelOp> b, IReadOnlyList<KernelOp> c)
    {
        for (int i = 0; i < Math.Max(b.Count, c.Count); i++)
            if (i >= b.Count || i >= c.Count || !b[i].Equals(c[i]))
                throw new RefusalException("the kernel state the constructors set depends on what the process inherited (umask, signals, limits): "
                    + $"{(i < b.Count ? b[i] : "nothing")} in one run, {(i < c.Count ? c[i] : "nothing")} in another");
        bool Same(KernelOp x, KernelOp y) => x.Kind == y.Kind && x.Arg == y.Arg
            && (x.Kind == ImageFormat.KopSigaction ? x.Value[1] == y.Value[1] && x.Value[3] == y.Value[3] : x.Value.SequenceEqual(y.Value));
        if (a.Count != b.Count || a.Zip(b).Any(p => !Same(p.First, p.Second)))
            throw new RefusalException("the kernel state the constructors set differs between the capture and a verification run");
    }

    /// <summary>A run's snapshots at the link stop and at main.</summary>
    static (Snapshot Link, Snapshot Init) AtMain(Func<CaptureOptions, IStoppedProcess> start, CaptureOptions options)
    {
        try
        {
            using var p = start(options);
            var link = SnapshotBuilder.Build(p);
            return (link, SnapshotBuilder.BuildAtMain(p, link, ConstructorRun.Record(p, link)));
        }
        catch (RefusalException e)
        {
            throw new RefusalException($"a verification run with other arguments: {e.Message}");
        }
    }

    /// <summary>A word of run B that holds argc, whole (Index 0, 8 bytes) or as the int at byte Index (0 or 4).</summary>
    readonly record struct ArgcCopy(ulong Addr, uint Index, bool Whole);

    /// <summary>
    /// The words of b and c (at main) that differ, each explained or refused. A word that held
    /// the same value at the link stop (linkB, linkC) is not the constructors' doing: what ld.so
    /// leaves per exec (its start time for LD_DEBUG=statistics, say) is the link level's, as it
    /// is today.
    /// </summary>
    static List<ArgcCopy> Compare(Snapshot b, Snapshot c, Snapshot linkB, Snapshot linkC)
    {
        if (!Coalesce(b.Regions).SequenceEqual(Coalesce(c.Regions)) || b.Header.MmBrk - b.Header.MmStartBrk != c.Header.MmBrk - c.Header.MmStartBrk)
            throw new RefusalException("the constructors lay out memory differently in two runs with other arguments");
        if (b.Frame.Length != c.Frame.Length || b.Header.FrameResume != c.Header.FrameResume)
            throw new RefusalException("the frames below main differ in two runs with other arguments");
        ulong argcB = ArgcOf(b), argcC = ArgcOf(c);
        var patchesB = b.Patches.Where(p => !b.InFrame(p.Addr)).ToDictionary(p => p.Addr);
        var patchesC = c.Patches.Where(p => !c.InFrame(p.Addr)).ToDictionary(p => p.Addr);
        // what the takeover sets per exec: the canary and pointer guard, the thread id (set_tid_address),
        // the rseq area (the kernel writes the cpu number there)
        var h = b.Header;
        var skip = new HashSet<ulong> { h.FsBase + SnapshotBuilder.TcbCanary, h.FsBase + SnapshotBuilder.TcbPointerGuard };
        if (h.TidAddress != 0)
            skip.Add(h.TidAddress & ~7UL);
        for (ulong a = h.RseqAddr & ~7UL; h.RseqAddr != 0 && a < h.RseqAddr + h.RseqLen; a += 8)
            skip.Add(a);
        var copies = new List<ArgcCopy>();
        using var bytesB = new SnapshotBytes(b);
        using var bytesC = new SnapshotBytes(c);
        using var beforeB = new SnapshotBytes(linkB);
        using var beforeC = new SnapshotBytes(linkC);
        foreach (var r in b.Regions.Where(r => (r.Prot & MapsEntry.ProtWrite) != 0 || (r.Flags & ImageFormat.RegionFlagPatched) != 0))
            for (ulong page = r.Start; page < r.End; page += ImageFormat.PageSize)
            {
                var pb = bytesB.Page(page);
                var pc = bytesC.Page(page);
                if (pb.Span.SequenceEqual(pc.Span))
                    continue;
                var lb = beforeB.PageOrNull(page);
                var lc = beforeC.PageOrNull(page);
                for (int i = 0; i < pb.Length; i += 8)
                {
                    ulong addr = page + (ulong)i;
                    ulong wb = BinaryPrimitives.ReadUInt64LittleEndian(pb.Span[i..]), wc = BinaryPrimitives.ReadUInt64LittleEndian(pc.Span[i..]);
                    bool untouched = lb is { } ob && lc is { } oc
                        && BinaryPrimitives.ReadUInt64LittleEndian(ob.Span[i..]) == wb && BinaryPrimitives.ReadUInt64LittleEndian(oc.Span[i..]) == wc;
                    if (wb != wc && !untouched && !skip.Contains(addr))
                        Explain(addr, wb, wc, patchesB, patchesC, (argcB, b.Header.OldStackArgc), (argcC, c.Header.OldStackArgc), copies, r.Name);
                }
            }
        // The frames below main are glibc's own (_start, __libc_start_main, its caller of main):
        // what is read there after the resume is what main's caller loads, each checked in every
        // run (MainCaller), and the setjmp buffer of pthread_exit from main, whose mangled rsp and
        // pc are patches. The rest is what their code left there on the way, never read again:
        // not compared.
        return copies;
    }

    /// <param name="runB">run B's argc and where it lies; <paramref name="runC"/> likewise.</param>
    static void Explain(ulong addrB, ulong wb, ulong wc, Dictionary<ulong, Patch> patchesB, Dictionary<ulong, Patch> patchesC,
        (ulong Argc, ulong At) runB, (ulong Argc, ulong At) runC, List<ArgcCopy> copies, string where)
    {
        var (argcB, argcC) = (runB.Argc, runC.Argc);
        patchesB.TryGetValue(addrB, out var pb);
        patchesC.TryGetValue(addrB, out var pc);
        if (pb is not null && pc is not null && SameMeaning(pb, pc))
            return;
        // A stack pointer aligned by its code (a stack bottom noted for depth checks: libclang-cpp
        // keeps one at a 256-byte boundary): it lies within a page of argc in each run, but
        // where exactly moves with the alignment of the arguments' size, so that it may point
        // below argc in one run and into argv in the other. The image keeps the capture's
        // distance from this exec's stack block, a bottom as good as a normal start's.
        if (pb is not null && pc is not null && IsStackKind(pb.Kind) && IsStackKind(pc.Kind)
            && Near(wb, runB.At) && Near(wc, runC.At) && Near(wb - runB.At, wc - runC.At))
            return;
        if (wb == argcB && wc == argcC)
        {
            copies.Add(new ArgcCopy(addrB, 0, Whole: true));
            return;
        }
        bool lowSame = (uint)wb == (uint)wc, highSame = wb >> 32 == wc >> 32;
        if (highSame && (uint)wb == argcB && (uint)wc == argcC)
        {
            copies.Add(new ArgcCopy(addrB, 0, Whole: false));
            return;
        }
        if (lowSame && wb >> 32 == argcB && wc >> 32 == argcC)
        {
            copies.Add(new ArgcCopy(addrB, 4, Whole: false));
            return;
        }
        throw new RefusalException($"what the constructors leave at main depends on the exec (arguments, environment, pid, random bytes "
            + $"or time): a word at 0x{addrB:x} ({(where.Length == 0 ? "anonymous memory" : where)}) differs between two runs "
            + $"(0x{wb:x}, 0x{wc:x}{(pb is null ? "" : $"; {pb.Kind}")})");
    }

    static bool IsStackKind(uint kind) => kind is ImageFormat.PatchArgc or ImageFormat.PatchArgv or ImageFormat.PatchEnvp;

    /// <summary>Within a page of each other (as signed addresses or distances).</summary>
    static bool Near(ulong x, ulong y) => (long)(x - y) is > -(long)ImageFormat.PageSize and < (long)ImageFormat.PageSize;

    static bool SameMeaning(Patch b, Patch c) => b.Kind == c.Kind && b.Index == c.Index && b.EnvName == c.EnvName
        && (b.Delta == c.Delta || b.Kind is ImageFormat.PatchArgcCount or ImageFormat.PatchRandom);

    /// <summary>The address space as runs of one protection: what must match between the two runs.</summary>
    static List<(ulong Start, ulong End, uint Prot)> Coalesce(IReadOnlyList<Region> regions)
    {
        var runs = new List<(ulong Start, ulong End, uint Prot)>();
        foreach (var r in regions)
            if (runs.Count > 0 && runs[^1].End == r.Start && runs[^1].Prot == r.Prot)
                runs[^1] = (runs[^1].Start, r.End, r.Prot);
            else
                runs.Add((r.Start, r.End, r.Prot));
        return runs;
    }

    /// <summary>argc of a snapshot's run: the frames do not hold it, the patches' ARGC_COUNT delta does.</summary>
    static ulong ArgcOf(Snapshot s)
    {
        var count = s.Patches.First(p => p.Kind == ImageFormat.PatchArgcCount && s.InFrame(p.Addr));
        ulong saved = (ulong)count.Delta;
        return count.Index == 4 ? saved >> 32 : saved & 0xffffffffUL;
    }

    /// <summary>
    /// A copy of argc found in run B, as a patch of the image: the same offset from the same
    /// module (the file whose mapping it lies in or follows, or the heap) in the image's layout,
    /// where it must hold the capture's argc too.
    /// </summary>
    static Patch InImage(ArgcCopy copy, Snapshot b, Snapshot image)
    {
        var (module, offset) = Locate(b, copy.Addr);
        ulong addr = Base(image, module) + offset;
        ulong argc = ArgcOf(image);
        using var bytes = new SnapshotBytes(image);
        var page = bytes.Page(addr & ~(ulong)(ImageFormat.PageSize - 1));
        ulong word = BinaryPrimitives.ReadUInt64LittleEndian(page.Span[(int)(addr % ImageFormat.PageSize)..]);
        ulong value = copy.Whole ? word : copy.Index == 4 ? word >> 32 : word & 0xffffffffUL;
        if (value != argc)
            throw new RefusalException($"a copy of argc at 0x{copy.Addr:x} in a verification run has no counterpart in the capture");
        return new Patch(addr, ImageFormat.PatchArgcCount, copy.Index, (long)word);
    }

    /// <summary>The module an address belongs to and its offset there: the heap, or the file of the nearest mapping at or below it.</summary>
    static (string Module, ulong Offset) Locate(Snapshot s, ulong addr)
    {
        if (addr >= s.Header.MmStartBrk && addr < s.Header.MmBrk)
            return ("[heap]", addr - s.Header.MmStartBrk);
        var file = s.Regions.Where(r => r.Start <= addr && r.Name.StartsWith('/')).LastOrDefault()
            ?? throw new RefusalException($"a copy of argc at 0x{addr:x} lies in no module");
        return (file.Name, addr - Base(s, file.Name));
    }

    static ulong Base(Snapshot s, string module) => module == "[heap]" ? s.Header.MmStartBrk
        : s.Regions.Where(r => r.Name == module).Select(r => r.Start).DefaultIfEmpty(ulong.MaxValue).Min() is var b && b != ulong.MaxValue ? b
        : throw new RefusalException($"{module} is not mapped in the capture");

    /// <summary>The bytes of a snapshot's pages: stored, zero, or read from the mapped file.</summary>
    sealed class SnapshotBytes(Snapshot s) : IDisposable
    {
        readonly Dictionary<string, FileStream> _files = new(StringComparer.Ordinal);
        static readonly byte[] Zero = new byte[ImageFormat.PageSize];

        /// <summary>The page's bytes, or null where the snapshot maps nothing.</summary>
        public ReadOnlyMemory<byte>? PageOrNull(ulong page) => s.Regions.Any(r => r.Contains(page)) ? Page(page) : (ReadOnlyMemory<byte>?)null;

        public ReadOnlyMemory<byte> Page(ulong page)
        {
            var r = s.Regions.FirstOrDefault(r => r.Contains(page))
                ?? throw new RefusalException($"0x{page:x} is not mapped in a verification run");
            ulong i = (page - r.Start) / ImageFormat.PageSize;
            if (r.Pages is { } pages)
                return pages[(int)i];
            if (r.Kind != ImageFormat.RegionFile)
                return Zero;
            string path = s.Files[(int)r.File].Path;
            if (!_files.TryGetValue(path, out var f))
                _files[path] = f = new FileStream(path, FileMode.Open, FileAccess.Read);
            var buf = new byte[ImageFormat.PageSize];
            f.Position = (long)(r.Offset + i * ImageFormat.PageSize);
            f.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);   // past the end of the file: zeros
            return buf;
        }

        public void Dispose()
        {
            foreach (var f in _files.Values)
                f.Dispose();
        }
    }
}
