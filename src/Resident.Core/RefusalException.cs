namespace Resident;

/// <summary>
/// "This cannot be done, and here is why": a one-line reason for the user (a program resident
/// will not capture, an image it will not write, a file it cannot read). Every layer throws it;
/// the CLI prints the message and exits non-zero, leaving existing images as they were.
/// </summary>
public class RefusalException(string message) : Exception(message);
