using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;

namespace Covibe.Server.Data;

/// <summary>
/// A new row saved only if a condition holds, in one statement (<c>INSERT ... SELECT ... WHERE</c>): a limit is checked and
/// the row added at once for one round trip (on SQLite, whose writes take turns, two requests cannot both pass the check;
/// on PostgreSQL at read committed two at the same instant still may, as with a count and an insert). The columns
/// come from the model, so a property added to the entity is saved here too. Alike on SQLite and PostgreSQL.
/// </summary>
public static class ConditionalInsert
{
    /// <summary>Inserts <paramref name="entity"/> if <paramref name="condition"/> holds; false if it did not (nothing was saved).</summary>
    /// <param name="condition">SQL of this server's (never a user's), with its values as <c>{0}</c>, <c>{1}</c>... from <paramref name="values"/>.</param>
    public static async Task<bool> InsertIfAsync<T>(this CovibeDb db, T entity, string condition, object[] values, CancellationToken cancellationToken) where T : class
    {
        var type = db.Model.FindEntityType(typeof(T)) ?? throw new ArgumentException($"{typeof(T).Name} is not an entity.", nameof(entity));
        var table = StoreObjectIdentifier.Table(type.GetTableName()!, type.GetSchema());
        var columns = new List<string>();
        var parameters = new List<object>();
        foreach (var property in type.GetProperties())
        {
            var value = property.PropertyInfo?.GetValue(entity) ?? property.FieldInfo?.GetValue(entity);
            if (value is null)
            {
                continue; // NULL by default (an untyped NULL in a SELECT list does not fit every column type on PostgreSQL)
            }
            if (property.GetTypeMapping().Converter is { } converter)
            {
                value = converter.ConvertToProvider(value)!;
            }
            columns.Add(property.GetColumnName(table)!);
            parameters.Add(value);
        }
        var own = string.Join(", ", Enumerable.Range(0, parameters.Count).Select(Placeholder));
        var where = string.Format(CultureInfo.InvariantCulture, condition, [.. Enumerable.Range(parameters.Count, values.Length).Select(Placeholder)]);
        var sql = $"INSERT INTO {table.Name} ({string.Join(", ", columns)}) SELECT {own} WHERE {where}";
        return await db.Database.ExecuteSqlRawAsync(sql, [.. parameters, .. values], cancellationToken) == 1;
    }

    private static object Placeholder(int index) => "{" + index.ToString(CultureInfo.InvariantCulture) + "}";
}
