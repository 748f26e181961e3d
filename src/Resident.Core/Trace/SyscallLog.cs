namespace Resident.Trace;

/// <summary>
/// Every syscall of one run, in order: the first run's, between the exec and the stop, and
/// what follows from them (the files ld.so probed and opened, the kernel-side thread state it
/// set, why a stop must be refused); or the constructor run's, from the stop to main (only
/// <see cref="Records"/> is read there: Snapshots/InitDependencies judges them). Fed by the
/// tracer thread one stop at a time; read after the run.
/// </summary>
internal sealed class SyscallLog
{
    const int MaxOutput = 2048;

    readonly List<SyscallRecord> _records = [];
    readonly List<string> _probedAbsent = [];
    readonly List<string> _opened = [];
    readonly List<string> _relative = [];
    readonly System.Text.StringBuilder _output = new();
    (long Nr, ulong[] Args, string? Path, byte[]? Data)? _pending;

    public IReadOnlyList<SyscallRecord> Records => _records;
    public IReadOnlyList<string> ProbedAbsent => _probedAbsent;
    public IReadOnlyList<string> Opened => _opened;

    /// <summary>What the program wrote to fd 1 or 2 (ld.so's error messages), truncated.</summary>
    public string Output => _output.ToString();

    /// <param name="absolutePath">the path argument made absolute (null if the syscall has none).</param>
    /// <param name="relativePath">the path argument as passed when it was relative, else null.</param>
    /// <param name="data">the memory the call reads as its input, where it sets kernel state (<see cref="SyscallRecord.Data"/>).</param>
    public void Entry(long nr, ulong[] args, string? absolutePath, string? relativePath = null, byte[]? data = null)
    {
        if (relativePath is not null)
            AddOnce(_relative, relativePath);
        if (_pending is { } p)   // an entry without exit: the syscall never returned (e.g. a signal killed it)
            _records.Add(new SyscallRecord(p.Nr, p.Args, 0, p.Path, p.Data));
        _pending = (nr, args, absolutePath, data);
    }

    /// <summary>Records the exit of the pending entry; an exit with no entry (execve's own return) is ignored.</summary>
    public void Exit(long result)
    {
        if (_pending is not { } p)
            return;
        _pending = null;
        var r = new SyscallRecord(p.Nr, p.Args, result, p.Path, p.Data);
        _records.Add(r);
        Classify(r);
    }

    /// <summary>The run is over: a call entered and never returned (the process died in it) is recorded as such.</summary>
    public void EndRun()
    {
        if (_pending is { } p)
            _records.Add(new SyscallRecord(p.Nr, p.Args, 0, p.Path, p.Data));
        _pending = null;
    }

    public void AddOutput(string text)
    {
        if (_output.Length < MaxOutput)
            _output.Append(text.AsSpan(0, Math.Min(text.Length, MaxOutput - _output.Length)));
    }

    void Classify(SyscallRecord r)
    {
        if (SyscallTable.ProbedAbsent(r))
            AddOnce(_probedAbsent, r.PathArg!);
        else if (r.Nr is SyscallTable.Open or SyscallTable.Openat && r.Result >= 0 && r.PathArg is ['/', ..])
            AddOnce(_opened, r.PathArg);
    }

    static void AddOnce(List<string> list, string path)
    {
        if (!list.Contains(path))
            list.Add(path);
    }

    /// <summary>The last successful call's arguments set the state; 0 where never called.</summary>
    public KernelThreadState KernelState(ulong fsBase)
    {
        ulong tid = 0, robustHead = 0, robustLen = 0, rseqAddr = 0;
        uint rseqLen = 0, rseqSig = 0;
        const ulong RseqFlagUnregister = 1;
        foreach (var r in _records)
        {
            if (r.Result < 0)
                continue;
            switch (r.Nr)
            {
                case SyscallTable.SetTidAddress: tid = r.Args[0]; break;
                case SyscallTable.SetRobustList: (robustHead, robustLen) = (r.Args[0], r.Args[1]); break;
                case SyscallTable.Rseq when (r.Args[2] & RseqFlagUnregister) != 0: (rseqAddr, rseqLen, rseqSig) = (0, 0, 0); break;
                case SyscallTable.Rseq: (rseqAddr, rseqLen, rseqSig) = (r.Args[0], (uint)r.Args[1], (uint)r.Args[3]); break;
            }
        }
        return new KernelThreadState(fsBase, tid, robustHead, robustLen, rseqAddr, rseqLen, rseqSig);
    }

    /// <summary>The first syscall the restorer cannot reproduce, as a message; null when all are fine.</summary>
    public string? FirstRefusal() =>
        _records.Select(SyscallTable.Refusal).FirstOrDefault(m => m is not null) ?? RelativePathRefusal();

    // A relative RUNPATH/RPATH or LD_LIBRARY_PATH entry: what ld.so finds depends on the working
    // directory of each exec, which no saved address space can follow.
    string? RelativePathRefusal() => _relative.Count == 0 ? null
        : $"ld.so looked up the relative path \"{_relative[0]}\" (relative RUNPATH or LD_LIBRARY_PATH entry): "
          + "the libraries found depend on the working directory";
}
