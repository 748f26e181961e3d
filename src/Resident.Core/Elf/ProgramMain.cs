using Iced.Intel;

namespace Resident.Elf;

/// <summary>
/// main's address, read from the program's entry code as glibc's x86_64 start.S writes it:
/// <code>
/// _start:  xor %ebp,%ebp ; ... ; mov main@GOTPCREL(%rip),%rdi   (or lea main(%rip),%rdi,
///          or mov $main,%rdi) ; call *__libc_start_main@GOTPCREL(%rip)
/// </code>
/// The value rdi holds at the first call is main. Another entry sequence (another libc, a
/// language runtime) gives null.
/// </summary>
public static class ProgramMain
{
    /// <summary>Bytes at the entry point to decode; start.S reaches its call well within them.</summary>
    public const int WindowSize = 64;

    /// <param name="code">the bytes at <paramref name="entry"/> in the stopped process (relocated).</param>
    /// <param name="readWord">reads the 8-byte word at an address of the process (a GOT slot), or null.</param>
    public static ulong? Find(ReadOnlySpan<byte> code, ulong entry, Func<ulong, ulong?> readWord)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(code.ToArray()), entry);
        ulong? rdi = null;
        ulong end = entry + (ulong)code.Length;
        while (decoder.IP < end)
        {
            var i = decoder.Decode();
            if (i.IsInvalid)
                return null;
            if (i.FlowControl is FlowControl.Call or FlowControl.IndirectCall)
                return rdi;
            if (i.FlowControl != FlowControl.Next)
                return null;
            if (i.OpCount > 0 && i.Op0Kind == OpKind.Register && i.Op0Register == Register.RDI)
                rdi = Rdi(i, readWord);
        }
        return null;
    }

    static ulong? Rdi(in Instruction i, Func<ulong, ulong?> readWord) => i.Mnemonic switch
    {
        Mnemonic.Lea when i.IsIPRelativeMemoryOperand => i.IPRelativeMemoryAddress,
        Mnemonic.Mov when i.IsIPRelativeMemoryOperand => readWord(i.IPRelativeMemoryAddress),
        Mnemonic.Mov when i.Op1Kind is OpKind.Immediate32to64 or OpKind.Immediate64 => i.GetImmediate(1),
        _ => null,
    };
}
