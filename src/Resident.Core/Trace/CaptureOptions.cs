namespace Resident.Trace;

/// <param name="StackLimit">the soft RLIMIT_STACK the program is captured with (bytes; RLIM_INFINITY
/// ulong.MaxValue), else this process's own. glibc sizes default thread stacks from it before the
/// capture point, so it is part of the image: `resident add --stack-limit 64M` for programs that
/// run under a raised limit (gcc's children).</param>
/// <param name="Init">the init level: snapshot at main, after the constructors, when what they did is
/// proven the same for every exec; else (and always when false) the link level (docs/init-level.md).</param>
public sealed record CaptureOptions(ulong? StackLimit = null, bool Init = false)
{
    public static readonly CaptureOptions Default = new();

    /// <summary>A verification run's differences from the capture (init level); null for the capture itself.</summary>
    public CaptureVariant? Variant { get; init; }
}

/// <summary>
/// How an init level's verification run differs from a capture: arguments after the program,
/// variables added to its environment, and the fixed layout of ADDR_NO_RANDOMIZE, which two
/// such runs share (docs/init-level.md).
/// </summary>
public sealed record CaptureVariant(IReadOnlyList<string> Arguments, IReadOnlyList<string> Environment, bool NoRandomize);
