using Xunit;
using Resident.Elf;

namespace Resident.Tests.Elf;

public sealed class ProgramMainTests
{
    const ulong Entry = 0x1000;

    // glibc 2.36 start.S, PIE, as linked: ... xor %r8d,%r8d ; xor %ecx,%ecx ; <rdi = main> ; call *__libc_start_main@GOTPCREL(%rip) ; hlt
    static byte[] Start(params byte[] loadRdi) =>
        [0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xed, 0x49, 0x89, 0xd1, 0x5e, 0x48, 0x89, 0xe2, 0x48, 0x83, 0xe4, 0xf0, 0x50, 0x54,
         0x45, 0x31, 0xc0, 0x31, 0xc9, .. loadRdi, 0xff, 0x15, 0x00, 0x10, 0x00, 0x00, 0xf4];

    [Fact]
    public void LeaRelativeToRip()
    {
        // lea -0x18b(%rip),%rdi at offset 24, 7 bytes long
        ulong? main = ProgramMain.Find(Start(0x48, 0x8d, 0x3d, 0x75, 0xfe, 0xff, 0xff), Entry, _ => null);
        Assert.Equal(Entry + 24 + 7 - 0x18b, main);
    }

    [Fact]
    public void MovFromTheGotReadsTheRelocatedSlot()
    {
        // mov 0x100(%rip),%rdi: main's address is in the GOT slot, read from the process
        ulong slot = Entry + 24 + 7 + 0x100;
        ulong? main = ProgramMain.Find(Start(0x48, 0x8b, 0x3d, 0x00, 0x01, 0x00, 0x00), Entry, a => a == slot ? 0x5555_0000_1234UL : null);
        Assert.Equal(0x5555_0000_1234UL, main);
    }

    [Fact]
    public void MovImmediateInANonPieProgram()
    {
        // mov $0x401136,%rdi
        Assert.Equal(0x401136UL, ProgramMain.Find(Start(0x48, 0xc7, 0xc7, 0x36, 0x11, 0x40, 0x00), Entry, _ => null));
    }

    [Fact]
    public void AnotherEntrySequenceGivesNull()
    {
        Assert.Null(ProgramMain.Find([0xe9, 0x00, 0x10, 0x00, 0x00], Entry, _ => null));              // jmp elsewhere
        Assert.Null(ProgramMain.Find(Start(0x48, 0x89, 0xc7), Entry, _ => null));                       // mov %rax,%rdi: unknown value
        Assert.Null(ProgramMain.Find([0x90, 0x90, 0x90, 0x90], Entry, _ => null));                      // no call at all
    }

    [Fact]
    public void PerlsMainAsItsSymbolSaysIt()
    {
        // Debian's perl exports main: the decoded address must be that symbol's
        var elf = ElfFile.Read("/usr/bin/perl");
        ulong? symbol = DynamicSymbols.Find(File.ReadAllBytes("/usr/bin/perl"), "main");
        Assert.NotNull(symbol);
        Assert.Equal(symbol, ProgramMain.Find(elf.ReadAtVAddr(elf.Entry, ProgramMain.WindowSize), elf.Entry, _ => null));
    }
}
