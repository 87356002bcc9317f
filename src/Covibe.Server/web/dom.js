// The web client's DOM helpers, one copy for every module.

export const $ = (selector) => document.querySelector(selector);

/**
 * An element with its properties and children: `class` and `dataset` as named, `on...` functions as listeners,
 * a DOM property (`className`, `textContent`, `disabled`, `value`...) as that property, anything else (`aria-*`,
 * `role`...) as an attribute (true: present, false or null: absent). Children may be nodes, text or arrays of them.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key in node && !key.includes('-') && (value !== false || typeof node[key] === 'boolean')) node[key] = value;
    else if (value !== false) node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** A disclosure button (aria-expanded) and the panel it controls: toggled, or set to `open`. */
export function toggle(button, open) {
  const node = $(button);
  const expanded = open ?? node.getAttribute('aria-expanded') !== 'true';
  node.setAttribute('aria-expanded', expanded);
  document.getElementById(node.getAttribute('aria-controls')).hidden = !expanded;
}

/** A form's fields as an object; blank text is null. */
export function formData(form) {
  const data = {};
  for (const [key, value] of new FormData(form)) data[key] = typeof value === 'string' && value.trim() === '' ? null : value;
  return data;
}

/** Whether `element` is scrolled to its end (within `slack` pixels). */
export const atEnd = (element, slack = 40) => element.scrollHeight - element.scrollTop - element.clientHeight < slack;

/** Bytes as a person reads them in the output view: "1.4 MB". */
export const megabytes = (bytes) => `${(bytes / 1_000_000).toFixed(1)} MB`;
