using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>
/// Seed 001's core tables. Written by hand: no provider-specific column types, so the same
/// migration runs on SQLite and PostgreSQL (each provider ignores the other's annotations).
/// </summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261122000100_Initial")]
public sealed class Initial : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "teams",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                name = table.Column<string>(nullable: false),
                owner_id = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table => table.PrimaryKey("PK_teams", x => x.id));

        migrationBuilder.CreateTable(
            name: "users",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                email = table.Column<string>(nullable: false),
                name = table.Column<string>(nullable: false),
                password_hash = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
                removed_at = table.Column<DateTime>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_users", x => x.id);
                table.ForeignKey("FK_users_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_users_team_id_email", "users", ["team_id", "email"], unique: true);
        migrationBuilder.CreateIndex("IX_users_email", "users", "email");

        migrationBuilder.CreateTable(
            name: "messages",
            columns: table => new
            {
                id = table.Column<long>(nullable: false)
                    .Annotation("Sqlite:Autoincrement", true)
                    .Annotation("Npgsql:ValueGenerationStrategy", Npgsql.EntityFrameworkCore.PostgreSQL.Metadata.NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                team_id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: false),
                content = table.Column<string>(nullable: false),
                timestamp = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_messages", x => x.id);
                table.ForeignKey("FK_messages_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
                table.ForeignKey("FK_messages_users_user_id", x => x.user_id, "users", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_messages_team_id_id", "messages", ["team_id", "id"]);
        migrationBuilder.CreateIndex("IX_messages_user_id", "messages", "user_id");
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("messages");
        migrationBuilder.DropTable("users");
        migrationBuilder.DropTable("teams");
    }
}
