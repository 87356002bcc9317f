// The team's VMs in the Workshop tab (seed 001): whose each is and whether it is online; for your own, where it is,
// and for runner VMs (the VM runs `covibe runner` and dials out: no host, no key) the one-time command to start one,
// a new token, rotation, revocation and the VM's audit log. Agents and terminals go to your VMs from their "Where".
import { $, el } from './dom.js';

const when = (iso) => (iso ? new Date(iso).toLocaleString() : 'never');

export function createMachines({ api, me, alert, changed }) {
  let vms = [];
  const audits = new Map();

  function mine() {
    return vms.filter((vm) => vm.ownerId === me()?.id);
  }

  function where(vm) {
    if (!vm.isOwner) return null;
    if (vm.connectionType === 'ssh_proxy') return `ssh ${vm.username}@${vm.host}:${vm.port}`;
    return vm.username ? `runner: ${vm.username}@${vm.runnerHostname ?? '?'}` : `runner (${vm.connectionType}), not registered yet`;
  }

  function render() {
    $('#vms').replaceChildren(...vms.map((vm) => {
      const item = el('li', { className: `env-item vm vm-${vm.status}` },
        el('p', { className: 'env-name' }, vm.name),
        el('p', { className: 'muted' }, [
          vm.status,
          vm.isOwner ? 'yours' : vm.ownerName,
          where(vm),
          vm.agentsRunning ? `${vm.agentsRunning} agent${vm.agentsRunning === 1 ? '' : 's'} running` : null,
          vm.connectionType !== 'ssh_proxy' ? `last heard from ${when(vm.lastPoll)}` : null,
        ].filter(Boolean).join(' · ')),
        vm.isOwner && vm.lastError && vm.status !== 'online' ? el('p', { className: 'muted' }, vm.lastError) : null);
      if (vm.isOwner && vm.connectionType !== 'ssh_proxy') {
        item.append(el('div', { className: 'box-actions' },
          el('button', { type: 'button', textContent: 'New token', onclick: () => token(vm) }),
          el('button', { type: 'button', textContent: 'Rotate', disabled: vm.status !== 'online', onclick: () => rotate(vm) }),
          el('button', { type: 'button', textContent: audits.has(vm.id) ? 'Hide audit' : 'Audit', onclick: () => audit(vm) }),
          el('button', { type: 'button', className: 'danger', textContent: 'Revoke', disabled: vm.status === 'revoked', onclick: () => revoke(vm) })));
      }
      if (audits.has(vm.id)) {
        item.append(el('ol', { className: 'audit', ariaLabel: `Audit log of ${vm.name}` }, ...audits.get(vm.id).map((a) =>
          el('li', {}, `${when(a.at)} · ${a.actorName ?? a.actor} · ${a.action}${a.detail ? ` · ${a.detail}` : ''}`))));
      }
      return item;
    }));
    $('#vms-empty').hidden = vms.length > 0;
    changed();
  }

  async function refresh() {
    try {
      vms = await api('/api/vm/list');
      render();
    } catch (error) {
      $('#vm-error').textContent = `Could not load VMs: ${error.message}`;
    }
  }

  /** Re-reads the list every few seconds until the runner of <id> has connected (it is being set up on its VM now). */
  function waitOnline(id) {
    let tries = 0;
    const timer = setInterval(async () => {
      await refresh();
      const vm = vms.find((v) => v.id === id);
      if (!vm || vm.status === 'online' || ++tries > 450) clearInterval(timer);
      if (vm?.status === 'online') alert(`${vm.name}'s runner is connected.`);
    }, 2000);
  }

  /** Shows the runner command once; it is not kept in the page after it is dismissed. */
  function showCommand(name, registration) {
    $('#vm-command-text').textContent = registration.command;
    $('#vm-command-note').textContent = `On ${name}, as the user its agents should run as, run this once (the token works once, until ${when(registration.expiresAt)}). It is not shown again.`;
    $('#vm-command').hidden = false;
  }

  async function token(vm) {
    try {
      showCommand(vm.name, await api(`/api/vm/${vm.id}/registration-token`, { method: 'POST' }));
      waitOnline(vm.id);
    } catch (error) {
      alert(error.message);
    }
  }

  async function rotate(vm) {
    try {
      await api(`/api/vm/${vm.id}/rotate`, { method: 'POST' });
      alert(`Asked ${vm.name}'s runner to rotate its credential.`);
    } catch (error) {
      alert(error.message);
    }
  }

  async function revoke(vm) {
    if (!confirm(`Revoke the runner of ${vm.name}? It is disconnected now and needs a new token to come back.`)) return;
    try {
      await api(`/api/vm/${vm.id}/revoke`, { method: 'POST' });
      await refresh();
    } catch (error) {
      alert(error.message);
    }
  }

  async function audit(vm) {
    if (audits.has(vm.id)) {
      audits.delete(vm.id);
    } else {
      try {
        audits.set(vm.id, await api(`/api/vm/${vm.id}/audit`));
      } catch (error) {
        alert(error.message);
        return;
      }
    }
    render();
  }

  $('#vm-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('#vm-error').textContent = '';
    const form = event.target;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const vm = await api('/api/vm/register', { method: 'POST', body: { name: form.elements.name.value, connectionType: 'polling' } });
      showCommand(vm.name, { command: vm.runnerCommand, expiresAt: vm.registrationExpiresAt });
      form.reset();
      await refresh();
      waitOnline(vm.id);
    } catch (error) {
      $('#vm-error').textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });

  $('#vm-command-copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('#vm-command-text').textContent);
      $('#vm-command-copy').textContent = 'Copied';
    } catch {
      alert('Copy it by hand: the browser did not allow the clipboard.');
    }
  });

  $('#vm-command-done').addEventListener('click', () => {
    $('#vm-command-text').textContent = '';
    $('#vm-command-copy').textContent = 'Copy';
    $('#vm-command').hidden = true;
  });

  return {
    shown: refresh,
    /** A member's VMs changed elsewhere (their list is re-read). */
    refresh,
    /** One VM changed (vm_updated on the hub): online, offline, revoked, registered. */
    onUpdated(vm) {
      const i = vms.findIndex((v) => v.id === vm.id);
      if (i >= 0) vms[i] = vm; else vms.push(vm);
      render();
    },
    mine,
  };
}
