using System.Security.Cryptography;
using Covibe.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Covibe.Server.Features.Secrets;

/// <summary>One sealed secret as it is kept: its envelope, and what it is bound to (owner, purpose).</summary>
public sealed record SealedSecret(string Envelope, string OwnerId, string Purpose);

/// <summary>
/// A feature's sealed secrets as a whole (VM credentials, the team's repository credential, the preview's webhook secret,
/// boxes' <c>.env</c>, Web Push subscriptions and keys): each feature that keeps one registers one of these, so the start-up
/// check and <c>covibe secrets rotate</c> see every secret, whoever keeps it.
/// </summary>
public interface ISealedSecrets
{
    /// <summary>What they are, for messages ("VM credentials").</summary>
    string What { get; }

    /// <summary>The envelopes kept now.</summary>
    Task<IReadOnlyList<string>> EnvelopesAsync(CancellationToken cancellationToken);

    /// <summary>Re-seals every one not made with the current key through <paramref name="reseal"/>, saving each as it goes; how many.</summary>
    Task<int> RotateAsync(Func<SealedSecret, string?> reseal, CancellationToken cancellationToken);
}

/// <summary>Every feature's sealed secrets: checked against this server's keys at start-up, and re-sealed with the current key.</summary>
public sealed class SealedSecrets(IEnumerable<ISealedSecrets> kept, SecretBox box)
{
    /// <summary>Refuses to start when a stored secret names a key this server does not have: it would fail later, mid-work.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        var unknown = new List<string>();
        foreach (var secrets in kept)
        {
            var ids = (await secrets.EnvelopesAsync(cancellationToken)).Select(SecretBox.KeyIdOf).Where(id => id is null || !box.KnowsKey(id)).Distinct();
            unknown.AddRange(ids.Select(id => $"{id ?? "(none)"} ({secrets.What})"));
        }
        if (unknown.Count > 0)
        {
            throw new OptionsValidationException(SecretsOptions.Section, typeof(SecretsOptions),
                [$"Stored secrets were encrypted with key(s) {string.Join(", ", unknown.Distinct())} that this server does not have. " +
                 "Set ENCRYPTION_KEY to the key they were made with, or list it in ENCRYPTION_KEYS_PREVIOUS and run `covibe secrets rotate`."]);
        }
    }

    /// <summary>Re-encrypts every stored secret with the current key, one at a time; old keys keep working until it is done.</summary>
    public async Task<int> RotateAsync(CancellationToken cancellationToken)
    {
        var rotated = 0;
        foreach (var secrets in kept)
        {
            rotated += await secrets.RotateAsync(Reseal, cancellationToken);
        }
        return rotated;
    }

    /// <summary>The secret sealed with the current key, or null when it already is.</summary>
    private string? Reseal(SealedSecret secret)
    {
        if (SecretBox.KeyIdOf(secret.Envelope) == box.CurrentKeyId)
        {
            return null;
        }
        var plaintext = box.Open(secret.Envelope, secret.OwnerId, secret.Purpose);
        try
        {
            return box.Seal(plaintext, secret.OwnerId, secret.Purpose);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}

/// <summary>
/// A feature's sealed secrets that live in rows of one table: the feature says which rows and which secrets each holds
/// (with how to put a re-sealed one back); reading them for the check and re-sealing them row by row is done here.
/// </summary>
public abstract class SealedRows<TRow>(IDbContextFactory<CovibeDb> dbs) : ISealedSecrets where TRow : class
{
    public abstract string What { get; }

    /// <summary>The rows that hold secrets.</summary>
    protected abstract IQueryable<TRow> Rows(CovibeDb db);

    /// <summary>The secrets of one row, each with how to replace it.</summary>
    protected abstract IEnumerable<(SealedSecret Secret, Action<string> Replace)> Secrets(TRow row);

    public async Task<IReadOnlyList<string>> EnvelopesAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return [.. (await Rows(db).AsNoTracking().ToListAsync(cancellationToken)).SelectMany(r => Secrets(r).Select(s => s.Secret.Envelope))];
    }

    public async Task<int> RotateAsync(Func<SealedSecret, string?> reseal, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var rotated = 0;
        foreach (var row in await Rows(db).ToListAsync(cancellationToken))
        {
            var changed = 0;
            foreach (var (secret, replace) in Secrets(row))
            {
                if (reseal(secret) is { } resealed)
                {
                    replace(resealed);
                    changed++;
                }
            }
            if (changed > 0)
            {
                // Saved row by row: a rotation stopped half-way leaves each secret readable by one of the keys.
                await db.SaveChangesAsync(cancellationToken);
                rotated += changed;
            }
        }
        return rotated;
    }
}
