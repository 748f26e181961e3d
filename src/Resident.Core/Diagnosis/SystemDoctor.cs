using System.Runtime.InteropServices;
using Resident.Elf;
using Resident.HookContract;
using Resident.Proc;
using Resident.Registry;
using Resident.Trace;

namespace Resident.Diagnosis;

/// <summary>
/// `resident doctor`: whether this machine, this user and this shell can capture and restore.
/// Each check asks the system itself (a real ptrace of a child, a real prctl) where that is
/// safe from inside this process, and says when it only infers.
/// </summary>
/// <param name="HookPath">the libresident.so this resident would enable.</param>
/// <param name="LdAudit">LD_AUDIT of the shell resident was started from.</param>
public sealed record DoctorContext(string HookPath, string? LdAudit, ImageRegistry? UserRegistry, ImageRegistry SystemRegistry);

public static class SystemDoctor
{
    public static IReadOnlyList<Finding> Run(DoctorContext c) =>
    [
        Ptrace(),
        GetAuxv(),
        VdsoMremap(),
        Rseq(),
        LdSoEntryPattern(),
        UserRegistry(c.UserRegistry),
        SystemRegistry(c.SystemRegistry),
        HookEnabled(c.HookPath, c.LdAudit),
        HookTrusted(c.HookPath),
    ];

    /// <summary>
    /// Starts /bin/true the way a capture does, up to its exec under PTRACE_SEIZE, and stops
    /// there: the capture's own code path, so "allowed" means a capture can trace.
    /// </summary>
    static Finding Ptrace()
    {
        string scope = ProcFs.YamaPtraceScope() is { } s ? $"yama ptrace_scope {s}" : "no Yama";
        const string Reached = "reached the exec";
        string? failure;
        using (var thread = new TracerThread())
        using (var run = new PtraceRun("/bin/true", (_, _) => throw new RefusalException(Reached), new SyscallLog()))
        {
            try { thread.Invoke(() => run.RunToStop([])); failure = "the test child did not stop"; }
            catch (RefusalException e) { failure = e.Message == Reached ? null : e.Message; }
            catch (Exception e) when (e is ErrnoException or IOException or ProgramEndedException) { failure = e.Message; }
        }
        return failure is null
            ? new Finding(true, "ptrace allowed", $"{scope}; a test child was seized and followed to its exec")
            : new Finding(false, "ptrace allowed", $"{scope}; tracing a test child failed: {failure}");
    }

    static unsafe Finding GetAuxv()
    {
        var buf = stackalloc ulong[128];
        int n = Interop.Prctl(Interop.PR_GET_AUXV, (nuint)buf, 128 * sizeof(ulong), 0, 0);
        return n > 0
            ? new Finding(true, "PR_GET_AUXV", $"supported ({n} bytes of auxv)")
            : new Finding(true, "PR_GET_AUXV", $"not supported ({Marshal.GetLastPInvokeErrorMessage()}; Linux 6.4+): the hook reads /proc/self/auxv instead, one open+read more per exec");
    }

    // Not tried: moving this process's own vdso would break its clock calls (glibc keeps
    // pointers into it), and doing it in a traced child takes injected code.
    static Finding VdsoMremap()
    {
        var (release, _) = Interop.Uname();
        var parts = release.Split('.', '-');
        bool ok = parts.Length >= 2 && int.TryParse(parts[0], out int major) && int.TryParse(parts[1], out int minor)
            && (major > 4 || (major == 4 && minor >= 6));
        return new Finding(ok, "vdso mremap",
            $"kernel {release} {(ok ? "is" : "is not")} 4.6 or later, where x86 lets mremap move the [vdso] (inferred from the version, not tried)");
    }

    static Finding Rseq()
    {
        if (!NativeLibrary.TryLoad(Interop.Libraries.Libc, out nint libc) || !NativeLibrary.TryGetExport(libc, "__rseq_size", out nint sym))
            return new Finding(true, "rseq", $"glibc {Interop.LibcVersion()} does not register rseq: nothing to restore");
        uint size = (uint)Marshal.ReadInt32(sym);
        return new Finding(true, "rseq", size > 0
            ? $"glibc registers rseq ({size} bytes): the takeover re-registers the image's area"
            : "glibc did not register rseq here (kernel without rseq or glibc.pthread.rseq=0): nothing to restore");
    }

    static Finding LdSoEntryPattern()
    {
        string loader = ProgramFileCheck.SystemInterpreter;
        try
        {
            string real = Interop.RealPath(loader) ?? throw new RefusalException($"{loader} does not exist");
            var resume = ProgramFileCheck.DecodeInterpreterEntry(real);
            var facts = LdsoFacts.Read(real);
            return new Finding(true, "ld.so entry pattern", $"{real} (glibc {Interop.LibcVersion()}): _dl_start_user at +0x{resume.ResumePc:x}, "
                + $"struct cpu_features at +0x{facts.CpuFeaturesOff:x}");
        }
        catch (RefusalException e)
        {
            return new Finding(false, "ld.so entry pattern", $"{loader}: {e.Message}");
        }
    }

    static Finding UserRegistry(ImageRegistry? r)
    {
        const string Subject = "your registry";
        if (r is null)
            return new Finding(false, Subject, "none: set RESIDENT_DIR, XDG_CACHE_HOME or HOME to an absolute path");
        if (!Directory.Exists(r.Directory))
            return new Finding(true, Subject, $"{r.Directory} does not exist yet (resident add creates it, mode 0700)");
        return RegistryFinding(Subject, r);
    }

    static Finding SystemRegistry(ImageRegistry r)
    {
        const string Subject = "system registry";
        if (!Directory.Exists(r.Directory))
            return new Finding(true, Subject, $"{r.Directory} does not exist (resident --system creates it as root)");
        return RegistryFinding(Subject, r);
    }

    /// <summary>The directory and every image in it by the hook's trust rule.</summary>
    static Finding RegistryFinding(string subject, ImageRegistry r)
    {
        if (r.TrustProblem() is { } problem)
            return new Finding(false, subject, problem);
        var images = Directory.GetFiles(r.Directory, "*.img");
        var untrusted = images.Where(i => HookTrust.Problem(i, HookTrust.Kind.Image) is not null).ToList();
        return untrusted.Count == 0
            ? new Finding(true, subject, $"{r.Directory}: trusted, {images.Length} image(s)")
            : new Finding(false, subject, $"{r.Directory}: {untrusted.Count} of {images.Length} image(s) not trusted, e.g. {HookTrust.Problem(untrusted[0], HookTrust.Kind.Image)}");
    }

    internal static Finding HookEnabled(string hook, string? ldAudit)
    {
        var modules = (ldAudit ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        if (!modules.Contains(hook))
            return new Finding(false, "hook enabled in this shell", $"LD_AUDIT does not name {hook}: eval \"$(resident shell-init bash)\"");
        if (modules.Length > 1)
            return new Finding(false, "hook enabled in this shell",
                $"LD_AUDIT also names {string.Join(", ", modules.Where(m => m != hook))}: with another audit module the hook starts programs normally");
        return new Finding(true, "hook enabled in this shell", $"LD_AUDIT={hook}");
    }

    static Finding HookTrusted(string hook)
    {
        if (!File.Exists(hook))
            return new Finding(false, "hook file", $"{hook} does not exist (build it with ./setup.sh)");
        string? problem = HookTrust.Problem(hook, HookTrust.Kind.File) ?? HookTrust.Problem(Path.GetDirectoryName(hook)!, HookTrust.Kind.Directory);
        return problem is null
            ? new Finding(true, "hook file", $"{hook}: owned by you or root, not writable by others")
            : new Finding(false, "hook file", problem + ": anyone who can change it runs code in every program you start");
    }
}
