// The Showcase tab: the team's shared preview (seed 001's Shared Preview System). Its state comes over the
// hub (preview_status on every change, preview_updated when a new version serves) and GET /api/preview;
// the app itself is shown from its own origin, opened with a one-time link (POST /api/preview/link), so
// nothing of the member's Covibe login ever reaches it. The owner connects the repository here.
import { $, atEnd } from './dom.js';

const short = (commit) => (commit ?? '').slice(0, 7);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const IN_PROGRESS = new Set(['queued', 'building', 'starting']);

export function createShowcase({ api, isOwner, alert }) {
  let preview = null; // the last PreviewDto, or null when the team has none
  let loaded = false;
  let shownCommit = null; // the version in the frame
  let log = null; // { id, from, running }

  async function load() {
    try {
      preview = await api('/api/preview');
    } catch (error) {
      if (error.status !== 404) {
        $('#preview-summary').textContent = `Could not load the preview: ${error.message}`;
        return;
      }
      preview = null;
    }
    loaded = true;
    render();
  }

  function render() {
    const owner = isOwner();
    $('#preview-settings-toggle').hidden = !owner;
    $('#preview-owner-actions').hidden = !owner || !preview;
    if (!preview) {
      $('#preview-summary').textContent = owner
        ? 'No preview yet: connect the team\'s repository under Settings.'
        : 'No preview yet: the team owner connects the team\'s repository.';
      $('#preview-detail').textContent = '';
      $('#preview-error').textContent = '';
      $('#preview-open').hidden = true;
      $('#preview-log-toggle').hidden = true;
      $('#preview-frame').hidden = true;
      $('#preview-empty').hidden = false;
      if (owner) toggle('#preview-settings-toggle', true);
      return;
    }
    const current = preview.current;
    const summary = $('#preview-summary');
    summary.replaceChildren(
      Object.assign(document.createElement('span'), { className: `badge ${preview.status}`, textContent: preview.status }),
      ` ${preview.repositoryUrl} (${preview.branch})`);
    const details = [];
    if (preview.commit) details.push(`Live: ${short(preview.commit)} since ${when(preview.deployedAt)}`);
    if (current) details.push(`Now: ${short(current.commit)} ${current.status} (${current.trigger})`);
    if (preview.checkError) details.push(`Branch check: ${preview.checkError}`);
    $('#preview-detail').textContent = details.join(' · ');
    $('#preview-error').textContent = preview.error ? `The deploy of ${short(preview.latest?.commit)} failed: ${preview.error}` : '';
    $('#preview-open').hidden = !preview.url;
    $('#preview-log-toggle').hidden = !(current ?? preview.latest);
    $('#preview-cancel').disabled = !current;
    $('#preview-empty').hidden = !!preview.url;
    $('#preview-empty').textContent = preview.url ? '' : 'The first version is on its way: follow its build log above.';
    $('#preview-frame').hidden = !preview.url;
    if (preview.url && preview.commit !== shownCommit && !$('#showcase').hidden) showFrame();
    followLog();
  }

  /** Loads the live version into the frame with a fresh one-time link (the frame's own cookie may be blocked). */
  async function showFrame() {
    if (!preview?.url) return;
    shownCommit = preview.commit;
    try {
      const link = await api('/api/preview/link', { method: 'POST' });
      $('#preview-frame').src = link.url;
      $('#preview-frame').dataset.commit = preview.commit;
    } catch (error) {
      $('#preview-error').textContent = `Could not open the preview: ${error.message}`;
    }
  }

  // The build log of the deploy under way (else the latest), read by position as it is written.
  async function followLog() {
    const deploy = preview?.current ?? preview?.latest;
    if (!deploy || $('#preview-log').hidden) return;
    if (log?.id !== deploy.id) {
      log = { id: deploy.id, from: 0, running: false };
      $('#preview-log').textContent = '';
    }
    if (log.running) return;
    log.running = true;
    const mine = log;
    try {
      while (log === mine && !$('#preview-log').hidden) {
        const reply = await fetch(`/api/preview/deploys/${mine.id}/log?from=${mine.from}&wait=25`, { headers: { Authorization: `Bearer ${api.token()}` } });
        if (!reply.ok) break;
        const text = await reply.text();
        mine.from = Number(reply.headers.get('Covibe-Log-Next'));
        const pane = $('#preview-log');
        const wasAtEnd = atEnd(pane, 5);
        pane.append(text);
        if (wasAtEnd) pane.scrollTop = pane.scrollHeight;
        if (!text && !IN_PROGRESS.has(reply.headers.get('Covibe-Deploy-Status'))) break;
      }
    } finally {
      mine.running = false;
    }
  }

  function toggle(button, open) {
    const node = $(button);
    const expanded = open ?? node.getAttribute('aria-expanded') !== 'true';
    node.setAttribute('aria-expanded', expanded);
    document.getElementById(node.getAttribute('aria-controls')).hidden = !expanded;
    return expanded;
  }

  async function act(path, method = 'POST') {
    $('#preview-form-error').textContent = '';
    try {
      const answer = await api(path, { method });
      if (answer?.webhookSecret) showWebhook(answer);
      await load();
    } catch (error) {
      $('#preview-form-error').textContent = error.message;
    }
  }

  function showWebhook(connected) {
    $('#preview-webhook').hidden = false;
    $('#preview-webhook-url').value = connected.webhookUrl;
    $('#preview-webhook-secret').value = connected.webhookSecret;
  }

  function wire() {
    $('#preview-settings-toggle').addEventListener('click', () => toggle('#preview-settings-toggle'));
    $('#preview-log-toggle').addEventListener('click', () => { if (toggle('#preview-log-toggle')) followLog(); });
    $('#preview-open').addEventListener('click', async () => {
      // Opened before the link arrives, so the browser does not take it for a pop-up.
      const tab = window.open('about:blank', '_blank');
      try {
        const link = await api('/api/preview/link', { method: 'POST' });
        if (tab) { tab.opener = null; tab.location = link.url; }
      } catch (error) {
        tab?.close();
        $('#preview-error').textContent = error.message;
      }
    });
    $('#preview-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const form = new FormData(event.target);
      $('#preview-form-error').textContent = '';
      try {
        const connected = await api('/api/preview', { method: 'PUT', body: { repositoryUrl: form.get('repositoryUrl'), branch: form.get('branch') || null } });
        showWebhook(connected);
        preview = connected.preview;
        render();
        toggle('#preview-log-toggle', true);
        followLog();
      } catch (error) {
        $('#preview-form-error').textContent = error.message;
      }
    });
    $('#preview-redeploy').addEventListener('click', () => act('/api/preview/redeploy'));
    $('#preview-cancel').addEventListener('click', () => act('/api/preview/cancel'));
    $('#preview-rotate').addEventListener('click', () => act('/api/preview/webhook-secret'));
    $('#preview-disconnect').addEventListener('click', () => {
      if (confirm('Disconnect the repository and stop the preview for the whole team?')) act('/api/preview', 'DELETE');
    });
  }

  wire();

  return {
    /** The Showcase tab is showing. */
    shown() {
      if (!loaded) load();
      else if (preview?.url && preview.commit !== shownCommit) showFrame();
    },
    /** preview_status: any change of the preview's state. */
    onStatus(next) {
      const failedNow = next.latest?.status === 'failed' && (preview?.latest?.id !== next.latest.id || preview?.latest?.status !== 'failed');
      preview = next;
      loaded = true;
      render();
      if (failedNow) alert(`The preview's deploy of ${short(next.latest.commit)} failed: ${next.error ?? next.latest.error}`);
    },
    /** preview_updated: a new version answers its health check; every device shows it without a reload. */
    onUpdated(message) {
      if (preview) { preview.url = message.url; preview.commit = message.commit; }
      if (!$('#showcase').hidden) showFrame();
    },
    /** After a reconnection: what changed meanwhile. */
    resync: () => (loaded ? load() : undefined),
    get commit() { return $('#preview-frame').dataset.commit ?? null; },
  };
}
