using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Agents: what was asked, where it runs, and what it reported.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261122000300_Agents")]
public sealed class Agents : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "agents",
            columns: table => new
            {
                id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: false),
                type = table.Column<string>(nullable: false),
                task = table.Column<string>(nullable: false),
                repository_url = table.Column<string>(nullable: true),
                branch = table.Column<string>(nullable: true),
                status = table.Column<string>(nullable: false),
                created_at = table.Column<DateTime>(nullable: false),
                started_at = table.Column<DateTime>(nullable: true),
                completed_at = table.Column<DateTime>(nullable: true),
                exit_code = table.Column<int>(nullable: true),
                error = table.Column<string>(nullable: true),
                backend = table.Column<string>(nullable: false),
                working_directory = table.Column<string>(nullable: false),
                runtime_directory = table.Column<string>(nullable: true),
                pid = table.Column<int>(nullable: true),
                pid_start_time = table.Column<long>(nullable: true),
                kill_requested = table.Column<bool>(nullable: false),
                output_bytes = table.Column<long>(nullable: false),
                cost_usd = table.Column<double>(nullable: true),
                input_tokens = table.Column<long>(nullable: true),
                output_tokens = table.Column<long>(nullable: true),
                model = table.Column<string>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_agents", x => x.id);
                table.ForeignKey("FK_agents_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
                table.ForeignKey("FK_agents_users_user_id", x => x.user_id, "users", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex("IX_agents_team_id_created_at", "agents", ["team_id", "created_at"]);
        migrationBuilder.CreateIndex("IX_agents_status", "agents", "status");
        migrationBuilder.CreateIndex("IX_agents_user_id", "agents", "user_id");
    }

    protected override void Down(MigrationBuilder migrationBuilder) => migrationBuilder.DropTable("agents");
}
