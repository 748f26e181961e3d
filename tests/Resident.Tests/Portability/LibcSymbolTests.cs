using System.Reflection;
using System.Runtime.InteropServices;
using Xunit;
using Resident.Elf;

namespace Resident.Tests.Portability;

/// <summary>
/// dist/resident runs on every glibc from 2.31: each libc function its P/Invokes bind must be
/// exported by the oldest glibc of the matrix, or the first call of it on Debian 11 throws
/// EntryPointNotFoundException (stat, lstat, pidfd_open and posix_spawn_file_actions_addclosefrom_np
/// did). Functions only newer glibc versions have are looked up at run time instead
/// (NativeLibrary.TryGetExport), where a fallback exists.
/// </summary>
public sealed class LibcSymbolTests
{
    [Fact]
    public void EveryPInvokeIsExportedByTheOldestGlibc()
    {
        var libc = File.ReadAllBytes(Chroot.Get("bullseye").Host("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        var imports = typeof(Resident.Elf.LdsoFacts).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<DllImportAttribute>() is { } a ? (Method: m.Name, a.Value, Entry: a.EntryPoint ?? m.Name) : default)
            .Where(i => i.Method != null)
            .ToList();
        Assert.True(imports.Count > 20, $"found only {imports.Count} P/Invokes: the reflection no longer sees them");
        Assert.All(imports, i => Assert.Equal("libc.so.6", i.Value));
        var missing = imports.Where(i => DynamicSymbols.Find(libc, i.Entry) is null).Select(i => $"{i.Entry} ({i.Method})").ToList();
        Assert.True(missing.Count == 0, "not exported by glibc 2.31: " + string.Join(", ", missing));
    }
}
