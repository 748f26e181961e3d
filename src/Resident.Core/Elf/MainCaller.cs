using Iced.Intel;

namespace Resident.Elf;

/// <summary>
/// Where an init-level restore resumes: in the code that calls main, at the first of the loads
/// of main's arguments right before the call. glibc's caller (__libc_start_call_main in 2.34 and
/// later, __libc_start_main in 2.31) has the same shape in every version seen:
/// <code>
/// mov  __environ@GOTPCREL(%rip),%rax
/// mov  0x18(%rsp),%rsi          # argv, from its frame
/// mov  0x14(%rsp),%edi          # argc
/// mov  (%rax),%rdx              # __environ
/// mov  0x8(%rsp),%rax           # main
/// call *%rax                    # 2.43: call *0x8(%rsp)
/// </code>
/// Found by meaning, not by offsets: the longest run of plain loads that ends in the call
/// main returns to, whose loads — evaluated on the stopped process — give exactly main's
/// argc, argv, environment and address. Resuming at its start with rsp at the call's frame runs
/// the same call whatever the other registers hold. Another shape gives null.
/// </summary>
public static class MainCaller
{
    /// <summary>Bytes before the return address that are decoded.</summary>
    public const int WindowSize = 48;

    /// <param name="Resume">the first load's address.</param>
    /// <param name="ArgcOffset">where argc is loaded from: rsp + ArgcOffset at the call.</param>
    /// <param name="ArgcSize">4 (mov to edi) or 8 (to rdi).</param>
    public sealed record Site(ulong Resume, long ArgcOffset, int ArgcSize);

    /// <summary>What main received, to check the loads against.</summary>
    public readonly record struct MainCall(ulong Argc, ulong Argv, ulong Envp, ulong Main);

    /// <param name="code">the <see cref="WindowSize"/> bytes before <paramref name="returnAddress"/> in the process.</param>
    /// <param name="callRsp">rsp at the call (main's rsp + 8).</param>
    /// <param name="readWord">reads an 8-byte word of the process, or null.</param>
    public static Site? Find(ReadOnlySpan<byte> code, ulong returnAddress, ulong callRsp, MainCall expected, Func<ulong, ulong?> readWord)
    {
        var bytes = code.ToArray();
        ulong start = returnAddress - (ulong)bytes.Length;
        for (int skip = 0; skip < bytes.Length - 1; skip++)
            if (TryFrom(bytes, start, skip, returnAddress, callRsp, expected, readWord) is { } site)
                return site;
        return null;
    }

    static Site? TryFrom(byte[] bytes, ulong start, int skip, ulong returnAddress, ulong callRsp, MainCall expected, Func<ulong, ulong?> readWord)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes, skip, bytes.Length - skip), start + (ulong)skip);
        var regs = new Dictionary<Register, ulong> { [Register.RSP] = callRsp };
        var slots = new Dictionary<Register, (long Offset, int Size)>();
        while (decoder.IP < returnAddress)
        {
            var i = decoder.Decode();
            if (i.IsInvalid)
                return null;
            if (i.FlowControl == FlowControl.IndirectCall)
            {
                if (decoder.IP != returnAddress || Target(i, regs, readWord) is not ulong target)
                    return null;
                return Matches(regs, target, expected) && slots.TryGetValue(Register.RDI, out var argc)
                    ? new Site(start + (ulong)skip, argc.Offset, argc.Size)
                    : null;
            }
            if (!Load(i, regs, slots, readWord))
                return null;
        }
        return null;
    }

    /// <summary>Where an indirect call goes: a register loaded before (call *%rax), or a word (call *0x8(%rsp), glibc 2.43).</summary>
    static ulong? Target(in Instruction i, Dictionary<Register, ulong> regs, Func<ulong, ulong?> readWord)
    {
        if (i.Op0Kind == OpKind.Register)
            return regs.TryGetValue(i.Op0Register.GetFullRegister(), out ulong r) ? r : null;
        if (i.Op0Kind != OpKind.Memory || i.MemoryIndex != Register.None || i.SegmentPrefix != Register.None)
            return null;
        if (i.IsIPRelativeMemoryOperand)
            return readWord(i.IPRelativeMemoryAddress);
        return regs.TryGetValue(i.MemoryBase, out ulong b) ? readWord(b + i.MemoryDisplacement64) : null;
    }

    /// <summary>A plain load (mov reg, [base + disp]) from rsp, rip or a register loaded before: evaluated into regs.</summary>
    static bool Load(in Instruction i, Dictionary<Register, ulong> regs, Dictionary<Register, (long, int)> slots, Func<ulong, ulong?> readWord)
    {
        if (i.Mnemonic != Mnemonic.Mov || i.OpCount != 2 || i.Op0Kind != OpKind.Register || i.Op1Kind != OpKind.Memory
            || i.MemoryIndex != Register.None || i.SegmentPrefix != Register.None)
            return false;
        var dest = i.Op0Register;
        int size = dest.GetSize();
        if (!dest.IsGPR() || size is not (4 or 8))
            return false;
        ulong addr;
        if (i.IsIPRelativeMemoryOperand)
            addr = i.IPRelativeMemoryAddress;
        else if (regs.TryGetValue(i.MemoryBase, out ulong b))
            addr = b + i.MemoryDisplacement64;
        else
            return false;
        if (readWord(addr) is not ulong value)
            return false;
        var full = dest.GetFullRegister();
        regs[full] = size == 4 ? value & 0xffffffffUL : value;
        if (i.MemoryBase == Register.RSP)
            slots[full] = ((long)i.MemoryDisplacement64, size);
        else
            slots.Remove(full);
        return true;
    }

    static bool Matches(Dictionary<Register, ulong> regs, ulong target, MainCall e) =>
        target == e.Main
        && regs.TryGetValue(Register.RDI, out ulong argc) && (argc & 0xffffffffUL) == e.Argc
        && regs.TryGetValue(Register.RSI, out ulong argv) && argv == e.Argv
        && regs.TryGetValue(Register.RDX, out ulong envp) && envp == e.Envp;
}
