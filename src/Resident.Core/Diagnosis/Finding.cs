namespace Resident.Diagnosis;

/// <summary>One line of `resident doctor`: what was checked, whether it is fine, and the explanation.</summary>
/// <param name="Informational">a fact, not a check (e.g. "no image yet"): neither ✓ nor ✗, and not a failure.</param>
public sealed record Finding(bool Ok, string Subject, string Detail, bool Informational = false);
