// The team's environment in the Workshop tab: where its agents and terminals run, and its
// containers (seed 003's getTeamEnvironmentStatus: GET /api/team/environment).
import { $, el } from './dom.js';

const mib = (bytes) => `${Math.round(bytes / (1024 * 1024))} MiB`;

export function createEnvironment({ api }) {
  let timer = null;

  async function refresh() {
    let env;
    try {
      env = await api('/api/team/environment');
    } catch (error) {
      $('#env-summary').textContent = `Could not load the environment: ${error.message}`;
      return;
    }
    $('#env-summary').textContent = {
      off: "Your team's agents and terminals run on the server, each in its own sandbox.",
      ok: "Your team's agents and terminals run in containers.",
    }[env.engine] ?? `Containers are on for your team, but: ${env.problem}`;
    // New terminals open where the team's agents run.
    const here = $('#terminal-target option[value=""]');
    if (here) here.textContent = env.engine === 'ok' ? "in the team's container" : 'on the server';
    $('#env-containers').replaceChildren(...env.containers.map((c) => el('li', { className: 'env-item' },
      el('p', { className: 'env-name' }, c.name),
      el('p', { className: 'muted' }, [
        c.type === 'sync' ? 'workspace (terminals)' : c.type,
        c.status,
        `health ${c.health}`,
        c.limits ? `${mib(c.limits.memoryBytes)}, ${c.limits.cpus} CPU` : null,
        c.started ? `since ${new Date(c.started).toLocaleTimeString()}` : null,
      ].filter(Boolean).join(' · ')))));
  }

  return {
    /** The Workshop tab is showing: refresh now and every 30 s while it stays. */
    shown() {
      refresh();
      clearInterval(timer);
      timer = setInterval(() => { if (!$('#workshop').hidden) refresh(); }, 30_000);
    },
  };
}
