using Xunit;
using Resident.Elf;

namespace Resident.Tests.Elf;

public sealed class LdSoEntryTests
{
    // mov %rsp,%rdi ; call +0xbf8 ; mov %rax,%r12 ; mov (%rsp),%rdx  (glibc 2.36's RTLD_START)
    static readonly byte[] Glibc = [0x48, 0x89, 0xe7, 0xe8, 0xf8, 0x0b, 0x00, 0x00, 0x49, 0x89, 0xc4, 0x48, 0x8b, 0x14, 0x24, 0x90];

    [Fact]
    public void DecodesGlibcEntry()
    {
        var rp = LdSoEntry.Decode(Glibc, 0x7f0000001000);
        Assert.Equal(0x7f0000001008UL, rp.ResumePc);
        Assert.Equal(0x7f000000100bUL, rp.ResumeCont);
    }

    [Theory]
    [InlineData(0)]   // first instruction changed
    [InlineData(3)]   // call replaced
    [InlineData(9)]   // different register after the call
    public void RefusesAnythingElse(int patched)
    {
        var code = (byte[])Glibc.Clone();
        code[patched] = patched == 3 ? (byte)0x90 : (byte)0x8b;
        var e = Assert.Throws<RefusalException>(() => LdSoEntry.Decode(code, 0x1000));
        Assert.StartsWith("ld.so entry pattern unknown", e.Message);
    }

    [Fact]
    public void DecodesTheSystemLoaderFile()
    {
        var ld = ElfFile.Read(ProgramFileCheck.SystemInterpreter);
        var rp = LdSoEntry.Decode(ld.ReadAtVAddr(ld.Entry, LdSoEntry.WindowSize), ld.Entry);
        Assert.Equal(ld.Entry + 8, rp.ResumePc);
    }
}
