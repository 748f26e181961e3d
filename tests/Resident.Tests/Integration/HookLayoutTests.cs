using System.Buffers.Binary;
using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// native/hook.ld: an exec without an image runs only the hook's first segment (headers,
/// .rodata, .text.noimage); the rest of the code is a segment of its own that it never touches,
/// so that ld.so's unmap of the module flushes two pages, not six. Checked on a copy of the hook
/// whose code segment is mapped PROT_NONE (its p_flags cleared): without an image every program
/// runs as normal, with one the same copy dies in that segment, which shows the patch bites.
/// </summary>
public sealed class HookLayoutTests(Fixtures fx) : IClassFixture<Fixtures>
{
    /// <summary>A copy of the hook with the PT_LOAD of its code segment (R+X, not at offset 0) made inaccessible.</summary>
    static string HookWithoutCodeSegment(string dir)
    {
        Product.RequireHook();
        var elf = File.ReadAllBytes(Product.Hook);
        ulong phoff = BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(32));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(54));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(56));
        var loads = Enumerable.Range(0, phnum).Select(i => (int)phoff + i * phentsize)
            .Where(o => BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(o)) == 1).ToList(); // PT_LOAD
        Assert.True(loads.Count == 3, $"hook.ld lays out 3 PT_LOADs, {Product.Hook} has {loads.Count}");
        uint Flags(int o) => BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(o + 4));
        ulong Offset(int o) => BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(o + 8));
        Assert.Equal(new uint[] { 5, 6, 5 }, loads.Select(Flags));
        Assert.Equal(0UL, Offset(loads[0]));
        BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(loads[2] + 4), 0);
        string copy = Path.Combine(dir, "libresident-noimage-only.so");
        File.WriteAllBytes(copy, elf);
        return copy;
    }

    [Fact]
    public void WithoutAnImage_TheCodeSegmentIsNeverTouched()
    {
        using var s = new ResidentSession();
        string hook = HookWithoutCodeSegment(s.Root);
        var args = fx.Path("args");
        var programs = new[] { s.Spec("/usr/bin/true"), s.Spec(args, "1", "two"), s.Spec("/usr/bin/perl", "-e", "print 6*7"),
            s.Spec("/bin/sh", "-c", "echo via a shell: $0") };
        foreach (var spec in programs)
        {
            var normal = s.RunNormal(spec);
            var hooked = s.Run(spec with { Env = new Dictionary<string, string>(spec.Env) { ["LD_AUDIT"] = hook } });
            Assert.True((normal.ExitCode, normal.StdoutText, normal.StderrText) == (hooked.ExitCode, hooked.StdoutText, hooked.StderrText),
                $"no image, the hook's first segment only:\n{hooked}\nnormal:\n{normal}");
        }

        // the same copy with an image: validation runs in the code segment, which is not there
        s.Register(args);
        var restored = s.Run(s.Spec(args, "1") with { Env = new Dictionary<string, string>(s.BaseEnv()) { ["LD_AUDIT"] = hook } });
        Assert.True(restored.ExitCode == 128 + 11, $"expected SIGSEGV in the code segment:\n{restored}");
        s.AssertSameResident(s.Spec(args, "1"), args); // the real hook restores it
    }
}
