using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Members' VMs, with their credentials encrypted and their host keys pinned.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261122000400_Vms")]
public sealed class Vms : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "vms",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: false),
                name = table.Column<string>(nullable: false),
                host = table.Column<string>(nullable: false),
                port = table.Column<int>(nullable: false),
                username = table.Column<string>(nullable: false),
                auth_method = table.Column<string>(nullable: false),
                credential = table.Column<string>(nullable: false),
                host_keys = table.Column<string>(nullable: false),
                host_key_fingerprint = table.Column<string>(nullable: false),
                connection_type = table.Column<string>(nullable: false),
                status = table.Column<string>(nullable: false),
                last_seen = table.Column<DateTime>(nullable: true),
                last_error = table.Column<string>(nullable: true),
                created_at = table.Column<DateTime>(nullable: false),
                updated_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_vms", x => x.id);
                table.ForeignKey("FK_vms_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
                table.ForeignKey("FK_vms_users_user_id", x => x.user_id, "users", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_vms_team_id", "vms", "team_id");
        migrationBuilder.CreateIndex("IX_vms_user_id", "vms", "user_id");
    }

    protected override void Down(MigrationBuilder migrationBuilder) => migrationBuilder.DropTable("vms");
}
