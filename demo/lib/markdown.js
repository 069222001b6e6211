// A small Markdown subset for model output, built as DOM nodes: text only ever
// goes through textContent / createTextNode, never innerHTML, so whatever a
// model writes (<script>, <img onerror=...>, javascript: links) shows as text.
//
// Blocks: paragraphs (single newlines kept as line breaks), # headings,
// ``` fenced code (an unclosed fence while streaming runs to the end),
// - / * / + and 1. lists, > quotes, --- rules.
// Inline: `code`, **strong**, *em* / _em_, [text](http(s)/mailto URL), \escapes.

/** Parse into a plain tree: [{type, ...}] blocks with inline children. */
export function parseMarkdown(text) {
  const lines = String(text).replace(/\r\n?/g, '\n').split('\n');
  const blocks = [];
  let para = null;
  const endPara = () => {
    if (para) blocks.push({ type: 'p', children: parseInline(para.join('\n')) });
    para = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = /^\s{0,3}(```|~~~)\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      endPara();
      const body = [];
      let j = i + 1;
      while (j < lines.length && !new RegExp(`^\\s{0,3}${fence[1]}\\s*$`).test(lines[j])) body.push(lines[j++]);
      blocks.push({ type: 'code', lang: fence[2] || null, text: body.join('\n') });
      i = j;
      continue;
    }
    if (/^\s*$/.test(line)) {
      endPara();
      continue;
    }
    const h = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      endPara();
      blocks.push({ type: 'h', level: h[1].length, children: parseInline(h[2]) });
      continue;
    }
    if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      endPara();
      blocks.push({ type: 'hr' });
      continue;
    }
    const item = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(line);
    if (item) {
      endPara();
      const ordered = /\d/.test(item[1]);
      const list = { type: ordered ? 'ol' : 'ul', start: ordered ? parseInt(item[1], 10) : 1, items: [] };
      let j = i;
      for (; j < lines.length; j++) {
        const m = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(lines[j]);
        if (m && /\d/.test(m[1]) === ordered) list.items.push(m[2]);
        else if (!m && list.items.length && /^\s{2,}\S/.test(lines[j])) list.items[list.items.length - 1] += '\n' + lines[j].trim();
        else break;
      }
      list.items = list.items.map((t) => parseInline(t));
      blocks.push(list);
      i = j - 1;
      continue;
    }
    if (/^\s{0,3}>/.test(line)) {
      endPara();
      const quoted = [];
      let j = i;
      for (; j < lines.length && /^\s{0,3}>/.test(lines[j]); j++) quoted.push(lines[j].replace(/^\s{0,3}>\s?/, ''));
      blocks.push({ type: 'quote', children: parseMarkdown(quoted.join('\n')) });
      i = j - 1;
      continue;
    }
    (para ??= []).push(line);
  }
  endPara();
  return blocks;
}

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

/** Inline spans: [{type: 'text'|'code'|'strong'|'em'|'link'|'br', ...}]. */
export function parseInline(s) {
  const out = [];
  let text = '';
  const flush = () => {
    if (text) out.push({ type: 'text', text });
    text = '';
  };
  for (let i = 0; i < s.length; ) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length && /[\\`*_[\]()#+\-.!>~]/.test(s[i + 1])) {
      text += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '\n') {
      flush();
      out.push({ type: 'br' });
      i++;
      continue;
    }
    if (c === '`') {
      const end = s.indexOf('`', i + 1);
      if (end > i + 1) {
        flush();
        out.push({ type: 'code', text: s.slice(i + 1, end) });
        i = end + 1;
        continue;
      }
    }
    if ((c === '*' || c === '_') && s[i + 1] === c) {
      const end = s.indexOf(c + c, i + 2);
      if (end > i + 2 && !/\s/.test(s[i + 2])) {
        flush();
        out.push({ type: 'strong', children: parseInline(s.slice(i + 2, end)) });
        i = end + 2;
        continue;
      }
    }
    if (c === '*' || c === '_') {
      const end = s.indexOf(c, i + 1);
      // "_" inside words (snake_case) is not emphasis
      const inWord = c === '_' && i > 0 && /\w/.test(s[i - 1]);
      if (end > i + 1 && !inWord && !/\s/.test(s[i + 1]) && !/\s/.test(s[end - 1])) {
        flush();
        out.push({ type: 'em', children: parseInline(s.slice(i + 1, end)) });
        i = end + 1;
        continue;
      }
    }
    if (c === '[') {
      const close = s.indexOf('](', i + 1);
      const end = close < 0 ? -1 : s.indexOf(')', close + 2);
      if (close > i && end > close) {
        const href = s.slice(close + 2, end).trim();
        flush();
        const children = parseInline(s.slice(i + 1, close));
        // Only http(s) and mailto become links; anything else (javascript:, data:) stays text.
        if (SAFE_URL.test(href) && !/\s/.test(href)) out.push({ type: 'link', href, children });
        else out.push({ type: 'text', text: s.slice(i, end + 1) });
        i = end + 1;
        continue;
      }
    }
    text += c;
    i++;
  }
  flush();
  return out;
}

/**
 * Render Markdown text into a DocumentFragment.
 * @param {string} text
 * @param {Document} [doc]
 */
export function renderMarkdown(text, doc = document) {
  const frag = doc.createDocumentFragment();
  for (const b of parseMarkdown(text)) frag.append(block(b, doc));
  return frag;
}

function el(doc, tag, children = [], props = {}) {
  const e = doc.createElement(tag);
  for (const [k, v] of Object.entries(props)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function block(b, doc) {
  switch (b.type) {
    case 'p':
      return el(doc, 'p', inline(b.children, doc));
    case 'h':
      // Model headings sit inside a chat message: keep them below the page's own.
      return el(doc, `h${Math.min(6, b.level + 2)}`, inline(b.children, doc));
    case 'code': {
      const code = el(doc, 'code');
      code.textContent = b.text;
      return el(doc, 'pre', [code], b.lang ? { 'data-lang': b.lang } : {});
    }
    case 'ul':
    case 'ol':
      return el(
        doc,
        b.type,
        b.items.map((it) => el(doc, 'li', inline(it, doc))),
        b.type === 'ol' && b.start !== 1 ? { start: String(b.start) } : {},
      );
    case 'quote': {
      const q = el(doc, 'blockquote');
      for (const c of b.children) q.append(block(c, doc));
      return q;
    }
    case 'hr':
      return el(doc, 'hr');
    default:
      return doc.createTextNode('');
  }
}

function inline(spans, doc) {
  return spans.map((s) => {
    switch (s.type) {
      case 'text':
        return doc.createTextNode(s.text);
      case 'br':
        return el(doc, 'br');
      case 'code': {
        const c = el(doc, 'code');
        c.textContent = s.text;
        return c;
      }
      case 'strong':
        return el(doc, 'strong', inline(s.children, doc));
      case 'em':
        return el(doc, 'em', inline(s.children, doc));
      case 'link':
        return el(doc, 'a', inline(s.children, doc), { href: s.href, target: '_blank', rel: 'noopener noreferrer nofollow' });
      default:
        return doc.createTextNode('');
    }
  });
}
