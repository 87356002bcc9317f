// The team's repository in the Workshop (GET /api/team/repository): where agents' branches start, what the preview and
// boxes fetch. The owner makes the deploy key (its public half to paste into the forge) and connects the repository.
import { $, el } from './dom.js';

const AUTH = {
  'ssh-key': 'over SSH with the team\'s deploy key',
  token: 'with an access token',
  none: 'without a credential (public)',
};

export function createRepository({ api, isOwner }) {
  let repository = null;

  function render() {
    const owner = isOwner();
    const connected = repository?.url;
    // New agents work on the team's repository once there is one: the spawn form offers its base branch.
    $('#spawn-base').hidden = !connected;
    $('#spawn-base input').placeholder = connected ? repository.branch : '';
    $('#repo-summary').textContent = connected
      ? `${repository.url} (base branch ${repository.branch}), ${AUTH[repository.auth] ?? repository.auth}. Connected by ${repository.connectedBy ?? 'someone'} on ${new Date(repository.connectedAt).toLocaleDateString()}.`
      : owner ? 'No repository yet. Connect the team\'s repository: agents start their branches from it, the preview and boxes fetch it (private ones too).'
        : 'No repository yet: the team owner connects it.';
    $('#repo-hostkeys').replaceChildren(...(repository?.hostKeys ?? []).map((k) => el('li', { className: 'muted' }, `Host key pinned: ${k.type} ${k.fingerprint}`)));
    const key = repository?.publicKey;
    $('#repo-key').hidden = !key;
    $('#repo-key-text').textContent = key ?? '';
    $('#repo-key-note').textContent = key ? `Deploy key ${repository.keyFingerprint}: add it to the repository as a deploy key with write access (GitHub: Settings, Deploy keys).` : '';
    $('#repo-owner').hidden = !owner;
    $('#repo-disconnect').hidden = !owner || !connected;
    const form = $('#repo-form');
    if (!form.contains(document.activeElement) && connected) {
      form.elements.url.value = repository.url;
      form.elements.branch.value = repository.branch ?? '';
    }
  }

  async function refreshDisk() {
    const disk = $('#repo-disk');
    disk.hidden = !isOwner() || !repository?.url;
    if (disk.hidden) return;
    try {
      const use = await api('/api/team/worktrees');
      const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
      disk.textContent = `On this server: ${mb(use.totalBytes)} (the mirror ${mb(use.mirrorBytes)}; ${use.trees.length} of at most ${use.max} agents' work trees kept).`;
    } catch (error) {
      disk.textContent = `Disk use unknown: ${error.message}`;
    }
  }

  async function refresh() {
    try {
      repository = await api('/api/team/repository');
      refreshDisk();
    } catch (error) {
      repository = null;
      if (error.status !== 404) {
        $('#repo-summary').textContent = `Could not load the team's repository: ${error.message}`;
        return;
      }
    }
    render();
  }

  function failed(error) {
    $('#repo-error').textContent = error.message;
  }

  $('#repo-make-key').addEventListener('click', async () => {
    $('#repo-error').textContent = '';
    if (repository?.publicKey && !confirm('Make a new deploy key? The old one stops working here; add the new one to the repository.')) return;
    try {
      await api('/api/team/repository/deploy-key', { method: 'POST' });
      await refresh();
    } catch (error) { failed(error); }
  });

  $('#repo-key-copy').addEventListener('click', () => navigator.clipboard?.writeText($('#repo-key-text').textContent));

  $('#repo-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const button = form.querySelector('button[type="submit"]');
    $('#repo-error').textContent = '';
    button.disabled = true;
    $('#repo-progress').textContent = 'Checking that the repository answers…';
    try {
      repository = await api('/api/team/repository', {
        method: 'PUT',
        body: { url: form.elements.url.value.trim(), branch: form.elements.branch.value.trim() || null, token: form.elements.token.value || null },
      });
      form.elements.token.value = '';
      document.activeElement?.blur();
      render();
    } catch (error) {
      failed(error);
    } finally {
      button.disabled = false;
      $('#repo-progress').textContent = '';
    }
  });

  $('#repo-disconnect').addEventListener('click', async () => {
    if (!confirm('Disconnect the team\'s repository and forget its credential?')) return;
    try {
      await api('/api/team/repository', { method: 'DELETE' });
      repository = null;
      render();
    } catch (error) { failed(error); }
  });

  return { refresh };
}
