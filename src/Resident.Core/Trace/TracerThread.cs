using System.Collections.Concurrent;

namespace Resident.Trace;

/// <summary>
/// The one thread that makes every ptrace and waitpid call of a capture. ptrace binds a
/// tracee to the tracer *thread*, and PTRACE_O_EXITKILL kills the tracee when that thread
/// ends, so it lives from the spawn to the final reap. Work runs in order, one item at a time.
/// </summary>
internal sealed class TracerThread : IDisposable
{
    readonly BlockingCollection<Action> _work = new();
    readonly Thread _thread;

    public TracerThread()
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = "resident-tracer" };
        _thread.Start();
    }

    void Loop()
    {
        foreach (var item in _work.GetConsumingEnumerable())
            item();
    }

    /// <summary>Queues <paramref name="work"/>; the task completes with its result or exception.</summary>
    public Task<T> Post<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        });
        return done.Task;
    }

    /// <summary>Runs <paramref name="work"/> on the thread and waits for it; rethrows its exception as is.</summary>
    public T Invoke<T>(Func<T> work) => Post(work).GetAwaiter().GetResult();

    public void Invoke(Action work) => Invoke(() => { work(); return 0; });

    /// <summary>
    /// Finishes queued work and ends the thread (which detaches or kills any tracee left). Waits
    /// at most <see cref="Tracer.KillGrace"/>: a thread stuck with a process that will not die is
    /// left behind (it is a background thread) rather than hanging the command.
    /// </summary>
    public void Dispose()
    {
        if (_work.IsAddingCompleted)
            return;
        _work.CompleteAdding();
        if (Thread.CurrentThread != _thread)
            _thread.Join(Tracer.KillGrace);
    }
}
