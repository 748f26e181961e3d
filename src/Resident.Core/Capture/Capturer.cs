using Resident.Elf;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;
using Resident.Snapshots;
using Resident.Trace;

namespace Resident.Capture;

/// <summary>The whole capture: stop the program, build the snapshot, write the image atomically.</summary>
public static class Capturer
{
    /// <summary>
    /// Where the image of the program found at the stop goes, and its id; called once the capture
    /// succeeded, with the identity of the executable it captured (the inode mapped in the process).
    /// </summary>
    public delegate (string ImagePath, ulong Id) ImageDestination(string programPath, ulong dev, ulong ino);

    /// <summary>
    /// Captures <paramref name="programPath"/> into the image file <paramref name="imagePath"/>
    /// (written to a temporary file in the same directory, fsynced, renamed). Throws
    /// <see cref="RefusalException"/> with a one-line reason on refusal; an existing image
    /// at imagePath is untouched then.
    /// </summary>
    public static CaptureSummary Capture(string programPath, string imagePath, ulong id,
        IReadOnlyDictionary<string, string> environment) =>
        Capture(ProgramFile.Resolve(programPath), (_, _, _) => (imagePath, id), environment);

    /// <summary>As above, the image path and id chosen once the capture succeeded (no id is spent on a refusal).</summary>
    public static CaptureSummary Capture(ProgramFile program, ImageDestination destination,
        IReadOnlyDictionary<string, string> environment, CaptureOptions? options = null) =>
        Capture(o => Tracer.RunToResumePoint(program, environment, o), destination, options ?? CaptureOptions.Default);

    /// <summary>As <see cref="Capture(ProgramFile, ImageDestination, IReadOnlyDictionary{string, string}, CaptureOptions?)"/> for the first
    /// dynamically linked program <paramref name="wrapperPath"/> execs (<see cref="Tracer.RunThroughWrapper"/>).</summary>
    public static CaptureSummary CaptureThroughWrapper(string wrapperPath, ImageDestination destination,
        IReadOnlyDictionary<string, string> environment, CaptureOptions? options = null) =>
        Capture(o => Tracer.RunThroughWrapper(wrapperPath, environment, o), destination, options ?? CaptureOptions.Default);

    static CaptureSummary Capture(Func<CaptureOptions, IStoppedProcess> run, ImageDestination destination, CaptureOptions options)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var stopped = run(options);
        var link = SnapshotBuilder.Build(stopped);
        var constructors = ConstructorRun.Record(stopped, link);   // the process runs on to main
        link.Prefault = constructors.Spans;
        var snapshot = link;
        string? initRefused = null;
        if (options.Init)
        {
            try
            {
                var atMain = SnapshotBuilder.BuildAtMain(stopped, link, constructors);
                var copies = InitVerification.Verify(run, options, atMain);   // runs the program twice more
                // an exec whose looked-up variables differ is restored from the link level, carried in the same file
                snapshot = atMain.With(copies) with { Fallback = atMain.EnvDeps.Count > 0 ? link : null };
            }
            catch (RefusalException e) { initRefused = e.Message; }   // the link level is registered instead
        }
        var exe = snapshot.Files[0];   // the executable's stamp, checked against the inode the process maps
        var now = FileStamp.Of(stopped.ProgramPath, exe.Flags);
        if (now is null || now.Dev != exe.Dev || now.Ino != exe.Ino)
            throw new RefusalException($"{stopped.ProgramPath} was replaced during the capture; add it again");
        var (imagePath, id) = destination(stopped.ProgramPath, exe.Dev, exe.Ino);
        if (options.Layout is { } layout)
            (snapshot.Header.VariantCount, snapshot.Header.VariantIndex) = (layout.Count, layout.Index);
        long size = ImageWriter.Write(snapshot, imagePath, id);
        // main from the executable's first byte (AT_PHDR follows the ELF header: SnapshotBuilder checks it)
        ulong? mainOffset = constructors.Main - (snapshot.Header.AtPhdr - ElfFile.HeaderSize);
        return new CaptureSummary(stopped.ProgramPath, imagePath, size, started.Elapsed, stopped.LazyBind, id)
        {
            MainOffset = mainOffset,
            Level = snapshot.Header.Level,
            InitRefused = initRefused,
        };
    }
}

public sealed record CaptureSummary(string ProgramPath, string ImagePath, long ImageSize, TimeSpan Elapsed, bool LazyBind, ulong Id = 0)
{
    /// <summary>main's offset from the executable's first byte, when the capture reached it; what `resident add` times a start to.</summary>
    public ulong? MainOffset { get; init; }

    /// <summary>The image's level (ImageFormat.LevelLink or LevelInit).</summary>
    public uint Level { get; init; } = ImageFormat.LevelLink;

    /// <summary>Why the init level was asked for and refused (the link level was captured instead); else null.</summary>
    public string? InitRefused { get; init; }
}
