using Resident.Elf;
using Resident.Format;
using Resident.Proc;
using Resident.Trace;

namespace Resident.Snapshots;

/// <summary>
/// After the snapshot is read: lets the stopped program run on through its constructors to
/// main and records which pages of its read-only file regions they touched, so the restorer
/// can map exactly those at once (rs_header.prefault). A restored start runs the same
/// constructors and would fault those pages in one by one: clang-format's took ~320 faults
/// of libLLVM code, ~30 µs each here. main itself never runs: the program is killed at its first instruction.
/// Anything unexpected (another entry sequence, a constructor that exits or hangs) records
/// nothing, and the image is as good as without. The same run records what the constructors
/// depend on, for a snapshot at main (<see cref="ConstructorRunResult.Init"/>, docs/init-level.md):
/// their system calls, calls into the vdso, and the names they look up with getenv.
/// </summary>
/// <param name="Spans">the prefault spans (rs_header.prefault), sorted; empty when nothing was recorded.</param>
/// <param name="Main">main's address, when the run reached it (rdi == argc there); else null.</param>
/// <param name="Syscalls">the constructors' system calls, in order, as far as the run went.</param>
/// <param name="LibcData">libc.so's writable file regions in the snapshot, [start, end) each.</param>
public sealed record ConstructorRunResult(IReadOnlyList<RsSpan> Spans, ulong? Main, IReadOnlyList<SyscallRecord> Syscalls,
    IReadOnlyList<(ulong Start, ulong End)>? LibcData = null)
{
    public static readonly ConstructorRunResult None = new([], null, []);

    /// <summary>A constructor called into the vdso (its pages are watched in the run): clock_gettime, gettimeofday, time, getcpu.</summary>
    public bool VdsoCalled { get; init; }

    /// <summary>The registers at main, the process stopped there with memory as the constructors left it (a snapshot at main may be taken); null if not reached.</summary>
    public StopRegisters? At { get; init; }

    /// <summary>The names the constructors asked libc's getenv or secure_getenv for, each once, in order.</summary>
    public IReadOnlyList<string> EnvironmentRead { get; init; } = [];

    /// <summary>What the constructors' system calls, vdso calls and getenv calls say about a snapshot taken at main (<see cref="InitDependencies"/>).</summary>
    public InitDependencies Init => InitDependencies.Judge(Syscalls, reachedMain: Main is not null, vdsoCalled: VdsoCalled,
        inLibcData: a => LibcData?.Any(r => a >= r.Start && a < r.End) == true) with { Environment = EnvironmentRead };
}

public static class ConstructorRun
{
    /// <summary>Longest the constructors may take.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>Spans kept at most: the hook reads its metadata into 16 KiB when it fits.</summary>
    public const int MaxSpans = 512;

    const ulong Page = ImageFormat.PageSize;

    /// <summary>Pages at most this far apart in one region are populated as one span (a system call less).</summary>
    public const int JoinGapPages = 15;

    public static ConstructorRunResult Record(IStoppedProcess p, Snapshot s) => Record(p, s, Timeout);

    /// <summary>
    /// Code regions are watched page by page (<see cref="IStoppedProcess.RunTo"/>): exactly the
    /// pages the constructors run. The other read-only file regions (.rodata: a system call may
    /// read them, and would fail on a watched page instead of faulting) are compared in
    /// pagemap before and after, which also counts the neighbours the kernel maps around each
    /// fault (16 pages). ld.so's code, where the watching runs its mprotects, is not watched.
    /// </summary>
    internal static ConstructorRunResult Record(IStoppedProcess p, Snapshot s, TimeSpan timeout)
    {
        ulong gadget = s.Header.LdsoBase + s.Header.SyscallRetOff;
        var targets = s.Regions.Where(r => r.Kind == ImageFormat.RegionFile && (r.Prot & MapsEntry.ProtWrite) == 0 && r.Flags == 0).ToList();
        bool Watched(Region r) => (r.Prot & MapsEntry.ProtExec) != 0 && !r.Contains(gadget) && !r.Contains(gadget + 2);
        if (targets.Count == 0 || FindMain(p) is not ulong main)
            return ConstructorRunResult.None;
        using var pagemap = Pagemap.Open(p.Pid);
        var before = targets.Select(r => Watched(r) ? [] : Present(pagemap, r)).ToList();
        ulong argc = ReadWord(p, p.Registers.Rsp) ?? ulong.MaxValue;
        var traps = targets.Where(Watched).Select(r => new PageTrap(r.Start, r.End, r.Prot)).ToList();
        // the vdso too, for the init level's judge: a constructor that reads the time through it faults there
        var vdso = Vdso(s);
        if (vdso is { } v)
            traps.Add(v);
        var getenv = EnvironmentReaders(s);
        // main(argc, argv, envp): a stop elsewhere, or with another rdi, is not main
        var run = p.RunTo(main, timeout, gadget, traps, getenv);
        var (rdi, touched, syscalls, calls) = run;
        var envRead = calls.Select(c => c.Arg).Distinct().ToList();
        bool vdsoCalled = vdso is { } w && touched.Any(a => a >= w.Start && a < w.End);
        if (rdi != argc)
            return new ConstructorRunResult([], null, syscalls, LibcData(s)) { VdsoCalled = vdsoCalled, EnvironmentRead = envRead };
        var pages = touched.ToHashSet();
        var spans = new List<(RsSpan Span, int Region)>();
        for (int t = 0; t < targets.Count; t++)
        {
            var r = targets[t];
            bool[] now = Watched(r)
                ? Enumerable.Range(0, (int)(r.Length / Page)).Select(i => pages.Contains(r.Start + (ulong)i * Page)).ToArray()
                : Present(pagemap, r).Select((present, i) => present && !before[t][i]).ToArray();
            for (int i = 0; i < now.Length;)
            {
                if (!now[i]) { i++; continue; }
                int j = i + 1;
                while (j < now.Length && (now[j] || NextWithin(now, j)))
                    j++;
                spans.Add((new RsSpan { Start = r.Start + (ulong)i * Page, End = r.Start + (ulong)j * Page }, t));
                i = j;
            }
        }
        return new ConstructorRunResult(Cap(spans, MaxSpans).Select(x => x.Span).ToList(), main, syscalls, LibcData(s))
            { VdsoCalled = vdsoCalled, EnvironmentRead = envRead, At = run.At };
    }

    /// <summary>
    /// Where libc's getenv and secure_getenv start in the process (an int3 on each names what
    /// the constructors look up): their .dynsym values from the libc file mapped at offset 0,
    /// kept only where they land in its code. None when there is no such libc.
    /// </summary>
    static List<ulong> EnvironmentReaders(Snapshot s)
    {
        var libc = s.Regions.FirstOrDefault(r => r.Kind == ImageFormat.RegionFile && r.Offset == 0
            && LibcFile.Is(r.Name));
        if (libc is null)
            return [];
        byte[] elf;
        try { elf = File.ReadAllBytes(libc.Name); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
        var found = new List<ulong>();
        foreach (var name in new[] { "getenv", "secure_getenv" })
        {
            ulong? value;
            try { value = DynamicSymbols.Find(elf, name); }
            catch (InvalidDataException) { return []; }
            if (value is ulong v && s.Regions.Any(r => r.Name == libc.Name && (r.Prot & MapsEntry.ProtExec) != 0 && r.Contains(libc.Start + v)))
                found.Add(libc.Start + v);
        }
        return found;
    }

    /// <summary>libc.so's writable data: its writable file regions and the anonymous rest of its .bss right after them.</summary>
    internal static List<(ulong Start, ulong End)> LibcData(Snapshot s)
    {
        var data = new List<(ulong Start, ulong End)>();
        foreach (var r in s.Regions)
            if ((r.Prot & MapsEntry.ProtWrite) != 0
                && (LibcFile.Is(r.Name) || (r.Name == "" && data.Any(d => d.End == r.Start))))
                data.Add((r.Start, r.End));
        return data;
    }

    /// <summary>The [vdso] code pages (not vvar: the vdso's own reads of it are not calls), watched if the kernel lets them be.</summary>
    static PageTrap? Vdso(Snapshot s)
    {
        for (int i = 0; i < ImageFormat.MaxVdsoVmas; i++)
            if (s.Header.VdsoVmas[i] is { Kind: ImageFormat.VdsoVdso } v)
                return new PageTrap(v.Start, v.End, MapsEntry.ProtRead | MapsEntry.ProtExec, Optional: true, Whole: true);
        return null;
    }

    /// <summary>Is a set page within <see cref="JoinGapPages"/> from j on (so the gap at j is joined)?</summary>
    static bool NextWithin(bool[] now, int j)
    {
        for (int k = j; k < now.Length && k <= j + JoinGapPages; k++)
            if (now[k])
                return true;
        return false;
    }

    static ulong? FindMain(IStoppedProcess p)
    {
        var code = new byte[ProgramMain.WindowSize];
        try { p.ReadMemory(p.Registers.Rax, code); }   // rax at the stop: the program's entry
        catch (RefusalException) { return null; }
        return ProgramMain.Find(code, p.Registers.Rax, addr => ReadWord(p, addr));
    }

    /// <summary>The word at <paramref name="addr"/> in the process, or null where it cannot be read.</summary>
    internal static ulong? ReadWord(IStoppedProcess p, ulong addr)
    {
        Span<byte> word = stackalloc byte[8];
        try { p.ReadMemory(addr, word); }
        catch (RefusalException) { return null; }
        return BitConverter.ToUInt64(word);
    }

    static bool[] Present(Pagemap pagemap, Region r) =>
        pagemap.Read(r.Start, (int)(r.Length / Page)).Select(e => (e & Pagemap.Present) != 0).ToArray();

    /// <summary>At most <paramref name="max"/> spans, in order: the closest neighbours in one region are
    /// joined first (a span never crosses regions, so the restorer's check holds); a region's
    /// pages between joined spans are mapped too.</summary>
    internal static List<(RsSpan Span, int Region)> Cap(List<(RsSpan Span, int Region)> spans, int max)
    {
        while (spans.Count > max)
        {
            int best = -1;
            ulong bestGap = ulong.MaxValue;
            for (int i = 0; i + 1 < spans.Count; i++)
                if (spans[i].Region == spans[i + 1].Region && spans[i + 1].Span.Start - spans[i].Span.End < bestGap)
                    (best, bestGap) = (i, spans[i + 1].Span.Start - spans[i].Span.End);
            if (best < 0)
                return spans.Take(max).ToList();   // one span per region and still too many regions
            spans[best] = (new RsSpan { Start = spans[best].Span.Start, End = spans[best + 1].Span.End }, spans[best].Region);
            spans.RemoveAt(best + 1);
        }
        return spans;
    }
}
