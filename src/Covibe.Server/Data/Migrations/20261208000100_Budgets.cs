using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>Budgets (issue 29): what the team's owner lets the team's agents, or a member's, spend a day or a month; and which were reached when.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261208000100_Budgets")]
public sealed class Budgets : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "budgets",
            columns: table => new
            {
                team_id = table.Column<string>(nullable: false),
                subject = table.Column<string>(nullable: false),
                period = table.Column<string>(nullable: false),
                limit_usd = table.Column<double>(nullable: false),
                set_by = table.Column<string>(nullable: false),
                set_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_budgets", x => new { x.team_id, x.subject, x.period });
                table.ForeignKey("FK_budgets_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateTable(
            name: "budget_alerts",
            columns: table => new
            {
                team_id = table.Column<string>(nullable: false),
                subject = table.Column<string>(nullable: false),
                period = table.Column<string>(nullable: false),
                period_start = table.Column<DateTime>(nullable: false),
                limit_usd = table.Column<double>(nullable: false),
                reached_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_budget_alerts", x => new { x.team_id, x.subject, x.period, x.period_start });
                table.ForeignKey("FK_budget_alerts_teams_team_id", x => x.team_id, "teams", "id", onDelete: ReferentialAction.Cascade);
            });
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("budget_alerts");
        migrationBuilder.DropTable("budgets");
    }
}
