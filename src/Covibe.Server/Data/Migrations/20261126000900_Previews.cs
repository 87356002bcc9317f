using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>The shared preview: one per team, its deploys, the webhook deliveries received, and access grants to its origin.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261126000900_Previews")]
public sealed class Previews : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "previews",
            columns: table => new
            {
                team_id = table.Column<string>(nullable: false),
                repository_url = table.Column<string>(nullable: false),
                branch = table.Column<string>(nullable: false),
                webhook_secret = table.Column<string>(nullable: false),
                created_by = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
                updated_at = table.Column<DateTime>(nullable: false),
                desired_commit = table.Column<string>(nullable: true),
                desired_trigger = table.Column<string>(nullable: true),
                desired_at = table.Column<DateTime>(nullable: true),
                force = table.Column<bool>(nullable: false),
                live_deploy_id = table.Column<string>(nullable: true),
                checked_at = table.Column<DateTime>(nullable: true),
                check_error = table.Column<string>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_previews", x => x.team_id);
                table.ForeignKey("FK_previews_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });

        migrationBuilder.CreateTable(
            name: "preview_deploys",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                commit = table.Column<string>(nullable: false),
                trigger = table.Column<string>(nullable: false),
                status = table.Column<string>(nullable: false),
                project_type = table.Column<string>(nullable: true),
                created_at = table.Column<DateTime>(nullable: false),
                started_at = table.Column<DateTime>(nullable: true),
                finished_at = table.Column<DateTime>(nullable: true),
                error = table.Column<string>(nullable: true),
                backend = table.Column<string>(nullable: true),
                target = table.Column<string>(nullable: true),
                runtime_directory = table.Column<string>(nullable: true),
                pid = table.Column<int>(nullable: true),
                pid_start_time = table.Column<long>(nullable: true),
                port = table.Column<int>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_preview_deploys", x => x.id);
                table.ForeignKey("FK_preview_deploys_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_preview_deploys_team_id_created_at", "preview_deploys", ["team_id", "created_at"]);
        migrationBuilder.CreateIndex("IX_preview_deploys_status", "preview_deploys", "status");

        migrationBuilder.CreateTable(
            name: "preview_deliveries",
            columns: table => new
            {
                team_id = table.Column<string>(nullable: false),
                delivery_id = table.Column<string>(nullable: false),
                @event = table.Column<string>(name: "event", nullable: false),
                @ref = table.Column<string>(name: "ref", nullable: true),
                commit = table.Column<string>(nullable: true),
                received_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_preview_deliveries", x => new { x.team_id, x.delivery_id });
                table.ForeignKey("FK_preview_deliveries_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });

        migrationBuilder.CreateTable(
            name: "preview_grants",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                kind = table.Column<string>(nullable: false),
                token_hash = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: false),
                session_id = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
                expires_at = table.Column<DateTime>(nullable: false),
                used_at = table.Column<DateTime>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_preview_grants", x => x.id);
                table.ForeignKey("FK_preview_grants_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
                table.ForeignKey("FK_preview_grants_users_user_id", x => x.user_id, "users", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_preview_grants_token_hash", "preview_grants", "token_hash", unique: true);
        migrationBuilder.CreateIndex("IX_preview_grants_session_id", "preview_grants", "session_id");
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("preview_grants");
        migrationBuilder.DropTable("preview_deliveries");
        migrationBuilder.DropTable("preview_deploys");
        migrationBuilder.DropTable("previews");
    }
}
