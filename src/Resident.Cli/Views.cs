using System.Text.Json.Serialization;
using Resident.Capture;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;
using Resident.Registry;

namespace Resident.Cli;

/// <summary>
/// One registration as list and show print it, in text and in JSON (--json). Null fields are
/// those a corrupt image cannot tell.
/// </summary>
/// <param name="State">"fresh", "stale" or "corrupt"; <paramref name="Reason"/> says why when not fresh.</param>
/// <param name="StartRatio">what `resident add` measured: a restored start to main over a normal one (below 1 is faster); null if not measured.</param>
public sealed record ListItem(ulong? Id, string? Program, string Image, long? Size, string? Level, string State, string? Reason,
    DateTimeOffset? Captured, bool? LazyBind, double? StartRatio = null, double? NormalMs = null, double? ResidentMs = null)
{
    public static ListItem From(RegistryEntry e)
    {
        if (e.Image is null && e.Old is { } old)
            return new ListItem(old.Id, old.ExePath, e.Path, new FileInfo(e.Path).Length, null, "stale", e.Staleness(), null, null);
        if (e.Image is not { } img)
            return new ListItem(null, null, e.Path, null, null, "corrupt", e.Error, null, null);
        string? why = Staleness.Of(img);
        var h = img.Header;
        // the measurement add printed, from the same nanoseconds: list and show format it as add did
        var m = h.MeasuredNormalNs != 0 && h.MeasuredResidentNs != 0 ? new StartMeasurement(h.MeasuredNormalNs, h.MeasuredResidentNs) : null;
        uint variants = Math.Max(h.VariantCount, 1);
        long size = (long)h.FileSize + RegistryPaths.VariantFiles(e.Path).Sum(f => new FileInfo(f.Path).Length);
        return new ListItem(h.Id, img.ExePath, e.Path, size, img.LevelName, why is null ? "fresh" : "stale", why,
            img.CaptureTime, img.LazyBind, m?.Ratio, m?.NormalMs, m?.ResidentMs)
        { Variants = variants, LayoutBits = Math.Log2(variants) };
    }

    /// <summary>Address layouts of the registration (`add --variants K`): the hook picks one per exec. 1: one layout (0 bits).</summary>
    public uint Variants { get; init; } = 1;

    /// <summary>log2 of <see cref="Variants"/>: bits of layout entropy per exec for the executable, the libraries and ld.so.</summary>
    public double LayoutBits { get; init; }

    /// <summary>"4 bits", "1 bit", "1.6 bits".</summary>
    public static string BitsText(double bits) => bits == 1 ? "1 bit" : $"{bits:0.#} bits";

    /// <summary>"16 (4 bits)", or "1".</summary>
    [JsonIgnore]
    public string VariantsText => Variants > 1 ? $"{Variants} ({BitsText(LayoutBits)})" : "1";

    /// <summary>"0.71×", or "-" when not measured.</summary>
    [JsonIgnore]
    public string StartText => StartRatio is double r ? $"{r:0.00}×" : "-";

    /// <summary>"fresh", "stale: REASON", "corrupt: REASON".</summary>
    [JsonIgnore]
    public string StateText => Reason is null ? State : $"{State}: {Reason}";
}

/// <summary>resident show: one image in detail.</summary>
/// <param name="BytesStored">pages saved in the image file itself.</param>
/// <param name="BytesMapped">pages mapped back from the program's and libraries' files.</param>
/// <param name="Patches">patched pointers into the old stack, counted by kind.</param>
/// <param name="Environment">the variables the hook requires equal at restore (LD_*, MALLOC_*, GLIBC_TUNABLES...).</param>
public sealed record ShowItem(ListItem Registration, long BytesStored, long BytesMapped, long BytesZero, IReadOnlyList<RegionItem> Regions,
    Dictionary<string, int> Patches, IReadOnlyList<FileItem> Files, IReadOnlyList<string> Environment, MachineItem Machine)
{
    /// <summary>Init level: the variables the constructors looked up ("NAME=VALUE", or "NAME" unset): a start where one differs is restored from the link level (<see cref="FallbackBytes"/>).</summary>
    public IReadOnlyList<string> DependsOn { get; init; } = [];

    /// <summary>Init level: the kernel state the constructors set, one line each, which the takeover sets again.</summary>
    public IReadOnlyList<string> KernelState { get; init; } = [];

    /// <summary>Init level with variables looked up: the size of the link-level image the file carries for a start where one differs; null when none.</summary>
    public long? FallbackBytes { get; init; }

    /// <summary>Each layout variant: where its ld.so and executable lie (variant 0 is this image; a missing file is one the hook replaces by variant 0).</summary>
    public IReadOnlyList<VariantItem> Layouts { get; init; } = [];

    public static ShowItem From(RegistryEntry e, ImageInfo img) => new(
        ListItem.From(e),
        img.SavedBytes,
        Bytes(img, ImageFormat.RegionFile),
        Bytes(img, ImageFormat.RegionZero),
        img.Regions.Select(r => RegionItem.From(r, img)).ToList(),
        img.Patches.GroupBy(p => Patch.KindName(p.Kind)).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()),
        img.Files.Select((f, i) => FileItem.From(f, i == 0)).ToList(),
        img.Env,
        MachineItem.From(img))
    {
        PrefaultSpans = img.Prefault.Count,
        PrefaultBytes = img.Prefault.Sum(s => (long)(s.End - s.Start)),
        DependsOn = img.EnvDeps,
        KernelState = img.KernelOps.Select(k => k.ToString()).ToList(),
        FallbackBytes = img.Fallback is null ? null : (long)img.Header.FallbackSize,
        Layouts = VariantItem.All(e.Path, img),
    };

    /// <summary>rs_header.prefault: read-only file pages the constructors touched at capture, mapped at once by a restore.</summary>
    public int PrefaultSpans { get; init; }

    public long PrefaultBytes { get; init; }

    static long Bytes(ImageInfo img, uint kind) => img.Regions.Where(r => r.Kind == kind).Sum(r => (long)r.Length);
}

/// <param name="Ldso">ld.so's load address in this variant; null when its file is missing or unreadable (<paramref name="State"/>).</param>
public sealed record VariantItem(uint Index, string? Ldso, string? Executable, string State)
{
    public static IReadOnlyList<VariantItem> All(string imagePath, ImageInfo primary)
    {
        uint count = Math.Max(primary.Header.VariantCount, 1);
        var list = new List<VariantItem>();
        for (uint i = 0; i < count; i++)
        {
            string path = RegistryPaths.VariantPath(imagePath, i);
            try
            {
                var img = i == 0 ? primary : ImageReader.Read(path);
                bool ours = img.Header.Id == primary.Header.Id && img.Header.VariantIndex == i && Math.Max(img.Header.VariantCount, 1) == count;
                list.Add(new VariantItem(i, $"0x{img.Header.LdsoBase:x}", $"0x{img.Header.AtPhdr - Elf.ElfFile.HeaderSize:x}",
                    ours ? Staleness.Of(img) ?? "fresh" : "not of this set: the hook refuses it"));
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                list.Add(new VariantItem(i, null, null, File.Exists(path) ? $"corrupt: {e.Message}" : "missing: the hook uses variant 0"));
            }
        }
        return list;
    }
}

/// <param name="Source">file, image or zero: where the restore takes the pages from.</param>
public sealed record RegionItem(string Start, string End, ulong Size, string Source, string Prot, string? File, string Name)
{
    public static RegionItem From(Region r, ImageInfo img) => new(
        $"0x{r.Start:x}", $"0x{r.End:x}", r.Length, Region.KindName(r.Kind), ProtText(r.Prot),
        r.Kind == ImageFormat.RegionFile && r.File < img.Files.Count ? img.Files[(int)r.File].Path : null, r.Name);

    static string ProtText(uint p) =>
        $"{((p & MapsEntry.ProtRead) != 0 ? 'r' : '-')}{((p & MapsEntry.ProtWrite) != 0 ? 'w' : '-')}{((p & MapsEntry.ProtExec) != 0 ? 'x' : '-')}";
}

/// <param name="Kind">mapped (pages come from it), stamp (checked only, e.g. /etc/ld.so.cache) or absent (probed, must stay absent).</param>
/// <param name="State">"unchanged" or why the hook would fall back because of this file.</param>
public sealed record FileItem(string Path, string Kind, ulong Dev, ulong Ino, ulong Size, string Mtime, string State)
{
    public static FileItem From(FileEntry f, bool isExe) => new(
        f.Path,
        (f.Flags & ImageFormat.FileAbsent) != 0 ? "absent" : (f.Flags & ImageFormat.FileMapped) != 0 ? "mapped" : "stamp",
        f.Dev, f.Ino, f.Size,
        (f.Flags & ImageFormat.FileAbsent) != 0 ? "" : DateTimeOffset.FromUnixTimeSeconds(f.MtimeSec).AddTicks(f.MtimeNsec / 100).ToString("yyyy-MM-dd HH:mm:ss.fffffff'Z'"),
        Staleness.OfFile(f, isExe) ?? "unchanged");
}

/// <summary>The machine the image belongs to: the hook falls back on any other kernel or cpu.</summary>
/// <param name="CpuFeatures">checksum of ld.so's cpu_features copy (compared at restore, one byte masked).</param>
public sealed record MachineItem(string KernelRelease, string KernelVersion, string Platform, string Hwcap, string Hwcap2, string VdsoHash,
    string CpuFeatures, ulong RlimitStack)
{
    public static MachineItem From(ImageInfo img) => new(
        img.KernelRelease, img.KernelVersion, img.Platform, $"0x{img.Header.Hwcap:x}", $"0x{img.Header.Hwcap2:x}", $"0x{img.Header.VdsoHash:x}",
        img.CpuFeatures.Length % 8 == 0 ? $"0x{ImageFormat.Checksum(img.CpuFeatures):x} ({img.CpuFeatures.Length} bytes)" : $"{img.CpuFeatures.Length} bytes",
        img.Header.RlimitStack);
}

/// <summary>System.Text.Json source generation: no reflection, so NativeAOT keeps working.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(List<ListItem>))]
[JsonSerializable(typeof(ShowItem))]
public sealed partial class ResidentJson : JsonSerializerContext;
