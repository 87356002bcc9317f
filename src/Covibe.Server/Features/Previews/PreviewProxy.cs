using System.Collections.Concurrent;
using System.Net;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace Covibe.Server.Features.Previews;

/// <summary>
/// The preview's own origin: a web server of its own (<c>Covibe:Preview:Listen</c>), apart from the web client and
/// the API, which it cannot reach. Each request's host name says the team; a member signed in to that team's
/// preview (a cookie of this origin, from a one-time link) is forwarded to the live version, WebSockets included,
/// with Covibe's own cookie taken out. Everyone else gets a page that says how to get in.
/// </summary>
public sealed class PreviewProxy(
    PreviewUrls urls, PreviewAccess access, PreviewConnections connections, IHttpForwarder forwarder, IDbContextFactory<CovibeDb> dbs,
    IOptions<PreviewsOptions> options, IConfiguration configuration, TimeProvider time, ILogger<PreviewProxy> logger) : IHostedService, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, (int? Port, DateTime Until, long Generation)> _live = new();
    private long _generation;
    private readonly HttpMessageInvoker _client = new(connections.Handler());
    private WebApplication? _app;

    /// <summary>Where it listens (known once started).</summary>
    public Uri? Address { get; private set; }

    /// <summary>Forgets the team's cached port (the deployer switched versions); a lookup under way when it happens is not cached.</summary>
    public void Switched(string teamId)
    {
        Interlocked.Increment(ref _generation);
        _live.TryRemove(teamId, out _);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var listen = options.Value.ListenAddress(configuration["urls"]);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, NoLifetime>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (IPAddress.TryParse(listen.Host.Trim('[', ']'), out var address))
            {
                kestrel.Listen(address, listen.Port);
            }
            else
            {
                kestrel.ListenLocalhost(listen.Port);
            }
        });
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync(cancellationToken);
        _app = app;
        var address = app.Urls.First();
        Address = new Uri(address);
        urls.Listening(Address.Port);
        PreviewsLog.Listening(logger, address);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var cancellationToken = context.RequestAborted;
        if (urls.TeamOf(context.Request.Host.Value ?? "") is not { } teamId)
        {
            await PageAsync(context, 404, "No preview here", "This address is not a Covibe team's preview.");
            return;
        }
        if (context.Request.Path == PreviewAccess.OpenPath)
        {
            await OpenAsync(context, teamId, cancellationToken);
            return;
        }
        if (!await access.AllowsAsync(teamId, context.Request.Cookies[PreviewAccess.CookieName], cancellationToken))
        {
            await PageAsync(context, 401, "Open the preview from Covibe",
                "Only members of this team can see its preview. Open it from the Showcase tab in Covibe, or with `covibe preview open`.");
            return;
        }
        if (await LivePortAsync(teamId, cancellationToken) is not { } port)
        {
            context.Response.Headers.RetryAfter = "5";
            await PageAsync(context, 503, "Not live yet", "The team's preview has no live version yet. Covibe's Showcase shows how its deploy is going.");
            return;
        }
        var error = await forwarder.SendAsync(context, $"http://127.0.0.1:{port}", _client, ForwarderRequestConfig.Empty, Strip.Instance);
        if (error != ForwarderError.None && !context.Response.HasStarted)
        {
            _live.TryRemove(teamId, out _);
            await PageAsync(context, 502, "The preview did not answer", "The live version did not answer this request. If it keeps happening, redeploy it from Covibe.");
        }
    }

    private async Task OpenAsync(HttpContext context, string teamId, CancellationToken cancellationToken)
    {
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers["Referrer-Policy"] = "no-referrer";
        if (await access.OpenAsync(teamId, context.Request.Query["code"], cancellationToken) is not { } session)
        {
            await PageAsync(context, 403, "This link was used or has expired",
                "A preview link works once, for about a minute. Open the preview again from Covibe's Showcase tab, or with `covibe preview open`.");
            return;
        }
        // The Showcase shows the preview in a frame: a cross-site frame needs SameSite=None, which needs Secure
        // (browsers take that over https, and over http on *.localhost).
        var host = context.Request.Host.Host;
        var secure = context.Request.IsHttps || host == "localhost" || host.EndsWith(".localhost", StringComparison.Ordinal);
        var cookie = new CookieOptions { HttpOnly = true, Path = "/", Expires = session.Expires, Secure = secure, SameSite = secure ? SameSiteMode.None : SameSiteMode.Lax };
        if (secure)
        {
            cookie.Extensions.Add("Partitioned");
        }
        context.Response.Cookies.Append(PreviewAccess.CookieName, session.Token, cookie);
        context.Response.StatusCode = StatusCodes.Status303SeeOther;
        context.Response.Headers.Location = PreviewAccess.SafePath(context.Request.Query["path"]);
    }

    private async Task<int?> LivePortAsync(string teamId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        if (_live.TryGetValue(teamId, out var cached) && cached.Until > now)
        {
            return cached.Port;
        }
        var generation = Interlocked.Read(ref _generation);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var live = await (from p in db.Previews
                          join d in db.PreviewDeploys on p.LiveDeployId equals d.Id
                          where p.TeamId == teamId && d.Status == PreviewStatuses.Live
                          select new { d.Port, d.RuntimeDirectory }).SingleOrDefaultAsync(cancellationToken);
        var port = live?.Port;
        // Deployed by another node on this machine: its sandboxed app is reached through its socket, as there.
        if (port is { } known && live!.RuntimeDirectory is { } runtime && File.Exists(PreviewConnections.SocketOf(runtime)))
        {
            connections.Register(known, PreviewConnections.SocketOf(runtime));
        }
        // A switch while this was read may have made it stale: then it serves this request only.
        var entry = (port, now.AddSeconds(port is null ? 1 : 10), generation);
        _live[teamId] = entry;
        if (Interlocked.Read(ref _generation) != generation)
        {
            _live.TryRemove(new KeyValuePair<string, (int?, DateTime, long)>(teamId, entry));
        }
        return port;
    }

    private static Task PageAsync(HttpContext context, int status, string title, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'";
        var body = $"""
            <!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>{WebUtility.HtmlEncode(title)}</title>
            <body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
            <h1 style="font-size: 1.3rem">{WebUtility.HtmlEncode(title)}</h1><p>{WebUtility.HtmlEncode(text)}</p></body>
            """;
        return context.Response.WriteAsync(body);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
        _client.Dispose();
    }

    /// <summary>
    /// Covibe's own cookies stay on this side, both ways: the preview's, and (were the web client ever on a host whose
    /// cookies the browser also sends here) the member's login.
    /// </summary>
    private sealed class Strip : HttpTransformer
    {
        public static readonly Strip Instance = new();

        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            if (proxyRequest.Headers.TryGetValues("Cookie", out var values))
            {
                var kept = values.SelectMany(v => v.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    .Where(c => !c.StartsWith("covibe_", StringComparison.Ordinal)).ToList();
                proxyRequest.Headers.Remove("Cookie");
                if (kept.Count > 0)
                {
                    proxyRequest.Headers.TryAddWithoutValidation("Cookie", string.Join("; ", kept));
                }
            }
        }

        public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
        {
            var result = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
            var cookies = httpContext.Response.Headers.SetCookie;
            if (cookies.Any(c => c?.TrimStart().StartsWith(PreviewAccess.CookieName + "=", StringComparison.Ordinal) == true))
            {
                httpContext.Response.Headers.SetCookie = cookies.Where(c => c?.TrimStart().StartsWith(PreviewAccess.CookieName + "=", StringComparison.Ordinal) != true).ToArray();
            }
            return result;
        }
    }

    /// <summary>The preview's server lives and dies with <c>covibe serve</c>, not with signals of its own.</summary>
    private sealed class NoLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
