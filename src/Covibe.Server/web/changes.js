// What an agent on the team's repository has changed, beside its output (the Changes view): the files with their lines
// added and removed (GET /api/agent/{id}/changes, then live from agent_changes), and a file's diff rendered by diff2html.
import { $, el } from './dom.js';

const STATUS = { A: 'added', M: 'modified', D: 'deleted', R: 'renamed', T: 'type changed', C: 'copied' };

export function createChanges({ api }) {
  let agent = null; // the open agent, when it works on the team's repository
  let changes = null;
  let openPath = null;
  let shown = false;

  function summaryText() {
    if (!changes) return 'Reading the changes…';
    const files = `${changes.files.length}${changes.truncated ? '+' : ''} file${changes.files.length === 1 ? '' : 's'} changed`;
    const where = changes.branch && changes.branch !== agent.workBranch ? ` (its tree is on ${changes.branch}, not ${agent.workBranch})` : ` on ${agent.workBranch}`;
    const merging = changes.mergingBase ? ` Bringing in ${agent.branch} at ${changes.mergingBase.slice(0, 7)}: resolve the conflict markers, then commit.` : '';
    return `${files}, +${changes.added} −${changes.removed}${where}, since ${agent.branch} at ${agent.baseCommit.slice(0, 7)}.${merging}`;
  }

  /** Who last acted on the branch (a commit, a push, a merge, an update), and the pull request link once pushed. */
  function showBranch(message) {
    const short = message.commit.slice(0, 7);
    const what = {
      push: `pushed ${message.workBranch} at ${short}`,
      commit: `committed ${short}: ${(message.message ?? '').split('\n')[0]}`,
      merge: `${message.message ?? 'merged'}: ${short}`,
      update: `${message.message ?? 'updated from base'}`,
    }[message.action] ?? `${message.action} ${short}`;
    $('#changes-branch').replaceChildren(`${message.by} ${what}`,
      ...(message.pullRequestUrl ? [' · ', el('a', { href: message.pullRequestUrl, target: '_blank', rel: 'noopener' }, 'Open a pull request')] : []));
  }

  /** What the caller's own action made, said as the team hears it. */
  function described(path, done) {
    if (path === 'merge') {
      return { ...done, message: `merged into ${done.baseBranch}${done.fastForward ? ' (fast-forward)' : ''}${done.previewQueued ? '; the preview is deploying it' : ''}` };
    }
    if (path === 'update') {
      return { ...done, commit: done.commit ?? done.baseCommit,
        message: done.conflicts.length ? `updated from base: resolve the conflicts in ${done.conflicts.join(', ')}, then commit` : 'updated from base' };
    }
    return done;
  }

  async function act(path, body) {
    $('#changes-error').textContent = '';
    try {
      const done = await api(`/api/agent/${agent.id}/${path}`, { method: 'POST', body });
      showBranch({ ...described(path, done), action: path, by: 'You' });
      return true;
    } catch (error) {
      $('#changes-error').textContent = error.message;
      return false;
    }
  }

  const message = $('#commit-message');
  message.addEventListener('input', () => { message.dataset.edited = 'true'; });
  $('#changes-commit').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (await act('commit', { message: message.value.trim() || null })) {
      message.value = '';
      delete message.dataset.edited;
    }
  });
  $('#changes-push').addEventListener('click', () => act('push'));
  $('#changes-merge').addEventListener('click', () => act('merge'));
  $('#changes-update').addEventListener('click', () => act('update'));

  /** The message proposed for the work (its task and the agent's final summary), until the member writes their own. */
  function propose() {
    if (!message.dataset.edited && changes?.proposedMessage) message.value = changes.proposedMessage;
  }

  function render() {
    const button = $('#view-changes');
    button.hidden = !agent;
    button.textContent = changes && changes.files.length > 0 ? `Changes (${changes.files.length})` : 'Changes';
    if (!agent || !shown) return;
    $('#changes-summary').textContent = summaryText();
    $('#changes-commit').hidden = !agent.canControl;
    $('#changes-merge').textContent = `Merge into ${agent.branch}`;
    propose();
    $('#changes-files').replaceChildren(...(changes?.files ?? []).map((file) => el('li', {},
      el('button', {
        type: 'button', className: `change-file${file.path === openPath ? ' open' : ''}`, 'aria-pressed': String(file.path === openPath),
        onclick: () => openFile(file.path),
      },
      el('span', { className: `change-status s-${file.status}`, title: STATUS[file.status] ?? file.status }, file.status),
      el('span', { className: 'change-path' }, file.oldPath ? `${file.oldPath} → ${file.path}` : file.path),
      el('span', { className: 'change-lines' }, file.added == null ? 'binary' : `+${file.added} −${file.removed}`)))));
  }

  async function openFile(path) {
    openPath = path;
    render();
    try {
      const diff = await api(`/api/agent/${agent.id}/changes/diff?path=${encodeURIComponent(path)}`, { text: true });
      if (openPath !== path) return;
      $('#changes-error').textContent = '';
      const target = $('#changes-diff');
      if (!diff) {
        target.replaceChildren(el('p', { className: 'muted' }, `${path}: no difference any more.`));
      } else if (window.Diff2Html) {
        // diff2html escapes the file's text itself; the page renders its markup.
        target.innerHTML = window.Diff2Html.html(diff, { drawFileList: false, outputFormat: 'line-by-line', matching: 'lines', diffStyle: 'word' });
      } else {
        target.replaceChildren(el('pre', { className: 'raw' }, diff));
      }
    } catch (error) {
      $('#changes-error').textContent = error.message;
    }
  }

  async function refresh() {
    if (!agent) return;
    try {
      changes = await api(`/api/agent/${agent.id}/changes`);
      $('#changes-error').textContent = '';
    } catch (error) {
      $('#changes-error').textContent = error.message;
    }
    render();
  }

  return {
    /** The agent view opened (or its agent changed): a Changes button for an agent on the team's repository. */
    opened(opened) {
      const same = agent?.id === opened?.id;
      agent = opened?.workBranch && !opened.treeDiscarded ? opened : null;
      if (!same) {
        changes = null;
        openPath = null;
        message.value = '';
        delete message.dataset.edited;
        $('#changes-diff').replaceChildren();
        $('#changes-branch').replaceChildren();
        if (agent) refresh();
      }
      render();
    },
    /** Shows or hides the Changes view in place of the output. */
    show(visible) {
      shown = visible && !!agent;
      $('#changes').hidden = !shown;
      if (shown) render();
    },
    /** agent_branch: someone committed, pushed, merged or updated the open agent's branch. */
    onBranch(message) {
      if (agent?.id === message.agentId) showBranch(message);
    },
    /** agent_changes: for the open agent, the list now; an open file's diff read again. */
    onChanges(message) {
      if (agent?.id !== message.agentId) return;
      changes = { ...changes, ...message };
      render();
      if (shown && openPath && changes.files.some((f) => f.path === openPath)) openFile(openPath);
    },
  };
}
