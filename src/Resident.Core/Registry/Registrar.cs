using Resident.Capture;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;
using Resident.Snapshots;
using Resident.Trace;

namespace Resident.Registry;

/// <summary>What <see cref="Registrar.Refresh"/> did (or, in a dry run, would do) with one image.</summary>
public enum RefreshAction
{
    /// <summary>The image is still usable; nothing to do.</summary>
    Fresh,
    /// <summary>Stale: the program was captured again (same id).</summary>
    Recaptured,
    /// <summary>Only stamps changed (an apt run rebuilt /etc/ld.so.cache) and the program still loads the same files: new stamps, same image.</summary>
    Restamped,
    /// <summary>The program is gone: its image was deleted.</summary>
    Removed,
    /// <summary>Stale, and a new capture failed (Reason says why); the stale image stays, the hook ignores it.</summary>
    Failed,
}

/// <param name="Program">the registered executable (the image file for a corrupt image).</param>
/// <param name="Reason">why it is stale or why it failed; null when fresh.</param>
/// <param name="Capture">the new capture, when there was one.</param>
/// <param name="Measurement">the timing, when there was one.</param>
/// <param name="Registered">false when it starts slower restored and was not forced: nothing changed in the registry.</param>
/// <param name="Unmeasured">why there is no timing, when there is none.</param>
public sealed record AddResult(CaptureSummary Capture, StartMeasurement? Measurement, bool Registered, string? Unmeasured);

public sealed record RefreshResult(RefreshAction Action, string Program, ulong Id, string? Reason, CaptureSummary? Capture = null)
{
    /// <summary>How long a restamp took.</summary>
    public TimeSpan Took { get; init; }
}

/// <summary>
/// The registry operations the verbs share (add, refresh, sync and the DragonFly form): capture
/// into the registry keeping ids stable, re-capture what is stale, drop what is gone.
/// </summary>
/// <param name="environment">the capture environment (the caller's own).</param>
public sealed class Registrar(ImageRegistry registry, IReadOnlyDictionary<string, string> environment)
{
    public ImageRegistry Registry => registry;

    /// <summary>
    /// Captures <paramref name="program"/> (or, <paramref name="throughWrapper"/>, the first
    /// dynamically linked program it execs) into the registry. Throws RefusalException,
    /// RegistryException, IOException with a one-line reason; nothing changes then.
    /// </summary>
    public CaptureSummary Add(string program, bool throughWrapper = false, CaptureOptions? options = null, uint variants = 1)
    {
        var file = ProgramFile.Identify(program);
        var summary = Capture(file, throughWrapper, (p, dev, ino) => registry.Destination(p, dev, ino), options);
        registry.Publish(summary.ImagePath, summary.ProgramPath);
        SetVariants(summary, variants, file, throughWrapper, options);
        return summary;
    }

    /// <summary>
    /// Layout variants (`resident add --variants K`, image.h variant_count): K - 1 more captures of the
    /// program just registered as <paramref name="summary"/>, each in a fresh address layout (a capture that
    /// repeats an earlier variant's layout is made again), written beside it as variants 1 .. K - 1; then
    /// variant 0 says K and variants from K up go. Every variant is a whole image, and until variant 0
    /// says K the hook uses it alone: there is no instant without a usable image. K = 1 drops any variants.
    /// </summary>
    public void SetVariants(CaptureSummary summary, uint count, ProgramFile file, bool throughWrapper = false, CaptureOptions? options = null)
    {
        if (count > ImageFormat.VariantsMax)
            throw new RefusalException($"at most {ImageFormat.VariantsMax} variants");
        var seen = new HashSet<(ulong, ulong)> { LayoutOf(summary.ImagePath) };
        for (uint i = 1; i < count; i++)
        {
            string path = RegistryPaths.VariantPath(summary.ImagePath, i);
            for (int attempt = 1; ; attempt++)
            {
                Capture(file, throughWrapper, (p, dev, ino) => registry.ImagePath(dev, ino) == summary.ImagePath ? (path, summary.Id)
                    : throw new RefusalException($"{p} was replaced while its layout variants were captured; add it again"),
                    (options ?? CaptureOptions.Default) with { Layout = new LayoutVariant(i, count) });
                if (seen.Add(LayoutOf(path)))
                    break;
                if (attempt == 5)
                    throw new RefusalException("five captures in a row repeated an earlier variant's layout: address randomization is off "
                        + "(kernel.randomize_va_space, or a personality without it)");
            }
            if (registry.IsSystem)
                File.SetUnixFileMode(path, File.GetUnixFileMode(summary.ImagePath));
        }
        if (count > 1)
            ImageWriter.SetVariant(summary.ImagePath, count, 0);
        ImageRegistry.DropVariants(summary.ImagePath, from: Math.Max(count, 1));
    }

    /// <summary>A layout's identity: where ld.so and the executable's headers were.</summary>
    static (ulong, ulong) LayoutOf(string imagePath)
    {
        var h = ImageReader.Read(imagePath).Header;
        return (h.LdsoBase, h.AtPhdr);
    }

    /// <summary><paramref name="file"/> captured directly, or through it as a wrapper.</summary>
    CaptureSummary Capture(ProgramFile file, bool throughWrapper, Capturer.ImageDestination destination, CaptureOptions? options) =>
        throughWrapper
            ? Capturer.CaptureThroughWrapper(file.Path, destination, environment, options)
            : Capturer.Capture(file, destination, environment, options);

    /// <summary>
    /// <see cref="Add"/>, then a second of timing (<see cref="StartMeasure"/>) before the
    /// image takes its place: it is captured into a directory of its own in the registry, timed
    /// normal against restored to main, and registered only if it starts faster, or with
    /// <paramref name="force"/>. Measured or not, an existing image of the program is replaced
    /// only when the new one is registered. The measurement is kept in the image (list, show).
    /// </summary>
    public AddResult AddMeasured(string program, string hookPath, bool force, bool throughWrapper = false, CaptureOptions? options = null,
        uint variants = 1)
    {
        var file = ProgramFile.Identify(program);
        string staging = Path.Combine(registry.Directory, $".measure-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            string? final = null;
            (string, ulong) Staged(string p, ulong dev, ulong ino)
            {
                var (image, id) = registry.Destination(p, dev, ino);
                final = image;
                return (Path.Combine(staging, Path.GetFileName(image)), id);
            }
            var summary = Capture(file, throughWrapper, Staged, options);
            StartMeasurement? m = null;
            string? unmeasured = null;
            if (summary.MainOffset is not ulong main)
                unmeasured = "main not found in its entry code";
            else
            {
                try { m = StartMeasure.Measure(summary.ProgramPath, hookPath, staging, main, environment, TimeSpan.FromSeconds(1)); }
                catch (InvalidOperationException e) { unmeasured = e.Message; }
            }
            if (m is { Ratio: >= 1 } && !force)
                return new AddResult(summary, m, Registered: false, unmeasured);
            if (m is not null)
                ImageWriter.SetMeasurement(summary.ImagePath, m.NormalNs, m.ResidentNs);
            File.Move(summary.ImagePath, final!, overwrite: true);
            var placed = summary with { ImagePath = final! };
            registry.Publish(placed.ImagePath, placed.ProgramPath);
            SetVariants(placed, variants, file, throughWrapper, options);
            return new AddResult(placed, m, Registered: true, unmeasured);
        }
        finally
        {
            try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// One image: fresh → nothing; program gone → image deleted; otherwise stale → the
    /// program is captured again under the same id (a replaced executable gets the image
    /// name of its new dev/ino, the old image is deleted). <paramref name="dryRun"/> only says.
    /// </summary>
    public RefreshResult Refresh(RegistryEntry entry, bool dryRun = false, bool rerandomize = false)
    {
        if (entry is not { Id: ulong id, ExePath: string exePath })
            return new RefreshResult(RefreshAction.Failed, entry.Path, 0, $"corrupt image ({entry.Error}): remove it");
        string? stale = entry.Staleness() ?? (rerandomize ? "new layouts asked for (--rerandomize)" : null);
        if (stale is null)
            return new RefreshResult(RefreshAction.Fresh, exePath, id, null);
        if (!File.Exists(exePath))
        {
            if (!dryRun)
                registry.Forget(entry);
            return new RefreshResult(RefreshAction.Removed, exePath, id, "program is gone");
        }
        if (dryRun)
            return new RefreshResult(RefreshAction.Recaptured, exePath, id, stale);
        try
        {
            if (!rerandomize && TryRestamp(entry, exePath) is TimeSpan took)
                return new RefreshResult(RefreshAction.Restamped, exePath, id, stale) { Took = took };
            // the stack limit it was captured with (resident add --stack-limit) goes on, its level and its number of layouts
            var options = new CaptureOptions(entry.Image?.Header.RlimitStack, Init: entry.Image?.Header.Level == ImageFormat.LevelInit);
            var file = ProgramFile.Resolve(exePath);
            var summary = Capturer.Capture(file, (p, dev, ino) => registry.Destination(p, dev, ino, keepId: id), environment, options);
            registry.Publish(summary.ImagePath, summary.ProgramPath);   // drops entry.Path if the file was replaced
            SetVariants(summary, Math.Max(entry.Image?.Header.VariantCount ?? 1, 1), file, options: options);
            return new RefreshResult(RefreshAction.Recaptured, exePath, summary.Id, stale, summary);
        }
        catch (Exception e) when (e is RefusalException or RegistryException or IOException or UnauthorizedAccessException)
        {
            return new RefreshResult(RefreshAction.Failed, exePath, id, $"{stale}, and capturing it again failed: {e.Message}");
        }
    }

    /// <summary>
    /// When what changed are stamps only (files ld.so opened or probed but does not map, such as
    /// /etc/ld.so.cache), starts the program to the capture point once more and compares what it
    /// loads now: the same executable and mapped files, the same paths opened and probed absent.
    /// Then the image holds as it is and only its stamps are rewritten — cheaper than a capture
    /// (no snapshot, no constructor run) and the same image. Null: capture again.
    /// </summary>
    TimeSpan? TryRestamp(RegistryEntry entry, string exePath)
    {
        // an init-level image carries a link-level one with stamps of its own, variants have theirs: captured again whole
        if (entry.Image is not { } image || image.Fallback is not null || image.Header.VariantCount > 1 || image.Files.Where((f, i) => i == 0 || (f.Flags & ImageFormat.FileMapped) != 0)
                .Any(f => Staleness.OfFile(f, f == image.Files[0]) is not null))
            return null;
        if (Staleness.Of(image) is string s && (s == "kernel changed" || s.StartsWith("cpu differs", StringComparison.Ordinal)))
            return null;
        var started = System.Diagnostics.Stopwatch.StartNew();
        IReadOnlyList<FileEntry> now;
        using (var p = Tracer.RunToResumePoint(exePath, environment, new CaptureOptions(image.Header.RlimitStack)))
            now = SnapshotBuilder.FileStamps(p);
        // by path: libraries land in address order, and a small one may fill a gap another time
        var byPath = now.ToDictionary(f => f.Path);
        bool same = now.Count == image.Files.Count && image.Files.All(f => byPath.TryGetValue(f.Path, out var n)
            && n.Flags == f.Flags && ((f.Flags & ImageFormat.FileStamp) != 0 || FileStamp.Same(f, n)));
        if (!same)
            return null;
        ImageWriter.Restamp(entry.Path, image.Files.Select(f => byPath[f.Path]).ToList());
        return started.Elapsed;
    }

    /// <summary>The process's environment as a dictionary, the usual <c>environment</c> argument.</summary>
    public static IReadOnlyDictionary<string, string> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
}
