using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Covibe.Server.Data;

/// <summary>
/// A transaction that takes turns with every other one about the same thing (a team's spending, say), on any node: what one
/// reads and then writes, no other changes in between. SQLite: the transaction begins <c>IMMEDIATE</c> (Microsoft.Data.Sqlite's
/// default), so writers take turns on the whole database; PostgreSQL: a transaction-level advisory lock keyed by the thing.
/// </summary>
public static class Serialized
{
    public static async Task<IDbContextTransaction> BeginSerializedAsync(this CovibeDb db, string key, CancellationToken cancellationToken)
    {
        var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        if (db.Database.IsNpgsql())
        {
            try
            {
                await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_xact_lock({0})", [LockKey(key)], cancellationToken);
            }
            catch
            {
                await transaction.DisposeAsync();
                throw;
            }
        }
        return transaction;
    }

    /// <summary>The same 64 bits for <paramref name="key"/> on every node (string hash codes differ between processes).</summary>
    internal static long LockKey(string key) => BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes("covibe:" + key)));
}
