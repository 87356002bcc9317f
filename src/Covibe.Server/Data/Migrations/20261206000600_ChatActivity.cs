using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covibe.Server.Data.Migrations;

/// <summary>What members do that the team should see (an agent's branch merged, pushed) joins the chat's stream as activity lines.</summary>
[DbContext(typeof(CovibeDb))]
[Migration("20261206000600_ChatActivity")]
public sealed class ChatActivity : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder) =>
        migrationBuilder.AddColumn<string>(name: "kind", table: "messages", nullable: true);

    protected override void Down(MigrationBuilder migrationBuilder) =>
        migrationBuilder.DropColumn(name: "kind", table: "messages");
}
