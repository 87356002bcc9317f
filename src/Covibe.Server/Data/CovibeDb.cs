using Covibe.Server.Features.Containers;
using System.Text;
using Covibe.Server.Features.Agents;
using Covibe.Server.Features.Auth;
using Covibe.Server.Features.Chat;
using Covibe.Server.Features.Boxes;
using Covibe.Server.Features.Cluster;
using Covibe.Server.Features.Previews;
using Covibe.Server.Features.Repositories;
using Covibe.Server.Features.Vms;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Covibe.Server.Data;

/// <summary>
/// The one database, SQLite or PostgreSQL. The schema is written by hand in
/// <c>Data/Migrations</c> (EF's design-time tools do not restore here) and applied at start-up.
/// Names are snake_case, as in seed 001's schema.
/// </summary>
public sealed class CovibeDb(DbContextOptions<CovibeDb> options) : DbContext(options)
{
    public DbSet<Team> Teams => Set<Team>();
    public DbSet<User> Users => Set<User>();
    public DbSet<Invite> Invites => Set<Invite>();
    public DbSet<AuthSession> Sessions => Set<AuthSession>();
    public DbSet<RefreshToken> RefreshTokens => Set<RefreshToken>();
    public DbSet<ChatMessage> Messages => Set<ChatMessage>();
    public DbSet<Agent> Agents => Set<Agent>();
    public DbSet<PermissionPrompt> AgentPermissions => Set<PermissionPrompt>();
    public DbSet<AgentController> AgentControllers => Set<AgentController>();
    public DbSet<AgentAction> AgentActions => Set<AgentAction>();
    public DbSet<Budget> Budgets => Set<Budget>();
    public DbSet<BudgetAlert> BudgetAlerts => Set<BudgetAlert>();
    public DbSet<Features.Push.PushSubscriptionRow> PushSubscriptions => Set<Features.Push.PushSubscriptionRow>();
    public DbSet<Features.Push.PushKeyRow> PushKeys => Set<Features.Push.PushKeyRow>();
    public DbSet<Vm> Vms => Set<Vm>();
    public DbSet<VmAudit> VmAudit => Set<VmAudit>();
    public DbSet<VmAssignment> VmAssignments => Set<VmAssignment>();
    public DbSet<ContainerEnvironment> ContainerEnvironments => Set<ContainerEnvironment>();
    public DbSet<Preview> Previews => Set<Preview>();
    public DbSet<PreviewDeploy> PreviewDeploys => Set<PreviewDeploy>();
    public DbSet<PreviewDelivery> PreviewDeliveries => Set<PreviewDelivery>();
    public DbSet<PreviewGrant> PreviewGrants => Set<PreviewGrant>();
    public DbSet<Box> Boxes => Set<Box>();
    public DbSet<BoxPool> BoxPools => Set<BoxPool>();
    public DbSet<Lease> Leases => Set<Lease>();
    public DbSet<TeamRepository> Repositories => Set<TeamRepository>();

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // SQLite hands DateTime back as Unspecified; everything here is UTC.
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<UtcConverter>();
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Team>(e =>
        {
            e.ToTable("teams");
            e.HasIndex(t => t.EgressSlot).IsUnique();
        });
        modelBuilder.Entity<User>(e =>
        {
            e.ToTable("users");
            e.HasOne<Team>().WithMany().HasForeignKey(u => u.TeamId);
            e.HasIndex(u => new { u.TeamId, u.Email }).IsUnique();
            e.HasIndex(u => u.Email);
        });
        modelBuilder.Entity<Invite>(e =>
        {
            e.ToTable("invites");
            e.HasOne<Team>().WithMany().HasForeignKey(i => i.TeamId);
            e.HasIndex(i => i.CodeHash).IsUnique();
            e.HasIndex(i => i.TeamId);
        });
        modelBuilder.Entity<AuthSession>(e =>
        {
            e.ToTable("sessions");
            e.HasOne(s => s.User).WithMany().HasForeignKey(s => s.UserId);
            e.HasIndex(s => s.UserId);
        });
        modelBuilder.Entity<RefreshToken>(e =>
        {
            e.ToTable("refresh_tokens");
            e.HasOne<AuthSession>().WithMany().HasForeignKey(t => t.SessionId);
            e.HasIndex(t => t.TokenHash).IsUnique();
            e.HasIndex(t => t.SessionId);
        });
        modelBuilder.Entity<ChatMessage>(e =>
        {
            e.ToTable("messages");
            e.HasOne<Team>().WithMany().HasForeignKey(m => m.TeamId);
            e.HasOne<User>().WithMany().HasForeignKey(m => m.UserId);
            e.HasIndex(m => new { m.TeamId, m.Id });
        });

        modelBuilder.Entity<Agent>(e =>
        {
            e.ToTable("agents");
            e.Ignore(a => a.Process);
            e.HasOne<Team>().WithMany().HasForeignKey(a => a.TeamId);
            e.HasOne<User>().WithMany().HasForeignKey(a => a.UserId);
            e.HasIndex(a => new { a.TeamId, a.CreatedAt });
            e.HasIndex(a => a.Status);
        });
        modelBuilder.Entity<PermissionPrompt>(e =>
        {
            e.ToTable("agent_permissions");
            e.HasKey(p => new { p.AgentId, p.RequestId });
            e.HasOne<Agent>().WithMany().HasForeignKey(p => p.AgentId);
            e.HasIndex(p => new { p.AgentId, p.Status });
        });
        modelBuilder.Entity<Budget>(e =>
        {
            e.ToTable("budgets");
            e.HasKey(b => new { b.TeamId, b.Subject, b.Period });
            e.HasOne<Team>().WithMany().HasForeignKey(b => b.TeamId);
        });
        modelBuilder.Entity<BudgetAlert>(e =>
        {
            e.ToTable("budget_alerts");
            e.HasKey(a => new { a.TeamId, a.Subject, a.Period, a.PeriodStart });
            e.HasOne<Team>().WithMany().HasForeignKey(a => a.TeamId);
        });
        modelBuilder.Entity<Features.Push.PushSubscriptionRow>(e =>
        {
            e.ToTable("push_subscriptions");
            e.HasOne<User>().WithMany().HasForeignKey(s => s.UserId);
            e.HasIndex(s => s.EndpointHash).IsUnique();
            e.HasIndex(s => new { s.TeamId, s.UserId });
        });
        modelBuilder.Entity<Features.Push.PushKeyRow>(e => e.ToTable("push_keys"));
        modelBuilder.Entity<AgentAction>(e =>
        {
            e.ToTable("agent_actions");
            e.HasOne<Agent>().WithMany().HasForeignKey(a => a.AgentId);
            e.HasIndex(a => new { a.AgentId, a.Position });
        });
        modelBuilder.Entity<AgentController>(e =>
        {
            e.ToTable("agent_controllers");
            e.HasKey(c => new { c.AgentId, c.UserId });
            e.HasOne<Agent>().WithMany().HasForeignKey(c => c.AgentId);
        });

        modelBuilder.Entity<Vm>(e =>
        {
            e.ToTable("vms");
            e.HasOne<Team>().WithMany().HasForeignKey(v => v.TeamId);
            e.HasOne<User>().WithMany().HasForeignKey(v => v.UserId);
            e.HasIndex(v => v.TeamId);
            e.HasIndex(v => v.UserId);
            e.HasIndex(v => v.RunnerRegistrationHash).IsUnique();
            e.HasIndex(v => v.RunnerCredentialHash).IsUnique();
        });

        modelBuilder.Entity<VmAudit>(e =>
        {
            e.ToTable("vm_audit");
            e.HasOne<Team>().WithMany().HasForeignKey(a => a.TeamId);
            e.HasIndex(a => new { a.VmId, a.Id });
        });

        modelBuilder.Entity<VmAssignment>(e =>
        {
            e.ToTable("vm_assignments");
            e.HasKey(a => a.UserId);
            e.HasOne<User>().WithMany().HasForeignKey(a => a.UserId);
            e.HasIndex(a => a.InstanceId);
        });

        modelBuilder.Entity<ContainerEnvironment>(e =>
        {
            e.ToTable("container_environments");
            e.HasOne<Team>().WithMany().HasForeignKey(c => c.TeamId);
            e.HasIndex(c => c.TeamId).HasDatabaseName("idx_container_environments_team_id");
            e.HasIndex(c => c.Status).HasDatabaseName("idx_container_environments_status");
            e.HasIndex(c => c.ContainerName);
        });

        modelBuilder.Entity<TeamRepository>(e =>
        {
            e.ToTable("team_repositories");
            e.HasKey(r => r.TeamId);
            e.HasOne<Team>().WithMany().HasForeignKey(r => r.TeamId);
        });

        modelBuilder.Entity<Preview>(e =>
        {
            e.ToTable("previews");
            e.HasKey(p => p.TeamId);
            e.HasOne<Team>().WithMany().HasForeignKey(p => p.TeamId);
        });
        modelBuilder.Entity<PreviewDeploy>(e =>
        {
            e.ToTable("preview_deploys");
            e.Ignore(d => d.Process);
            e.HasOne<Team>().WithMany().HasForeignKey(d => d.TeamId);
            e.HasIndex(d => new { d.TeamId, d.CreatedAt });
            e.HasIndex(d => d.Status);
        });
        modelBuilder.Entity<PreviewDelivery>(e =>
        {
            e.ToTable("preview_deliveries");
            e.HasKey(d => new { d.TeamId, d.DeliveryId });
            e.HasOne<Team>().WithMany().HasForeignKey(d => d.TeamId);
        });
        modelBuilder.Entity<PreviewGrant>(e =>
        {
            e.ToTable("preview_grants");
            e.HasOne<Team>().WithMany().HasForeignKey(g => g.TeamId);
            e.HasOne<User>().WithMany().HasForeignKey(g => g.UserId);
            e.HasIndex(g => g.TokenHash).IsUnique();
            e.HasIndex(g => g.SessionId);
        });

        modelBuilder.Entity<BoxPool>(e =>
        {
            e.ToTable("box_pools");
            e.HasOne<Team>().WithMany().HasForeignKey(p => p.TeamId);
            e.HasIndex(p => new { p.TeamId, p.RepoUrl, p.BaseBranch }).IsUnique();
        });
        modelBuilder.Entity<Box>(e =>
        {
            e.ToTable("boxes");
            e.HasOne<Team>().WithMany().HasForeignKey(b => b.TeamId);
            e.HasOne<User>().WithMany().HasForeignKey(b => b.HolderId).OnDelete(DeleteBehavior.SetNull);
            e.HasOne<BoxPool>().WithMany().HasForeignKey(b => b.PoolId).OnDelete(DeleteBehavior.SetNull);
            e.HasIndex(b => new { b.PoolId, b.Status, b.HolderId });
            e.HasIndex(b => new { b.TeamId, b.CreatedAt });
            e.HasIndex(b => b.Status);
        });
        modelBuilder.Entity<Lease>(e =>
        {
            e.ToTable("leases");
            e.HasKey(l => l.Name);
        });

        foreach (var entity in modelBuilder.Model.GetEntityTypes())
        {
            foreach (var property in entity.GetProperties())
            {
                property.SetColumnName(SnakeCase(property.Name));
            }
        }
    }

    internal static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                sb.Append('_');
            }
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }

    private sealed class UtcConverter() : ValueConverter<DateTime, DateTime>(
        v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(),
        v => DateTime.SpecifyKind(v, DateTimeKind.Utc));
}
