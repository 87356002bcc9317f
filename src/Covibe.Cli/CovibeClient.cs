using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Covibe.Protocol;

namespace Covibe.Cli;

/// <summary>A failure to show the user as is: what went wrong and what to do.</summary>
public class CliException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>The server refused a request; <see cref="Problem"/> is its ProblemDetails body.</summary>
public sealed class CovibeApiException(string message, int status, JsonElement? problem) : CliException(message)
{
    public int Status { get; } = status;
    public JsonElement? Problem { get; } = problem;

    public string? ProblemType => Problem is { } p && p.TryGetProperty("type", out var t) ? t.GetString()?.Split('/')[^1] : null;
}

/// <summary>The server could not be reached; worth retrying for a long-running command.</summary>
public sealed class ServerUnreachableException(string message) : CliException(message);

/// <summary>
/// Talks to a Covibe server as the logged-in member, refreshing the access token when it
/// expires and saving the rotated refresh token, so a long <c>chat tail -f</c> keeps working.
/// </summary>
public sealed class CovibeClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly CredentialStore _store;

    public CovibeClient(string server, CredentialStore store, Credentials? credentials)
    {
        Server = server.TrimEnd('/');
        _store = store;
        Credentials = credentials;
        _http = new HttpClient { BaseAddress = new Uri(Server + "/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Server { get; }

    public Credentials? Credentials { get; private set; }

    /// <summary>A client for the saved login; fails with a clear message when there is none.</summary>
    public static CovibeClient ForSavedLogin(CredentialStore store)
    {
        var credentials = store.Load() ?? throw new CliException("You are not logged in. Run: covibe login --server URL --email you@example.com");
        return new CovibeClient(credentials.Server, store, credentials);
    }

    public void Remember(AuthResponse auth)
    {
        Credentials = new Credentials(Server, auth.User.Id, auth.User.Name, auth.Team.Id, auth.Team.Name,
            auth.AccessToken, auth.AccessTokenExpiresAt, auth.RefreshToken);
        _store.Save(Credentials);
    }

    public Task<T> GetAsync<T>(string path, JsonTypeInfo<T> response, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, path, null, response, cancellationToken);

    public Task<T> PostAsync<TBody, T>(string path, TBody body, JsonTypeInfo<TBody> request, JsonTypeInfo<T> response, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, path, JsonContent.Create(body, request), response, cancellationToken);

    /// <summary>A POST with no body (an action on a resource) and its JSON answer.</summary>
    public Task<T> PostAsync<T>(string path, JsonTypeInfo<T> response, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, path, null, response, cancellationToken);

    /// <summary>A DELETE and its JSON answer.</summary>
    public Task<T> DeleteAsync<T>(string path, JsonTypeInfo<T> response, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Delete, path, null, response, cancellationToken);

    public Task<T> SendJsonAsync<TBody, T>(HttpMethod method, string path, TBody body, JsonTypeInfo<TBody> request, JsonTypeInfo<T> response, CancellationToken cancellationToken) =>
        SendAsync(method, path, JsonContent.Create(body, request), response, cancellationToken);

    public async Task SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var reply = await SendRawAsync(method, path, content, cancellationToken);
    }

    /// <summary>A GET whose answer is text (a diff), as the server wrote it.</summary>
    public async Task<string> GetTextAsync(string path, CancellationToken cancellationToken)
    {
        using var reply = await SendRawAsync(HttpMethod.Get, path, null, cancellationToken);
        return await reply.Content.ReadAsStringAsync(cancellationToken);
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? content, JsonTypeInfo<T> response, CancellationToken cancellationToken)
    {
        using var reply = await SendRawAsync(method, path, content, cancellationToken);
        return (await reply.Content.ReadFromJsonAsync(response, cancellationToken))!;
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        var body = content is null ? null : await content.ReadAsByteArrayAsync(cancellationToken);
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, path);
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            }
            if (Credentials is { } c)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", c.AccessToken);
            }
            HttpResponseMessage reply;
            try
            {
                reply = await _http.SendAsync(request, cancellationToken);
            }
            catch (HttpRequestException e)
            {
                throw new ServerUnreachableException($"Cannot reach the Covibe server at {Server} ({e.Message}). Is `covibe serve` running there?");
            }
            if (reply.StatusCode == HttpStatusCode.Unauthorized && attempt == 0 && Credentials is not null && path != "api/auth/refresh")
            {
                reply.Dispose();
                await RefreshAsync(cancellationToken);
                continue;
            }
            if (!reply.IsSuccessStatusCode)
            {
                var text = await reply.Content.ReadAsStringAsync(cancellationToken);
                var status = (int)reply.StatusCode;
                var message = ProblemText.Describe(text, reply.ReasonPhrase, status);
                reply.Dispose();
                JsonElement? problem = null;
                try
                {
                    problem = JsonDocument.Parse(text).RootElement.Clone();
                }
                catch (JsonException)
                {
                }
                throw new CovibeApiException(message, status, problem);
            }
            return reply;
        }
    }

    /// <summary>A page of an agent's raw output, with where to continue and whether it is all there is.</summary>
    public async Task<(byte[] Bytes, long Next, bool Complete)> GetBytesAsync(string path, CancellationToken cancellationToken)
    {
        var (bytes, next, complete, _) = await GetPageAsync(path, "Covibe-Output-", cancellationToken);
        return (bytes, next, complete);
    }

    /// <summary>A page of a log read by position: its bytes, where to continue, whether it is all there is, and the answer's headers.</summary>
    public async Task<(byte[] Bytes, long Next, bool Complete, HttpResponseHeaders Headers)> GetPageAsync(string path, string headerPrefix, CancellationToken cancellationToken)
    {
        using var reply = await SendRawAsync(HttpMethod.Get, path, null, cancellationToken);
        var bytes = await reply.Content.ReadAsByteArrayAsync(cancellationToken);
        var next = long.Parse(reply.Headers.GetValues(headerPrefix + "Next").Single(), System.Globalization.CultureInfo.InvariantCulture);
        return (bytes, next, reply.Headers.GetValues(headerPrefix + "Complete").Single() == "true", reply.Headers);
    }

    /// <summary>
    /// Follows the hub until <paramref name="onMessage"/> says it is done: connects, lets
    /// <paramref name="onConnected"/> catch up or subscribe, hands over each message, and after any
    /// drop reconnects with backoff (1 s doubling to 30 s) and does it all again.
    /// </summary>
    public async Task FollowHubAsync(Func<ClientWebSocket, Task> onConnected, Func<JsonElement, bool> onMessage, Func<string> resuming, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromSeconds(1);
        var buffer = new byte[256 * 1024];
        while (true)
        {
            try
            {
                using var socket = await ConnectHubAsync(TimeProvider.System, cancellationToken);
                await onConnected(socket);
                delay = TimeSpan.FromSeconds(1);
                while (socket.State == WebSocketState.Open)
                {
                    var (text, closed) = await ReceiveHubMessageAsync(socket, buffer, cancellationToken);
                    if (closed)
                    {
                        break;
                    }
                    using var doc = JsonDocument.Parse(text);
                    if (onMessage(doc.RootElement))
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException or ServerUnreachableException)
            {
                // Dropped: reconnect below.
            }
            await Console.Error.WriteLineAsync($"(disconnected; {resuming()} in {delay.TotalSeconds:0} s)");
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromSeconds(Math.Min(delay.TotalSeconds * 2, 30));
        }
    }

    /// <summary>Reads one whole hub message (growing the buffer if needed).</summary>
    public static async Task<(ArraySegment<byte> Text, bool Closed)> ReceiveHubMessageAsync(ClientWebSocket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        var count = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            if (count == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }
            result = await socket.ReceiveAsync(buffer.AsMemory(count), cancellationToken);
            count += result.Count;
        }
        while (!result.EndOfMessage);
        return (new ArraySegment<byte>(buffer, 0, count), result.MessageType == WebSocketMessageType.Close);
    }

    /// <summary>Gets a new access token (and refresh token) and saves them.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var current = Credentials ?? throw new CliException("You are not logged in. Run: covibe login");
        using var reply = await _http.PostAsync("api/auth/refresh",
            JsonContent.Create(new RefreshRequest(current.RefreshToken), CovibeJsonContext.Default.RefreshRequest), cancellationToken);
        if (!reply.IsSuccessStatusCode)
        {
            throw new CliException($"{await DescribeFailureAsync(reply, cancellationToken)}\nRun `covibe login` again.");
        }
        Remember((await reply.Content.ReadFromJsonAsync(CovibeJsonContext.Default.AuthResponse, cancellationToken))!);
    }

    /// <summary>Opens the hub (or another WebSocket endpoint, e.g. /terminal) with the access token in a header (refreshed first if close to expiry).</summary>
    public async Task<ClientWebSocket> ConnectHubAsync(TimeProvider time, CancellationToken cancellationToken, string path = "/ws")
    {
        if (Credentials is { } c && c.AccessTokenExpiresAt - time.GetUtcNow().UtcDateTime < TimeSpan.FromMinutes(1))
        {
            await RefreshAsync(cancellationToken);
        }
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {Credentials!.AccessToken}");
        var uri = new UriBuilder(Server) { Scheme = Server.StartsWith("https", StringComparison.Ordinal) ? "wss" : "ws", Path = path }.Uri;
        try
        {
            await socket.ConnectAsync(uri, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return socket;
    }

    internal static Task<string> DescribeFailureAsync(HttpResponseMessage reply, CancellationToken cancellationToken) =>
        ProblemText.DescribeAsync(reply, cancellationToken);

    public void Dispose() => _http.Dispose();
}
