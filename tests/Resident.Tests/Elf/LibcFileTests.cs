using Xunit;
using Resident.Elf;

namespace Resident.Tests.Elf;

/// <summary>libc by its mapped name, in every glibc of the matrix: libc.so.6 (2.34 on), libc-2.31.so (before).</summary>
public class LibcFileTests
{
    [Theory]
    [InlineData("/usr/lib/x86_64-linux-gnu/libc.so.6", true)]
    [InlineData("/lib/x86_64-linux-gnu/libc-2.31.so", true)]
    [InlineData("/lib/x86_64-linux-gnu/libc-2.28.so", true)]
    [InlineData("/usr/lib/x86_64-linux-gnu/libcrypt.so.1", false)]
    [InlineData("/usr/lib/x86_64-linux-gnu/libc-client.so.2007e", false)]
    [InlineData("/lib/x86_64-linux-gnu/libcap.so.2", false)]
    [InlineData("/lib/libc-2.so", false)]
    public void TheCLibrary_IsKnownByItsMappedName(string path, bool expected) => Assert.Equal(expected, LibcFile.Is(path));

    /// <summary>This machine's own libc, as the process maps it.</summary>
    [Fact]
    public void ThisProcessLibc_IsFound() =>
        Assert.Contains(File.ReadAllLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 6),
            f => LibcFile.Is(f[5]));
}
