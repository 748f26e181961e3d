namespace Resident.Bench;

/// <summary>What a benchmark ran on: the header of every table, so numbers are never quoted without it.</summary>
public sealed record MachineInfo(string Cpu, int Cpus, string Kernel, string Glibc)
{
    public static MachineInfo Current() =>
        new(CpuModel(), Environment.ProcessorCount, Interop.Uname().Release, Interop.LibcVersion());

    public override string ToString() => $"{Cpu}, {Cpus} cpus, kernel {Kernel}, glibc {Glibc}";

    /// <summary>The first "model name" of /proc/cpuinfo ("?" where there is none, as on some VMs).</summary>
    static string CpuModel()
    {
        foreach (string line in File.ReadLines("/proc/cpuinfo"))
            if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is var c and >= 0)
                return line[(c + 1)..].Trim();
        return "?";
    }
}
