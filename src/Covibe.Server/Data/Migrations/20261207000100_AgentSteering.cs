using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>
/// The team steers agents together (issue 26): each permission prompt and its answer, the members an agent was handed to,
/// who did what to an agent (its actions, by position in its output), per agent its permission mode, the rules allowed
/// always and how many prompts wait, and per team its agents' mode and whether its owner may take members' agents over.
/// </summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261207000100_AgentSteering")]
public sealed class AgentSteering : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AddColumn<string>(name: "permission_mode", table: "agents", nullable: true);
        migrationBuilder.AddColumn<string>(name: "allowed_rules", table: "agents", nullable: true);
        migrationBuilder.AddColumn<int>(name: "pending_approvals", table: "agents", nullable: false, defaultValue: 0);
        migrationBuilder.CreateTable(
            name: "agent_permissions",
            columns: table => new
            {
                agent_id = table.Column<string>(nullable: false),
                request_id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                tool = table.Column<string>(nullable: false),
                tool_use_id = table.Column<string>(nullable: true),
                input = table.Column<string>(nullable: false),
                suggestions = table.Column<string>(nullable: true),
                description = table.Column<string>(nullable: true),
                position = table.Column<long>(nullable: false),
                asked_at = table.Column<DateTime>(nullable: false),
                deadline = table.Column<DateTime>(nullable: false),
                status = table.Column<string>(maxLength: 20, nullable: false),
                decided_by = table.Column<string>(nullable: true),
                reason = table.Column<string>(nullable: true),
                message = table.Column<string>(nullable: true),
                updated_input = table.Column<string>(nullable: true),
                rule = table.Column<string>(nullable: true),
                decided_at = table.Column<DateTime>(nullable: true),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_agent_permissions", x => new { x.agent_id, x.request_id });
                table.ForeignKey("FK_agent_permissions_agents_agent_id", x => x.agent_id, "agents", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex(name: "IX_agent_permissions_agent_id_status", table: "agent_permissions", columns: ["agent_id", "status"]);
        migrationBuilder.CreateTable(
            name: "agent_controllers",
            columns: table => new
            {
                agent_id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: false),
                granted_by = table.Column<string>(nullable: false),
                granted_at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_agent_controllers", x => new { x.agent_id, x.user_id });
                table.ForeignKey("FK_agent_controllers_agents_agent_id", x => x.agent_id, "agents", "id", onDelete: ReferentialAction.Cascade);
            });
        Actions(migrationBuilder);
    }

    private static void Actions(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AddColumn<string>(name: "agent_permission_mode", table: "teams", nullable: true);
        migrationBuilder.AddColumn<bool>(name: "owner_takes_over", table: "teams", nullable: false, defaultValue: true);
        migrationBuilder.CreateTable(
            name: "agent_actions",
            columns: table => new
            {
                id = table.Column<long>(nullable: false)
                    .Annotation("Sqlite:Autoincrement", true)
                    .Annotation("Npgsql:ValueGenerationStrategy", Npgsql.EntityFrameworkCore.PostgreSQL.Metadata.NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                agent_id = table.Column<string>(nullable: false),
                team_id = table.Column<string>(nullable: false),
                user_id = table.Column<string>(nullable: true),
                kind = table.Column<string>(maxLength: 20, nullable: false),
                text = table.Column<string>(nullable: false),
                position = table.Column<long>(nullable: false),
                at = table.Column<DateTime>(nullable: false),
            },
            constraints: table =>
            {
                table.PrimaryKey("PK_agent_actions", x => x.id);
                table.ForeignKey("FK_agent_actions_agents_agent_id", x => x.agent_id, "agents", "id", onDelete: ReferentialAction.Cascade);
            });
        migrationBuilder.CreateIndex(name: "IX_agent_actions_agent_id_position", table: "agent_actions", columns: ["agent_id", "position"]);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable("agent_actions");
        migrationBuilder.DropColumn(name: "owner_takes_over", table: "teams");
        migrationBuilder.DropColumn(name: "agent_permission_mode", table: "teams");
        migrationBuilder.DropTable("agent_controllers");
        migrationBuilder.DropTable("agent_permissions");
        migrationBuilder.DropColumn(name: "pending_approvals", table: "agents");
        migrationBuilder.DropColumn(name: "allowed_rules", table: "agents");
        migrationBuilder.DropColumn(name: "permission_mode", table: "agents");
    }
}
