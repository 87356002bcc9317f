using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Each team's repository (issue 25): its address and base branch, its sealed credential, the host keys pinned.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261206000300_TeamRepositories")]
public sealed class TeamRepositories : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "team_repositories",
            columns: table => new
            {
                team_id = table.Column<string>(nullable: false),
                url = table.Column<string>(nullable: true),
                branch = table.Column<string>(nullable: true),
                auth = table.Column<string>(maxLength: 20, nullable: false),
                deploy_key = table.Column<string>(nullable: true),
                deploy_public_key = table.Column<string>(nullable: true),
                token = table.Column<string>(nullable: true),
                username = table.Column<string>(nullable: true),
                host_keys = table.Column<string>(nullable: true),
                connected_by = table.Column<string>(nullable: true),
                connected_at = table.Column<DateTime>(nullable: true),
                updated_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_team_repositories", x => x.team_id);
                table.ForeignKey("FK_team_repositories_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
    }

    protected override void Down(MigrationBuilder migrationBuilder) => migrationBuilder.DropTable("team_repositories");
}
