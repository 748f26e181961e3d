namespace Resident.Format;

/// <summary>
/// One word of the snapshot that pointed into the capture's initial stack, by meaning
/// (struct rs_patch). <paramref name="Index"/> per kind as in image.h, except that for
/// RS_PATCH_ENV_STRING the variable is named by <paramref name="EnvName"/> and Index is
/// its string-table offset, assigned by the writer (0 before writing).
/// </summary>
public sealed record Patch(ulong Addr, uint Kind, uint Index, long Delta, string? EnvName = null)
{
    public static string KindName(uint kind) => kind switch
    {
        ImageFormat.PatchArgc => "argc",
        ImageFormat.PatchArgv => "argv",
        ImageFormat.PatchEnvp => "envp",
        ImageFormat.PatchAuxv => "auxv",
        ImageFormat.PatchArgString => "arg-string",
        ImageFormat.PatchEnvString => "env-string",
        ImageFormat.PatchAuxvValue => "auxv-value",
        ImageFormat.PatchArgcCount => "argc-count",
        ImageFormat.PatchArgBasename => "arg-basename",
        ImageFormat.PatchMangled => "mangled",
        ImageFormat.PatchMangledArgc => "mangled-argc",
        ImageFormat.PatchRandom => "random",
        ImageFormat.PatchCanary => "canary",
        _ => $"kind-{kind}",
    };

    public override string ToString() =>
        $"0x{Addr:x} {KindName(Kind)}[{(Kind == ImageFormat.PatchEnvString ? EnvName : Index.ToString())}]{Delta:+0;-0;+0}";
}
