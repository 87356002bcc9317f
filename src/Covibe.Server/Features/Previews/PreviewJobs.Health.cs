using Covibe.Execution;

namespace Covibe.Server.Features.Previews;

/// <summary>Whether a started preview answers: its health check, waited for with the deploy log told why.</summary>
public sealed partial class PreviewJobs
{
    /// <summary>Follows the job until the app answers its health check (<paramref name="built"/> runs when its build is done); throws with the reason when it will not.</summary>
    public async Task WaitHealthyAsync(PreviewDeploy deploy, Started job, Func<Task> built, CancellationToken cancellationToken)
    {
        var marker = System.Text.Encoding.UTF8.GetBytes("[covibe] Commit " + PreviewDeployer.Short(deploy.Commit) + " built");
        var buffer = new byte[64 * 1024];
        var seen = new List<byte>();
        long offset = 0;
        var (backend, process, port, healthPath) = (job.Backend, job.Process, job.Port, job.Plan.HealthPath);
        var isBuilt = false;
        var started = time.GetTimestamp();
        var buildTimeout = TimeSpan.FromSeconds(options.Value.BuildTimeoutSeconds);
        var startTimeout = TimeSpan.FromSeconds(options.Value.StartTimeoutSeconds);
        while (true)
        {
            if (!isBuilt)
            {
                int n;
                while ((n = await backend.ReadOutputAsync(process, offset, buffer, cancellationToken)) > 0)
                {
                    offset += n;
                    seen.AddRange(buffer.AsSpan(0, n));
                    if (seen.ToArray().AsSpan().IndexOf(marker) >= 0)
                    {
                        isBuilt = true;
                        started = time.GetTimestamp();
                        await built();
                        break;
                    }
                    if (seen.Count > marker.Length)
                    {
                        seen.RemoveRange(0, seen.Count - marker.Length);
                    }
                }
            }
            if (isBuilt && await AnswersAsync(port, healthPath, TimeSpan.FromSeconds(5), cancellationToken))
            {
                return;
            }
            var state = await backend.ProbeAsync(process, cancellationToken);
            if (state.State is AgentRunState.Exited or AgentRunState.Gone)
            {
                var code = state.ExitCode is { } c ? $" (exit code {c})" : "";
                throw new PreviewDeployException(isBuilt
                    ? $"The app stopped{code} before it answered its health check (GET {healthPath} on $PORT). See the deploy's log."
                    : $"The build failed{code}. See the deploy's log.");
            }
            var elapsed = time.GetElapsedTime(started);
            if (!isBuilt && elapsed > buildTimeout)
            {
                throw new PreviewDeployException($"The build took longer than {buildTimeout.TotalSeconds:0} s and was stopped.");
            }
            if (isBuilt && elapsed > startTimeout)
            {
                throw new PreviewDeployException(
                    $"The app did not answer GET {healthPath} on port {port} within {startTimeout.TotalSeconds:0} s. It must listen on $PORT (127.0.0.1); see the deploy's log.");
            }
            // Often at first (most apps are up within a second), then less.
            await Task.Delay(TimeSpan.FromMilliseconds(elapsed < TimeSpan.FromSeconds(10) ? 50 : 250), time, cancellationToken);
        }
    }

    /// <summary>Whether the app on <paramref name="port"/> answers <c>GET <paramref name="path"/></c> with a status below 400 within <paramref name="timeout"/>.</summary>
    public async Task<bool> AnswersAsync(int port, string path, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var response = await _health.GetAsync(new Uri($"http://127.0.0.1:{port}{path}"), HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            return (int)response.StatusCode < 400;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
