// The team's egress policy in the Workshop's Environment card: where its code may connect (GET /api/team/egress),
// the owner's form to change it (PUT), and the connections refused lately (live: egress_blocked on the hub).
import { $, el } from './dom.js';

const SAYS = {
  open: 'Your team\'s code may connect anywhere on the internet.',
  allowlist: 'Your team\'s code may connect only to the allowlist, through the proxy its HTTPS_PROXY names.',
  none: 'Your team\'s code may connect nowhere.',
};

export function createEgress({ api, isOwner }) {
  let policy = null;

  function render() {
    if (!policy) return;
    const why = policy.chosen ? `Chosen by the team; the server allows at most ${policy.ceiling}.` : `The server's default; the owner may choose up to ${policy.ceiling}.`;
    $('#egress-summary').textContent = `${SAYS[policy.mode]} ${why}`;
    const form = $('#egress-form');
    form.hidden = !isOwner();
    if (!form.contains(document.activeElement)) {
      form.elements.mode.value = policy.chosen ?? 'default';
      form.elements.allow.value = policy.allow.join('\n');
    }
    $('#egress-blocked').replaceChildren(...policy.blocked.map((b) => el('li', { className: 'env-item' },
      el('p', {}, b.message),
      el('p', { className: 'muted' }, [new Date(b.at).toLocaleTimeString(), b.count > 1 ? `${b.count} times` : null].filter(Boolean).join(' · ')))));
  }

  async function refresh() {
    try {
      policy = await api('/api/team/egress');
      render();
    } catch (error) {
      $('#egress-summary').textContent = `Could not load the team's egress policy: ${error.message}`;
    }
  }

  // The owner's form (shown only to the owner; the server checks it is the owner all the same).
  $('#egress-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const mode = form.elements.mode.value;
    const allow = form.elements.allow.value.split('\n').map((line) => line.trim()).filter(Boolean);
    $('#egress-error').textContent = '';
    try {
      policy = await api('/api/team/egress', { method: 'PUT', body: { mode: mode === 'default' ? null : mode, allow } });
      document.activeElement?.blur();
      render();
    } catch (error) {
      $('#egress-error').textContent = error.message;
    }
  });

  return {
    refresh,
    /** Someone changed the policy (egress_policy). */
    onPolicy(changed) { policy = changed; render(); },
    /** A connection was refused (egress_blocked): newest first, the same host again counted. */
    onBlocked(block) {
      if (!policy) return;
      const same = policy.blocked.findIndex((b) => b.host === block.host && b.port === block.port && b.how === block.how);
      if (same >= 0) policy.blocked.splice(same, 1);
      policy.blocked.unshift(block);
      render();
    },
  };
}
