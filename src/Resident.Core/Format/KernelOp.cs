using System.Buffers.Binary;

namespace Resident.Format;

/// <summary>
/// One call of the constructors that set kernel state of the process (struct rs_kernel_op, init
/// level), replayed by the takeover in order: a signal's disposition, the signal mask, the umask,
/// a resource limit, the thread's name.
/// </summary>
/// <param name="Kind">ImageFormat.Kop*.</param>
/// <param name="Arg">the signal number, the mask's how, the resource; 0 when unused.</param>
/// <param name="Value">four words (see native/image.h for each kind).</param>
public sealed record KernelOp(uint Kind, uint Arg, IReadOnlyList<ulong> Value)
{
    public static KernelOp Sigaction(uint signal, ReadOnlySpan<byte> act) => new(ImageFormat.KopSigaction, signal, Words(act, 4));

    public static KernelOp Sigprocmask(uint how, ReadOnlySpan<byte> set) => new(ImageFormat.KopSigprocmask, how, Words(set, 1));

    public static KernelOp Umask(ulong mask) => new(ImageFormat.KopUmask, 0, [mask & 0x1ff, 0, 0, 0]);

    public static KernelOp Rlimit(uint resource, ReadOnlySpan<byte> limit) => new(ImageFormat.KopRlimit, resource, Words(limit, 2));

    public static KernelOp Name(ReadOnlySpan<byte> name)
    {
        Span<byte> padded = stackalloc byte[32];
        padded.Clear();
        name[..Math.Min(name.Length, 15)].CopyTo(padded);   // the kernel keeps 15 bytes and a NUL
        return new(ImageFormat.KopName, 0, Words(padded, 4));
    }

    static ulong[] Words(ReadOnlySpan<byte> bytes, int n)
    {
        var words = new ulong[4];
        for (int i = 0; i < n; i++)
            words[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(i * 8)..]);
        return words;
    }

    public bool Equals(KernelOp? other) => other is not null && Kind == other.Kind && Arg == other.Arg && Value.SequenceEqual(other.Value);

    public override int GetHashCode() => HashCode.Combine(Kind, Arg, Value[0]);

    static readonly string[] Resources =
        ["cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile", "memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"];

    /// <summary>One line for `resident show`: "sigaction SIGINT: handler 0x...", "umask 077", ...</summary>
    public override string ToString() => Kind switch
    {
        ImageFormat.KopSigaction => $"sigaction {SignalName(Arg)}: " + Value[0] switch
        {
            0 => "default",
            1 => "ignored",
            var h => $"handler 0x{h:x}",
        } + (Value[3] != 0 ? $", mask 0x{Value[3]:x}" : ""),
        ImageFormat.KopSigprocmask => $"sigprocmask {(Arg switch { 0 => "block", 1 => "unblock", _ => "set" })} 0x{Value[0]:x}",
        ImageFormat.KopUmask => $"umask {Convert.ToString((long)Value[0], 8).PadLeft(3, '0')}",
        ImageFormat.KopRlimit => $"rlimit {(Arg < Resources.Length ? Resources[Arg] : Arg.ToString())}: soft {Limit(Value[0])}, hard {Limit(Value[1])}",
        ImageFormat.KopName => $"name \"{NameText()}\"",
        _ => $"kind {Kind}",
    };

    string NameText()
    {
        var bytes = Value.SelectMany(BitConverter.GetBytes).TakeWhile(b => b != 0).ToArray();
        return System.Text.Encoding.UTF8.GetString(bytes);
    }

    static string Limit(ulong v) => v == ulong.MaxValue ? "unlimited" : v.ToString();

    static readonly string[] Signals =
        ["", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM",
         "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"];

    public static string SignalName(uint signal) => signal is > 0 and < 32 ? "SIG" + Signals[signal] : $"signal {signal}";
}
