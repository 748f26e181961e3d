using Iced.Intel;

namespace Resident.Elf;

/// <summary>
/// The only ld.so entry sequence resident knows how to take over (glibc x86_64,
/// sysdeps/x86_64/dl-machine.h RTLD_START):
/// <code>
/// _start:          mov %rsp,%rdi ; call _dl_start
/// _dl_start_user:  mov %rax,%r12 ; ...            (ResumePc, then ResumeCont)
/// </code>
/// </summary>
public static class LdSoEntry
{
    /// <summary>Enough bytes at _start to hold the three instructions.</summary>
    public const int WindowSize = 32;

    public readonly record struct ResumePoint(ulong ResumePc, ulong ResumeCont);

    /// <summary>
    /// Decodes <paramref name="code"/> found at ld.so's entry <paramref name="entry"/>.
    /// Throws RefusalException("ld.so entry pattern unknown: ...") for anything else.
    /// </summary>
    public static ResumePoint Decode(ReadOnlySpan<byte> code, ulong entry)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(code.ToArray()), entry);
        var first = decoder.Decode();
        var call = decoder.Decode();
        var resume = decoder.Decode();
        Require(IsMov(first, Register.RDI, Register.RSP), first, "mov %rsp,%rdi");
        Require(call.Code == Code.Call_rel32_64, call, "call _dl_start");
        Require(IsMov(resume, Register.R12, Register.RAX), resume, "mov %rax,%r12");
        return new ResumePoint(resume.IP, resume.NextIP);
    }

    static bool IsMov(in Instruction i, Register dst, Register src) =>
        i.Mnemonic == Mnemonic.Mov && i.OpCount == 2
        && i.Op0Kind == OpKind.Register && i.Op0Register == dst
        && i.Op1Kind == OpKind.Register && i.Op1Register == src;

    static void Require(bool ok, in Instruction found, string expected)
    {
        if (!ok)
            throw new RefusalException($"ld.so entry pattern unknown: expected '{expected}' at 0x{found.IP:x}, found '{found}'");
    }
}
