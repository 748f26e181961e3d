namespace Resident.Trace;

/// <param name="StackLimit">the soft RLIMIT_STACK the program is captured with (bytes; RLIM_INFINITY
/// ulong.MaxValue), else this process's own. glibc sizes default thread stacks from it before the
/// capture point, so it is part of the image: `resident add --stack-limit 64M` for programs that
/// run under a raised limit (gcc's children).</param>
/// <param name="Init">the init level: snapshot at main, after the constructors, when what they did is
/// proven the same for every exec; else (and always when false) the link level (docs/init-level.md).</param>
/// <param name="CompatLayout">capture with the legacy layout (ADDR_COMPAT_LAYOUT): libraries bottom-up from a third of the
/// address space, the executable at two thirds, both far below where a new exec's stack, vdso and mmap area go, so an
/// exported file's fixed segments never meet them (`resident export`, docs/export.md).</param>
public sealed record CaptureOptions(ulong? StackLimit = null, bool Init = false, bool CompatLayout = false)
{
    public static readonly CaptureOptions Default = new();

    /// <summary>A verification run's differences from the capture (init level); null for the capture itself.</summary>
    public CaptureVariant? Variant { get; init; }

    /// <summary>Which of a set of layout variants this capture is (rs_header.variant_*); null: one layout.</summary>
    public LayoutVariant? Layout { get; init; }
}

/// <summary>Variant <paramref name="Index"/> of <paramref name="Count"/> address layouts of one registration (`resident add --variants`).</summary>
public sealed record LayoutVariant(uint Index, uint Count);

/// <summary>
/// How an init level's verification run differs from a capture: arguments after the program,
/// variables added to its environment, and the fixed layout of ADDR_NO_RANDOMIZE, which two
/// such runs share (docs/init-level.md); and the kernel state it inherits, when
/// <paramref name="Inherited"/> is set.
/// </summary>
public sealed record CaptureVariant(IReadOnlyList<string> Arguments, IReadOnlyList<string> Environment, bool NoRandomize,
    InheritedState? Inherited = null);

/// <summary>
/// Kernel state a process inherits across exec, set for a verification run: what a constructor
/// reads of it (the old umask that umask() returns, an old disposition, the mask, a limit) must
/// not change what it leaves at main or which state it sets.
/// </summary>
/// <param name="Umask">the umask.</param>
/// <param name="Ignored">signals ignored (SIG_IGN survives exec).</param>
/// <param name="Blocked">the signal mask, bit n-1 for signal n.</param>
/// <param name="NofileSoft">the soft RLIMIT_NOFILE (at most the hard one).</param>
public sealed record InheritedState(uint Umask, IReadOnlyList<int> Ignored, ulong Blocked, ulong NofileSoft);
