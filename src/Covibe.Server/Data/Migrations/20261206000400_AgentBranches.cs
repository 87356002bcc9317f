using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>An agent on the team's repository (issue 25): its own branch, the commit it started from, and when its tree was discarded.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261206000400_AgentBranches")]
public sealed class AgentBranches : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.AddColumn<string>(name: "work_branch", table: "agents", nullable: true);
        migrationBuilder.AddColumn<string>(name: "base_commit", table: "agents", nullable: true);
        migrationBuilder.AddColumn<DateTime>(name: "tree_discarded_at", table: "agents", nullable: true);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropColumn(name: "tree_discarded_at", table: "agents");
        migrationBuilder.DropColumn(name: "base_commit", table: "agents");
        migrationBuilder.DropColumn(name: "work_branch", table: "agents");
    }
}
