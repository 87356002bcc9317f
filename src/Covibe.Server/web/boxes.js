// Boxes and warm pools in the Workshop tab (seed 002): request a box for a repository and branch,
// watch it provision, open a terminal in it, release it; see the team's pools fill and serve.
// Agents go into a box from the spawn form's "Where" choice (app.js lists your ready boxes there).
import { $, el } from './dom.js';

const STEPS = { queued: 'waiting to start', clone: 'fetching the repository', container: 'starting the box', devcontainer: 'devcontainer up', env: 'writing the .env' };
const short = (commit) => (commit ? commit.slice(0, 7) : '');

export function createBoxes({ api, me, alert, openTerminal, changed }) {
  const boxes = new Map();
  let pools = [];

  function mine() {
    return [...boxes.values()].filter((b) => b.status === 'ready' && b.holder?.id === me()?.id);
  }

  function render() {
    const list = [...boxes.values()].filter((b) => b.status !== 'released').sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    $('#boxes').replaceChildren(...list.map((b) => {
      const state = b.status === 'provisioning' ? `${STEPS[b.step] ?? b.step}…` : b.status;
      const item = el('li', { className: `env-item box box-${b.status}` },
        el('p', { className: 'env-name' }, `${b.repoUrl} (${b.branch}${b.commit ? ` @ ${short(b.commit)}` : ''})`),
        el('p', { className: 'muted' }, [
          state,
          b.holder ? b.holder.name : null,
          b.devcontainer ? 'dev container' : null,
          b.hasEnv ? '.env' : null,
          b.fromPool ? `from the pool in ${Math.round(b.claimMs)} ms` : null,
        ].filter(Boolean).join(' · ')),
        b.error ? el('p', { className: 'error' }, b.error) : null);
      if (b.holder?.id === me()?.id && b.status !== 'released') {
        const actions = el('div', { className: 'box-actions' });
        if (b.status === 'ready') {
          actions.append(el('button', { type: 'button', textContent: 'Terminal', onclick: () => openTerminal(b.id) }));
        }
        actions.append(el('button', { type: 'button', className: 'danger', textContent: 'Release', onclick: () => release(b.id) }));
        item.append(actions);
      }
      return item;
    }));
    $('#boxes-empty').hidden = list.length > 0;
    $('#pools').replaceChildren(...pools.map((p) => el('li', { className: 'env-item' },
      el('p', { className: 'env-name' }, `${p.repoUrl} (${p.baseBranch})${p.source === 'config' ? ' · operator' : ''}`),
      el('p', { className: 'muted' }, [
        `${p.ready}/${p.minStandby} ready`,
        p.provisioning ? `${p.provisioning} provisioning` : null,
        `${p.claimed} claimed (at most ${p.maxInstances})`,
        p.failed ? `${p.failed} failed` : null,
        `${p.claims} claims, ${p.misses} misses`,
        p.claimP50Ms !== null ? `claim p50 ${p.claimP50Ms} ms, p99 ${p.claimP99Ms} ms` : null,
      ].filter(Boolean).join(' · ')),
      p.paused ? el('p', { className: 'error' }, p.pausedReason) : null)));
    $('#pools-title').hidden = pools.length === 0;
    changed();
  }

  async function refresh() {
    try {
      const [list, poolList] = await Promise.all([api('/api/boxes'), api('/api/pools')]);
      boxes.clear();
      for (const b of list.boxes) boxes.set(b.id, b);
      pools = poolList.pools;
      render();
    } catch (error) {
      $('#box-error').textContent = `Could not load boxes: ${error.message}`;
    }
  }

  async function release(id) {
    try {
      update(await api(`/api/boxes/${id}`, { method: 'DELETE' }));
    } catch (error) {
      alert(error.message);
    }
  }

  function update(box) {
    boxes.set(box.id, box);
    render();
  }

  $('#box-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    $('#box-error').textContent = '';
    const form = event.target;
    const data = Object.fromEntries(new FormData(form));
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const box = await api('/api/boxes', { method: 'POST', body: { repoUrl: data.repoUrl, branch: data.branch || null, env: data.env || null } });
      form.elements.env.value = ''; // the .env is not kept in the page
      update(box);
      if (box.status === 'ready') alert(`Box ready from the warm pool in ${Math.round(box.claimMs)} ms.`);
      refresh();
    } catch (error) {
      $('#box-error').textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });

  return {
    shown: refresh,
    /** A box changed (box_updated on the hub): provisioning steps, ready, failed, released. */
    onUpdated(box) {
      update(box);
      if (box.status === 'failed' && box.holder?.id === me()?.id) alert(`Your box for ${box.repoUrl} failed: ${box.error}`);
    },
    mine,
  };
}
