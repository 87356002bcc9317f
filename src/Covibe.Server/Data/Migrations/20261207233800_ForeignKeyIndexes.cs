using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>
/// The last hand-written migration: five indexes on foreign keys that the model has (EF indexes every foreign key) and the
/// hand-written migrations left out, found when MigratedSchemaTests first compared the migrated schema with the model's.
/// Removing a member or a team looked these rows up by scanning. From here on dotnet ef writes the migrations, per provider.
/// </summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261207233800_ForeignKeyIndexes")]
public sealed class ForeignKeyIndexes : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateIndex(name: "IX_vm_audit_team_id", table: "vm_audit", column: "team_id");
        migrationBuilder.CreateIndex(name: "IX_boxes_holder_id", table: "boxes", column: "holder_id");
        migrationBuilder.CreateIndex(name: "IX_preview_grants_user_id", table: "preview_grants", column: "user_id");
        migrationBuilder.CreateIndex(name: "IX_preview_grants_team_id", table: "preview_grants", column: "team_id");
        migrationBuilder.CreateIndex(name: "IX_push_subscriptions_user_id", table: "push_subscriptions", column: "user_id");
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropIndex(name: "IX_push_subscriptions_user_id", table: "push_subscriptions");
        migrationBuilder.DropIndex(name: "IX_preview_grants_team_id", table: "preview_grants");
        migrationBuilder.DropIndex(name: "IX_preview_grants_user_id", table: "preview_grants");
        migrationBuilder.DropIndex(name: "IX_boxes_holder_id", table: "boxes");
        migrationBuilder.DropIndex(name: "IX_vm_audit_team_id", table: "vm_audit");
    }
}
