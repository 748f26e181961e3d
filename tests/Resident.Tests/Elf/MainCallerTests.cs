using Xunit;
using Resident.Elf;

namespace Resident.Tests.Elf;

/// <summary>
/// Where an init-level restore resumes, found in the bytes of each glibc's caller of main (from
/// the matrix's libc.so.6 files), and refused where the loads do not give main's arguments.
/// </summary>
public sealed class MainCallerTests
{
    const ulong Rsp = 0x7ffc0000f000, Environ = 0x7f00001db320, EnvironGot = 0x7f00001d2f90, Main = 0x401136;
    const ulong Argc = 3, Argv = 0x7ffc0000f100, Envp = 0x7ffc0000f120;

    /// <summary>The process memory the loads read (8 bytes at each address): the frame at the call, the GOT slot and __environ.</summary>
    static Func<ulong, ulong?> Memory(Dictionary<long, ulong> frame) => a =>
        a == EnvironGot ? Environ : a == Environ ? Envp
        : frame.TryGetValue((long)(a - Rsp), out ulong v) ? v : null;

    static MainCaller.Site? Find(byte[] code, Dictionary<long, ulong> frame, ulong ret) =>
        MainCaller.Find(code, ret, Rsp, new MainCaller.MainCall(Argc, Argv, Envp, Main), Memory(frame));

    /// <summary>The bytes before the return address: a store that is no load, then the sequence; the GOT slot is rip-relative to ret.</summary>
    static (byte[] Code, ulong Ret) Code(byte[] sequence)
    {
        var code = new byte[MainCaller.WindowSize];
        for (int i = 0; i < code.Length - sequence.Length; i++)
            code[i] = 0x90;   // nop: not a load
        sequence.CopyTo(code, code.Length - sequence.Length);
        return (code, 0x7f0000027248);
    }

    /// <summary>mov rip-relative GOT,%rax with the displacement that reaches EnvironGot from its end.</summary>
    static byte[] MovGot(ulong end) => [0x48, 0x8b, 0x05, .. BitConverter.GetBytes((int)(long)(EnvironGot - end))];

    [Fact]
    public void Glibc236_LoadsThenCallRax()
    {
        // mov GOT,%rax; mov 0x18(%rsp),%rsi; mov 0x14(%rsp),%edi; mov (%rax),%rdx; mov 0x8(%rsp),%rax; call *%rax
        byte[] tail = [0x48, 0x8b, 0x74, 0x24, 0x18, 0x8b, 0x7c, 0x24, 0x14, 0x48, 0x8b, 0x10, 0x48, 0x8b, 0x44, 0x24, 0x08, 0xff, 0xd0];
        ulong ret = 0x7f0000027248, gotEnd = ret - (ulong)tail.Length;
        var (code, _) = Code([.. MovGot(gotEnd), .. tail]);
        var frame = new Dictionary<long, ulong> { [0x18] = Argv, [0x14] = Argc, [0x8] = Main };
        var site = Find(code, frame, ret);
        Assert.NotNull(site);
        Assert.Equal(gotEnd - 7, site!.Resume);
        Assert.Equal((0x14L, 4), (site.ArgcOffset, site.ArgcSize));
    }

    [Fact]
    public void Glibc231_Inline_ArgvAtRsp()
    {
        // mov GOT,%rax; mov 0xc(%rsp),%edi; mov (%rsp),%rsi; mov (%rax),%rdx; mov 0x10(%rsp),%rax; call *%rax
        byte[] tail = [0x8b, 0x7c, 0x24, 0x0c, 0x48, 0x8b, 0x34, 0x24, 0x48, 0x8b, 0x10, 0x48, 0x8b, 0x44, 0x24, 0x10, 0xff, 0xd0];
        ulong ret = 0x7f0000027248, gotEnd = ret - (ulong)tail.Length;
        var (code, _) = Code([.. MovGot(gotEnd), .. tail]);
        var frame = new Dictionary<long, ulong> { [0x0] = Argv, [0xc] = Argc, [0x10] = Main };
        var site = Find(code, frame, ret);
        Assert.Equal((gotEnd - 7, 0xcL, 4), (site!.Resume, site.ArgcOffset, site.ArgcSize));
    }

    [Fact]
    public void Glibc243_CallThroughTheFrame()
    {
        // mov GOT,%rax; mov 0x18(%rsp),%rsi; mov 0x14(%rsp),%edi; mov (%rax),%rdx; call *0x8(%rsp)
        byte[] tail = [0x48, 0x8b, 0x74, 0x24, 0x18, 0x8b, 0x7c, 0x24, 0x14, 0x48, 0x8b, 0x10, 0xff, 0x54, 0x24, 0x08];
        ulong ret = 0x7f0000027248, gotEnd = ret - (ulong)tail.Length;
        var (code, _) = Code([.. MovGot(gotEnd), .. tail]);
        var frame = new Dictionary<long, ulong> { [0x18] = Argv, [0x14] = Argc, [0x8] = Main };
        Assert.Equal(gotEnd - 7, Find(code, frame, ret)!.Resume);
    }

    /// <summary>Loads that do not give main's arguments (another argc in the frame), or no load at all: no site.</summary>
    [Fact]
    public void OtherShapes_Refused()
    {
        byte[] tail = [0x48, 0x8b, 0x74, 0x24, 0x18, 0x8b, 0x7c, 0x24, 0x14, 0x48, 0x8b, 0x10, 0x48, 0x8b, 0x44, 0x24, 0x08, 0xff, 0xd0];
        ulong ret = 0x7f0000027248, gotEnd = ret - (ulong)tail.Length;
        var (code, _) = Code([.. MovGot(gotEnd), .. tail]);
        var wrongArgc = new Dictionary<long, ulong> { [0x18] = Argv, [0x14] = 9, [0x8] = Main };
        Assert.Null(Find(code, wrongArgc, ret));
        var (direct, _) = Code([0xe8, 0, 0, 0, 0]);   // call rel32: not how glibc calls main
        Assert.Null(Find(direct, wrongArgc, ret));
    }
}
