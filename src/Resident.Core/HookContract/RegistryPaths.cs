using Resident.Format;

namespace Resident.HookContract;

/// <summary>
/// Where images live and what they are called. The same rule is implemented once more in C, in
/// native/hook.c (registry_dir, image_name); RegistryRuleTests checks that both agree.
/// The hook looks in the user's registry first and, when it has no image, in the system's.
/// </summary>
public static class RegistryPaths
{
    /// <summary>
    /// The registry directory: $RESIDENT_DIR if set and absolute, else $XDG_CACHE_HOME/resident if
    /// absolute, else $HOME/.cache/resident. Relative values are ignored (a relative path would
    /// mean a different directory in every working directory). Null when none applies.
    /// </summary>
    public static string? Resolve(Func<string, string?> getenv)
    {
        string? dir = getenv("RESIDENT_DIR");
        if (IsAbsolute(dir)) return dir;
        string? xdg = getenv("XDG_CACHE_HOME");
        if (IsAbsolute(xdg)) return xdg + "/resident";
        string? home = getenv("HOME");
        if (IsAbsolute(home)) return home + "/.cache/resident";
        return null;
    }

    public static string? ResolveFromProcess() => Resolve(Environment.GetEnvironmentVariable);

    /// <summary>Where the system registry is when RESIDENT_SYSTEM_DIR is not set.</summary>
    public const string DefaultSystemDir = "/var/cache/resident";

    /// <summary>
    /// The system registry (resident --system), which the hook consults after the user's:
    /// $RESIDENT_SYSTEM_DIR if set and absolute, else /var/cache/resident.
    /// </summary>
    public static string ResolveSystem(Func<string, string?> getenv)
    {
        string? dir = getenv("RESIDENT_SYSTEM_DIR");
        return IsAbsolute(dir) ? dir! : DefaultSystemDir;
    }

    /// <summary>The image file name of the executable with this st_dev/st_ino: "%llx-%llx.img".</summary>
    public static string ImageFileName(ulong dev, ulong ino) => $"{dev:x}-{ino:x}.img";

    /// <summary>
    /// Variant <paramref name="n"/> &gt; 0 of the image at <paramref name="imagePath"/> (an image of several layouts,
    /// image.h variant_count): "IMAGE.N", beside it (native/hook.c, open_in). Not "*.img": nothing that
    /// lists images takes it for one.
    /// </summary>
    public static string VariantPath(string imagePath, uint n) => n == 0 ? imagePath : $"{imagePath}.{n}";

    /// <summary>The variant files (n &gt; 0) beside <paramref name="imagePath"/>, whatever their number, with their n.</summary>
    public static IEnumerable<(string Path, uint Index)> VariantFiles(string imagePath)
    {
        string dir = Path.GetDirectoryName(imagePath)!, name = Path.GetFileName(imagePath);
        if (!Directory.Exists(dir))
            yield break;
        foreach (string f in Directory.EnumerateFiles(dir, name + ".*"))
            if (Path.GetFileName(f) is { } file && file.Length > name.Length + 1 && file[name.Length] == '.'
                && uint.TryParse(file[(name.Length + 1)..], System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out uint n) && n > 0)
                yield return (f, n);
    }

    /// <summary>
    /// The symlink a registry keeps next to the image of <paramref name="exePath"/>: its name,
    /// "%llx.path" of the FNV-1a-64 hash of the path's bytes, and its target, "IMAGE:PATH" (IMAGE
    /// the image's file name). When an executable is replaced (a new inode, so no image by its
    /// dev/ino), the hook finds its path here under another image and, debugging, says so
    /// instead of nothing (native/hook.c, registered_elsewhere).
    /// </summary>
    public static (string Name, string Target) PathLink(string exePath, string imagePath)
    {
        ulong h = ImageFormat.FnvOffset;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(exePath))
            h = (h ^ b) * ImageFormat.FnvPrime;
        return ($"{h:x}.path", $"{Path.GetFileName(imagePath)}:{exePath}");
    }

    static bool IsAbsolute(string? path) => !string.IsNullOrEmpty(path) && path[0] == '/';
}
