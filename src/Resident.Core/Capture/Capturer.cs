using Resident.Image;

namespace Resident.Capture;

/// <summary>The whole capture: stop the program, build the snapshot, write the image atomically.</summary>
public static class Capturer
{
    /// <summary>
    /// Captures <paramref name="programPath"/> into the image file <paramref name="imagePath"/>
    /// (written to a temporary file in the same directory, fsynced, renamed). Throws
    /// <see cref="CaptureException"/> with a one-line reason on refusal; an existing image
    /// at imagePath is untouched then.
    /// </summary>
    public static CaptureSummary Capture(string programPath, string imagePath, ulong id,
        IReadOnlyDictionary<string, string> environment)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var stopped = Tracer.RunToResumePoint(programPath, environment);
        var snapshot = SnapshotBuilder.Build(stopped);
        long size = ImageWriter.Write(snapshot, imagePath, id);
        return new CaptureSummary(stopped.ProgramPath, imagePath, size, started.Elapsed, stopped.LazyBind);
    }
}

public sealed record CaptureSummary(string ProgramPath, string ImagePath, long ImageSize, TimeSpan Elapsed, bool LazyBind);
