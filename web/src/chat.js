// Chat prompts from a pack's chat_template: a small interpreter for the
// subset of Jinja that Hugging Face chat templates use (ChatML, Llama 2/3,
// Zephyr, Gemma, Mistral style), with HF's settings (trim_blocks,
// lstrip_blocks, no autoescape, loop controls). A template that needs more
// (macros, includes, call blocks, an unknown filter) is reported as
// unsupported and the caller falls back to a plain "role: content" prompt.
//
//   {% for %} (with else, an if filter, tuple targets, loop.*), {% if/elif/else %},
//   {% set %} (incl. namespace attributes), {% break/continue %}, {% generation %},
//   {{ expr }}, {# #}, whitespace control (- and +),
//   literals, lists, dicts, attribute/subscript/slice access, calls with keyword
//   arguments, + - * / // % ** ~, comparisons, in / not in, and/or/not,
//   x if c else y, filters (trim, length, upper, lower, default, join, tojson,
//   selectattr, map, ...), tests (defined, none, string, equalto, ...),
//   raise_exception, range, namespace, strftime_now.

export class TemplateError extends Error {
  /** @param {'unsupported'|'raise'|'error'} kind */
  constructor(kind, message) {
    super(message);
    this.name = 'TemplateError';
    this.kind = kind;
  }
}

const unsupported = (what) => new TemplateError('unsupported', what);

// ------------------------------------------------------------------ lexer

/** Split template text into text and tag tokens, applying whitespace control. */
function lex(src) {
  const out = [];
  let i = 0;
  let trimNextNewline = false; // trim_blocks
  let stripNextWs = false; // a "-" at the end of the previous tag
  while (i < src.length) {
    let j = i;
    let open = -1;
    while (j < src.length) {
      j = src.indexOf('{', j);
      if (j < 0) break;
      const c = src[j + 1];
      if (c === '{' || c === '%' || c === '#') {
        open = j;
        break;
      }
      j++;
    }
    let text = src.slice(i, open < 0 ? src.length : open);
    if (stripNextWs) text = text.replace(/^\s+/, '');
    else if (trimNextNewline) text = text.replace(/^\r?\n/, '');
    stripNextWs = trimNextNewline = false;
    if (open < 0) {
      if (text) out.push({ type: 'text', value: text });
      break;
    }
    const kind = src[open + 1];
    const close = kind === '{' ? '}}' : kind === '%' ? '%}' : '#}';
    let p = open + 2;
    const mod = src[p];
    if (mod === '-' || mod === '+') p++;
    const end = src.indexOf(close, p);
    if (end < 0) throw unsupported(`unclosed ${src.slice(open, open + 2)} tag`);
    let inner = src.slice(p, end);
    let endMod = '';
    if (inner.endsWith('-') || inner.endsWith('+')) {
      endMod = inner[inner.length - 1];
      inner = inner.slice(0, -1);
    }
    if (mod === '-') text = text.replace(/\s+$/, '');
    else if (kind !== '{' && mod !== '+') {
      // lstrip_blocks: spaces and tabs from the start of a source line up to a block tag.
      let k = open;
      while (k > i && (src[k - 1] === ' ' || src[k - 1] === '\t')) k--;
      if (k < open && (k === 0 || src[k - 1] === '\n')) text = text.slice(0, Math.max(0, text.length - (open - k)));
    }
    if (text) out.push({ type: 'text', value: text });
    if (kind === '{') out.push({ type: 'output', src: inner });
    else if (kind === '%') {
      // {% raw %}...{% endraw %}: copied verbatim
      if (/^\s*raw\s*$/.test(inner)) {
        const re = /\{%-?\s*endraw\s*-?%\}/g;
        re.lastIndex = end + 2;
        const m = re.exec(src);
        if (!m) throw unsupported('unclosed raw block');
        out.push({ type: 'text', value: src.slice(end + 2, m.index) });
        i = m.index + m[0].length;
        continue;
      }
      out.push({ type: 'stmt', src: inner });
    }
    if (endMod === '-') stripNextWs = true;
    else if (kind !== '{') trimNextNewline = true;
    i = end + 2;
  }
  return out;
}

// ------------------------------------------------------------ expressions

const PUNCT = ['**', '//', '==', '!=', '<=', '>=', '+', '-', '*', '/', '%', '~', '<', '>', '|', '.', ',', ':', '(', ')', '[', ']', '{', '}', '='];

function tokenizeExpr(s) {
  const toks = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      while (j < s.length && s[j] !== c) {
        if (s[j] === '\\' && j + 1 < s.length) {
          const e = s[j + 1];
          v += { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' }[e] ?? '\\' + e;
          j += 2;
        } else v += s[j++];
      }
      if (j >= s.length) throw unsupported('unterminated string literal');
      toks.push({ t: 'str', v });
      i = j + 1;
      continue;
    }
    const num = /^\d+(\.\d+)?([eE][+-]?\d+)?/.exec(s.slice(i));
    if (num) {
      toks.push({ t: 'num', v: Number(num[0]), float: num[0].includes('.') || /e/i.test(num[0]) });
      i += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i));
    if (name) {
      toks.push({ t: 'name', v: name[0] });
      i += name[0].length;
      continue;
    }
    const p = PUNCT.find((x) => s.startsWith(x, i));
    if (!p) throw unsupported(`unexpected character ${JSON.stringify(c)}`);
    toks.push({ t: 'op', v: p });
    i += p.length;
  }
  toks.push({ t: 'end' });
  return toks;
}

class ExprParser {
  constructor(src) {
    this.toks = tokenizeExpr(src);
    this.i = 0;
  }
  peek(o = 0) {
    return this.toks[this.i + o];
  }
  next() {
    return this.toks[this.i++];
  }
  isOp(v) {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }
  isName(v) {
    const t = this.peek();
    return t.t === 'name' && t.v === v;
  }
  eatOp(v) {
    if (this.isOp(v)) {
      this.i++;
      return true;
    }
    return false;
  }
  eatName(v) {
    if (this.isName(v)) {
      this.i++;
      return true;
    }
    return false;
  }
  expectOp(v) {
    if (!this.eatOp(v)) throw unsupported(`expected "${v}"`);
  }
  atEnd() {
    return this.peek().t === 'end';
  }
  done() {
    if (!this.atEnd()) throw unsupported(`unexpected ${JSON.stringify(this.peek().v)}`);
  }

  expr() {
    const a = this.or();
    if (this.isName('if')) {
      this.i++;
      const cond = this.or();
      let b = { k: 'lit', v: UNDEFINED };
      if (this.eatName('else')) b = this.expr();
      return { k: 'cond', cond, a, b };
    }
    return a;
  }
  or() {
    let a = this.and();
    while (this.eatName('or')) a = { k: 'or', a, b: this.and() };
    return a;
  }
  and() {
    let a = this.not();
    while (this.eatName('and')) a = { k: 'and', a, b: this.not() };
    return a;
  }
  not() {
    if (this.eatName('not')) return { k: 'not', a: this.not() };
    return this.compare();
  }
  compare() {
    let a = this.math1();
    for (;;) {
      const t = this.peek();
      if (t.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.v)) {
        this.i++;
        a = { k: 'bin', op: t.v, a, b: this.math1() };
      } else if (this.isName('in')) {
        this.i++;
        a = { k: 'bin', op: 'in', a, b: this.math1() };
      } else if (this.isName('not') && this.peek(1).t === 'name' && this.peek(1).v === 'in') {
        this.i += 2;
        a = { k: 'not', a: { k: 'bin', op: 'in', a, b: this.math1() } };
      } else return a;
    }
  }
  math1() {
    let a = this.concat();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.next().v;
      a = { k: 'bin', op, a, b: this.concat() };
    }
    return a;
  }
  concat() {
    let a = this.math2();
    while (this.eatOp('~')) a = { k: 'bin', op: '~', a, b: this.math2() };
    return a;
  }
  math2() {
    let a = this.pow();
    while (['*', '/', '//', '%'].some((o) => this.isOp(o))) {
      const op = this.next().v;
      a = { k: 'bin', op, a, b: this.pow() };
    }
    return a;
  }
  pow() {
    let a = this.unary();
    while (this.eatOp('**')) a = { k: 'bin', op: '**', a, b: this.unary() };
    return a;
  }
  unary() {
    if (this.eatOp('-')) return { k: 'neg', a: this.unary() };
    if (this.eatOp('+')) return this.unary();
    return this.filters(this.postfix(this.primary()));
  }
  primary() {
    const t = this.next();
    if (t.t === 'str') {
      let v = t.v;
      // adjacent string literals concatenate, as in Python
      while (this.peek().t === 'str') v += this.next().v;
      return { k: 'lit', v };
    }
    if (t.t === 'num') return { k: 'lit', v: t.float ? new PyFloat(t.v) : t.v };
    if (t.t === 'name') {
      if (t.v === 'true' || t.v === 'True') return { k: 'lit', v: true };
      if (t.v === 'false' || t.v === 'False') return { k: 'lit', v: false };
      if (t.v === 'none' || t.v === 'None') return { k: 'lit', v: null };
      return { k: 'var', name: t.v };
    }
    if (t.t === 'op' && t.v === '(') {
      if (this.eatOp(')')) return { k: 'list', items: [] };
      const e = this.expr();
      if (this.isOp(',')) {
        const items = [e];
        while (this.eatOp(',')) {
          if (this.isOp(')')) break;
          items.push(this.expr());
        }
        this.expectOp(')');
        return { k: 'list', items };
      }
      this.expectOp(')');
      return e;
    }
    if (t.t === 'op' && t.v === '[') {
      const items = [];
      while (!this.isOp(']')) {
        items.push(this.expr());
        if (!this.eatOp(',')) break;
      }
      this.expectOp(']');
      return { k: 'list', items };
    }
    if (t.t === 'op' && t.v === '{') {
      const entries = [];
      while (!this.isOp('}')) {
        const key = this.expr();
        this.expectOp(':');
        entries.push([key, this.expr()]);
        if (!this.eatOp(',')) break;
      }
      this.expectOp('}');
      return { k: 'dict', entries };
    }
    throw unsupported(`unexpected ${t.t === 'end' ? 'end of expression' : JSON.stringify(t.v)}`);
  }
  postfix(e) {
    for (;;) {
      if (this.eatOp('.')) {
        const n = this.next();
        if (n.t !== 'name' && n.t !== 'num') throw unsupported('expected an attribute name after "."');
        e = { k: 'get', obj: e, key: { k: 'lit', v: n.v }, attr: true };
      } else if (this.eatOp('[')) {
        let a = null;
        let b = null;
        let c = null;
        let slice = false;
        if (!this.isOp(':')) a = this.expr();
        if (this.eatOp(':')) {
          slice = true;
          if (!this.isOp(']') && !this.isOp(':')) b = this.expr();
          if (this.eatOp(':') && !this.isOp(']')) c = this.expr();
        }
        this.expectOp(']');
        e = slice ? { k: 'slice', obj: e, a, b, c } : { k: 'get', obj: e, key: a };
      } else if (this.isOp('(')) {
        this.i++;
        e = { k: 'call', fn: e, ...this.args() };
      } else return e;
    }
  }
  args() {
    const args = [];
    const kwargs = [];
    while (!this.isOp(')')) {
      if (this.peek().t === 'name' && this.peek(1).t === 'op' && this.peek(1).v === '=') {
        const name = this.next().v;
        this.i++;
        kwargs.push([name, this.expr()]);
      } else args.push(this.expr());
      if (!this.eatOp(',')) break;
    }
    this.expectOp(')');
    return { args, kwargs };
  }
  filters(e) {
    for (;;) {
      if (this.eatOp('|')) {
        const n = this.next();
        if (n.t !== 'name') throw unsupported('expected a filter name after "|"');
        if (!Object.hasOwn(FILTERS, n.v)) throw unsupported(`filter "${n.v}"`);
        let a = { args: [], kwargs: [] };
        if (this.eatOp('(')) a = this.args();
        e = { k: 'filter', name: n.v, a: e, ...a };
      } else if (this.isName('is')) {
        this.i++;
        const neg = this.eatName('not');
        const n = this.next();
        let name = n.v;
        if (n.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(n.v)) name = n.v;
        else if (n.t !== 'name') throw unsupported('expected a test name after "is"');
        if (name === 'none' || name === 'None') name = 'none';
        if (name === 'true' || name === 'True') name = 'true';
        if (name === 'false' || name === 'False') name = 'false';
        if (!Object.hasOwn(TESTS, name)) throw unsupported(`test "${name}"`);
        let args = [];
        if (this.eatOp('(')) args = this.args().args;
        else if (TESTS[name].length > 1 && ['str', 'num', 'name'].includes(this.peek().t) &&
          !['and', 'or', 'else', 'if', 'is', 'in', 'not'].includes(this.peek().v)) {
          args = [this.primaryNoFilter()];
        }
        e = { k: 'test', name, neg, a: e, args };
      } else return e;
    }
  }
  primaryNoFilter() {
    return this.postfix(this.primary());
  }
  /** A for target or set target: name, name.attr, or a tuple of names. */
  target() {
    const names = [];
    const paren = this.eatOp('(');
    do {
      const n = this.next();
      if (n.t !== 'name') throw unsupported('expected a variable name');
      if (this.eatOp('.')) {
        const a = this.next();
        if (a.t !== 'name') throw unsupported('expected an attribute name');
        names.push({ ns: n.v, attr: a.v });
      } else names.push(n.v);
    } while (this.eatOp(','));
    if (paren) this.expectOp(')');
    return names.length === 1 ? names[0] : names;
  }
}

// --------------------------------------------------------------- statements

function parseTemplate(src) {
  const toks = lex(src);
  let pos = 0;
  const parseExpr = (s) => {
    const p = new ExprParser(s);
    const e = p.expr();
    p.done();
    return e;
  };
  // Parse nodes until one of `ends` (statement keywords) is met; returns [nodes, endKeyword, parser].
  function block(ends) {
    const nodes = [];
    while (pos < toks.length) {
      const t = toks[pos++];
      if (t.type === 'text') nodes.push({ k: 'text', v: t.value });
      else if (t.type === 'output') nodes.push({ k: 'out', e: parseExpr(t.src) });
      else {
        const p = new ExprParser(t.src);
        const kw = p.next();
        if (kw.t !== 'name') throw unsupported(`statement ${JSON.stringify(t.src.trim())}`);
        if (ends.includes(kw.v)) return [nodes, kw.v, p];
        nodes.push(statement(kw.v, p, t.src));
      }
    }
    if (ends.length) throw unsupported(`missing {% ${ends[ends.length - 1]} %}`);
    return [nodes, null, null];
  }
  function statement(kw, p, srcText) {
    switch (kw) {
      case 'for': {
        const target = p.target();
        if (!p.eatName('in')) throw unsupported('expected "in" in a for loop');
        const iter = p.or();
        let filter = null;
        if (p.eatName('if')) filter = p.expr();
        if (p.eatName('recursive')) throw unsupported('recursive loops');
        p.done();
        const [body, end] = block(['else', 'endfor']);
        let orelse = [];
        if (end === 'else') orelse = block(['endfor'])[0];
        return { k: 'for', target, iter, filter, body, orelse };
      }
      case 'if': {
        const branches = [];
        let cond = p.expr();
        p.done();
        for (;;) {
          const [body, end, q] = block(['elif', 'else', 'endif']);
          branches.push({ cond, body });
          if (end === 'elif') {
            cond = q.expr();
            q.done();
            continue;
          }
          if (end === 'else') {
            q.done();
            const [eb] = block(['endif']);
            branches.push({ cond: null, body: eb });
          }
          return { k: 'if', branches };
        }
      }
      case 'set': {
        const target = p.target();
        if (!p.eatOp('=')) throw unsupported('block {% set %} (without "=")');
        const e = p.expr();
        p.done();
        return { k: 'set', target, e };
      }
      case 'break':
      case 'continue':
        p.done();
        return { k: kw };
      case 'generation': {
        // Hugging Face's AssistantTracker extension: renders its body.
        const [body] = block(['endgeneration']);
        return { k: 'seq', body };
      }
      default:
        throw unsupported(`{% ${srcText.trim().split(/\s+/)[0]} %}`);
    }
  }
  const [nodes] = block([]);
  return nodes;
}

// ------------------------------------------------------------------ values

const UNDEFINED = Object.freeze({ undefinedValue: true });
/** A float literal (so that `1.0` prints as "1.0", as Python does). */
class PyFloat {
  constructor(v) {
    this.v = v;
  }
  valueOf() {
    return this.v;
  }
}
class Namespace {
  constructor(init) {
    Object.assign(this, init);
  }
}
class BreakSignal {}
class ContinueSignal {}

const isUndef = (v) => v === UNDEFINED || v === undefined;
const num = (v) => (v instanceof PyFloat ? v.v : v);
const isNum = (v) => typeof v === 'number' || v instanceof PyFloat;
const isMapping = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && v !== UNDEFINED && !(v instanceof PyFloat) && !(v instanceof LoopInfo);

function truthy(v) {
  if (isUndef(v) || v === null || v === false) return false;
  if (isNum(v)) return num(v) !== 0;
  if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
  if (isMapping(v) && !(v instanceof Namespace)) return Object.keys(v).length > 0;
  return true;
}

function pyStr(v) {
  if (isUndef(v)) return '';
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v instanceof PyFloat) return Number.isInteger(v.v) ? v.v.toFixed(1) : String(v.v);
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
  if (typeof v === 'function') return '<function>';
  if (isMapping(v)) return '{' + Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ') + '}';
  return String(v);
}

function pyRepr(v) {
  if (typeof v === 'string') return "'" + v.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n') + "'";
  return pyStr(v);
}

function plain(v) {
  // to JSON-able JS values (for tojson and comparisons)
  if (v instanceof PyFloat) return v.v;
  if (isUndef(v)) return null;
  if (Array.isArray(v)) return v.map(plain);
  if (isMapping(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function eq(a, b) {
  if (isUndef(a) && isUndef(b)) return true;
  if (isNum(a) && isNum(b)) return num(a) === num(b);
  if (typeof a === 'boolean' && isNum(b)) return Number(a) === num(b);
  if (isNum(a) && typeof b === 'boolean') return num(a) === Number(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => eq(x, b[i]));
  if (isMapping(a) && isMapping(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && eq(a[k], b[k]));
  }
  return a === b;
}

function iterate(v) {
  if (isUndef(v) || v === null) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return Array.from(v);
  if (isMapping(v)) return Object.keys(v);
  throw new TemplateError('error', `${pyStr(v)} is not iterable`);
}

function contains(container, item) {
  if (typeof container === 'string') return typeof item === 'string' && container.includes(item);
  if (Array.isArray(container)) return container.some((x) => eq(x, item));
  if (isMapping(container)) return typeof item === 'string' && Object.hasOwn(container, item);
  if (isUndef(container) || container === null) return false;
  throw new TemplateError('error', `"in" needs a string, list or mapping, got ${pyStr(container)}`);
}

function index(seq, i) {
  i = num(i);
  if (!Number.isInteger(i)) return UNDEFINED;
  if (i < 0) i += seq.length;
  if (i < 0 || i >= seq.length) return UNDEFINED;
  return typeof seq === 'string' ? seq[i] : seq[i];
}

function slice(seq, a, b, c) {
  const n = seq.length;
  const step = c === null || c === undefined ? 1 : num(c);
  if (step === 0) throw new TemplateError('error', 'slice step cannot be zero');
  const norm = (x, def) => {
    if (x === null || x === undefined || isUndef(x)) return def;
    x = num(x);
    if (x < 0) x += n;
    return step > 0 ? Math.min(Math.max(x, 0), n) : Math.min(Math.max(x, -1), n - 1);
  };
  const start = norm(a, step > 0 ? 0 : n - 1);
  const stop = norm(b, step > 0 ? n : -1);
  const out = [];
  if (step > 0) for (let i = start; i < stop; i += step) out.push(seq[i]);
  else for (let i = start; i > stop; i += step) out.push(seq[i]);
  return typeof seq === 'string' ? out.join('') : out;
}

const pyStrip = (s, chars, left = true, right = true) => {
  const set = chars === undefined || chars === null || isUndef(chars) ? null : String(chars);
  const strip = (c) => (set === null ? /\s/.test(c) : set.includes(c));
  let i = 0;
  let j = s.length;
  if (left) while (i < j && strip(s[i])) i++;
  if (right) while (j > i && strip(s[j - 1])) j--;
  return s.slice(i, j);
};

/** Methods on strings, lists and mappings (what Python code in templates calls). */
function method(obj, name) {
  if (typeof obj === 'string') {
    const s = obj;
    const m = {
      strip: (c) => pyStrip(s, c),
      lstrip: (c) => pyStrip(s, c, true, false),
      rstrip: (c) => pyStrip(s, c, false, true),
      upper: () => s.toUpperCase(),
      lower: () => s.toLowerCase(),
      title: () => s.replace(/\w\S*/g, (w) => w[0].toUpperCase() + w.slice(1).toLowerCase()),
      capitalize: () => (s ? s[0].toUpperCase() + s.slice(1).toLowerCase() : s),
      startswith: (p) => (Array.isArray(p) ? p.some((x) => s.startsWith(x)) : s.startsWith(p)),
      endswith: (p) => (Array.isArray(p) ? p.some((x) => s.endsWith(x)) : s.endsWith(p)),
      split: (sep, max) => {
        if (sep === undefined || sep === null) return s.trim() === '' ? [] : s.trim().split(/\s+/);
        const parts = s.split(sep);
        if (max === undefined || num(max) < 0) return parts;
        return [...parts.slice(0, num(max)), parts.slice(num(max)).join(sep)];
      },
      replace: (a, b) => s.split(a).join(b),
      find: (x) => s.indexOf(x),
      count: (x) => (x === '' ? s.length + 1 : s.split(x).length - 1),
      join: (items) => iterate(items).map(pyStr).join(s),
      format: (...args) => { let k = 0; return s.replace(/\{\}/g, () => pyStr(args[k++])); },
    };
    return Object.hasOwn(m, name) ? m[name] : UNDEFINED;
  }
  if (Array.isArray(obj)) {
    const m = {
      append: (x) => {
        obj.push(x);
        return UNDEFINED;
      },
      index: (x) => obj.findIndex((y) => eq(x, y)),
      count: (x) => obj.filter((y) => eq(x, y)).length,
    };
    return Object.hasOwn(m, name) ? m[name] : UNDEFINED;
  }
  if (isMapping(obj)) {
    const m = {
      items: () => Object.entries(obj),
      keys: () => Object.keys(obj),
      values: () => Object.values(obj),
      get: (k, d = null) => (Object.hasOwn(obj, k) ? obj[k] : d),
    };
    return Object.hasOwn(m, name) ? m[name] : UNDEFINED;
  }
  return UNDEFINED;
}

function getAttr(obj, key) {
  if (isUndef(obj) || obj === null) return UNDEFINED;
  if (obj instanceof LoopInfo) return obj.get(key);
  if (isMapping(obj)) {
    if (typeof key === 'string' && Object.hasOwn(obj, key)) return obj[key];
    if (isNum(key) && Object.hasOwn(obj, String(num(key)))) return obj[String(num(key))];
    return typeof key === 'string' ? method(obj, key) : UNDEFINED;
  }
  if (Array.isArray(obj) || typeof obj === 'string') {
    if (isNum(key)) return index(obj, key);
    return method(obj, key);
  }
  return UNDEFINED;
}

class LoopInfo {
  constructor(items) {
    this.items = items;
    this.i = 0;
  }
  get(k) {
    const n = this.items.length;
    const i = this.i;
    switch (k) {
      case 'index': return i + 1;
      case 'index0': return i;
      case 'revindex': return n - i;
      case 'revindex0': return n - i - 1;
      case 'first': return i === 0;
      case 'last': return i === n - 1;
      case 'length': return n;
      case 'previtem': return i > 0 ? this.items[i - 1] : UNDEFINED;
      case 'nextitem': return i < n - 1 ? this.items[i + 1] : UNDEFINED;
      case 'cycle': return (...a) => a[i % a.length];
      default: return UNDEFINED;
    }
  }
}

// ------------------------------------------------------- filters and tests

const FILTERS = {
  trim: (v, chars) => pyStrip(pyStr(v), chars),
  strip: (v, chars) => pyStrip(pyStr(v), chars),
  upper: (v) => pyStr(v).toUpperCase(),
  lower: (v) => pyStr(v).toLowerCase(),
  title: (v) => method(pyStr(v), 'title')(),
  capitalize: (v) => method(pyStr(v), 'capitalize')(),
  length: (v) => (typeof v === 'string' || Array.isArray(v) ? v.length : isMapping(v) ? Object.keys(v).length : 0),
  count: (v) => FILTERS.length(v),
  default: (v, d = '', boolean = false) => ((isUndef(v) || (truthy(boolean) && !truthy(v))) ? d : v),
  d: (v, d = '', boolean = false) => FILTERS.default(v, d, boolean),
  first: (v) => (iterate(v).length ? iterate(v)[0] : UNDEFINED),
  last: (v) => (iterate(v).length ? iterate(v).at(-1) : UNDEFINED),
  join: (v, sep = '', attribute) => iterate(v).map((x) => pyStr(attribute === undefined ? x : getAttr(x, attribute))).join(sep),
  string: (v) => pyStr(v),
  int: (v, d = 0) => {
    const n = parseInt(pyStr(v), 10);
    return Number.isNaN(n) ? d : n;
  },
  float: (v, d = 0) => {
    const n = parseFloat(pyStr(v));
    return new PyFloat(Number.isNaN(n) ? num(d) : n);
  },
  abs: (v) => Math.abs(num(v)),
  round: (v, p = 0) => new PyFloat(Math.round(num(v) * 10 ** num(p)) / 10 ** num(p)),
  list: (v) => Array.from(iterate(v)),
  reverse: (v) => (typeof v === 'string' ? Array.from(v).reverse().join('') : Array.from(iterate(v)).reverse()),
  replace: (v, a, b) => pyStr(v).split(pyStr(a)).join(pyStr(b)),
  items: (v) => (isMapping(v) ? Object.entries(v) : []),
  dictsort: (v) => (isMapping(v) ? Object.entries(v).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)) : []),
  unique: (v) => iterate(v).filter((x, i, a) => a.findIndex((y) => eq(x, y)) === i),
  safe: (v) => v,
  e: (v) => escapeHtml(pyStr(v)),
  escape: (v) => escapeHtml(pyStr(v)),
  indent: (v, width = 4, first = false) => {
    const pad = typeof width === 'string' ? width : ' '.repeat(num(width));
    const lines = pyStr(v).split('\n');
    return lines.map((l, i) => ((i === 0 && !truthy(first)) || l === '' ? l : pad + l)).join('\n');
  },
  tojson: (v, indent) => toJson(plain(v), isUndef(indent) || indent === undefined || indent === null ? null : num(indent)),
  map: (v, ...args) => mapFilter(v, args, {}),
  select: (v, test, ...a) => iterate(v).filter((x) => (test === undefined ? truthy(x) : runTest(test, x, a))),
  reject: (v, test, ...a) => iterate(v).filter((x) => !(test === undefined ? truthy(x) : runTest(test, x, a))),
  selectattr: (v, attr, test, ...a) => iterate(v).filter((x) => (test === undefined ? truthy(getAttr(x, attr)) : runTest(test, getAttr(x, attr), a))),
  rejectattr: (v, attr, test, ...a) => iterate(v).filter((x) => !(test === undefined ? truthy(getAttr(x, attr)) : runTest(test, getAttr(x, attr), a))),
  sum: (v) => iterate(v).reduce((s, x) => s + num(x), 0),
  min: (v) => iterate(v).reduce((m, x) => (m === UNDEFINED || num(x) < num(m) ? x : m), UNDEFINED),
  max: (v) => iterate(v).reduce((m, x) => (m === UNDEFINED || num(x) > num(m) ? x : m), UNDEFINED),
  wordcount: (v) => pyStr(v).split(/\s+/).filter(Boolean).length,
  batch: (v, n) => {
    const items = iterate(v);
    const out = [];
    for (let i = 0; i < items.length; i += num(n)) out.push(items.slice(i, i + num(n)));
    return out;
  },
};

const TESTS = {
  defined: (v) => !isUndef(v),
  undefined: (v) => isUndef(v),
  none: (v) => v === null,
  string: (v) => typeof v === 'string',
  number: (v) => isNum(v),
  integer: (v) => typeof v === 'number' && Number.isInteger(v),
  float: (v) => v instanceof PyFloat,
  boolean: (v) => typeof v === 'boolean',
  true: (v) => v === true,
  false: (v) => v === false,
  mapping: (v) => isMapping(v),
  iterable: (v) => typeof v === 'string' || Array.isArray(v) || isMapping(v),
  sequence: (v) => typeof v === 'string' || Array.isArray(v),
  callable: (v) => typeof v === 'function',
  even: (v) => num(v) % 2 === 0,
  odd: (v) => Math.abs(num(v) % 2) === 1,
  divisibleby: (v, n) => num(v) % num(n) === 0,
  equalto: (v, x) => eq(v, x),
  eq: (v, x) => eq(v, x),
  '==': (v, x) => eq(v, x),
  ne: (v, x) => !eq(v, x),
  '!=': (v, x) => !eq(v, x),
  lt: (v, x) => num(v) < num(x),
  '<': (v, x) => num(v) < num(x),
  le: (v, x) => num(v) <= num(x),
  '<=': (v, x) => num(v) <= num(x),
  gt: (v, x) => num(v) > num(x),
  '>': (v, x) => num(v) > num(x),
  ge: (v, x) => num(v) >= num(x),
  '>=': (v, x) => num(v) >= num(x),
  in: (v, x) => contains(x, v),
  lower: (v) => typeof v === 'string' && v === v.toLowerCase(),
  upper: (v) => typeof v === 'string' && v === v.toUpperCase(),
};

function mapFilter(v, args, kw) {
  const items = iterate(v);
  if (kw.attribute !== undefined) {
    return items.map((x) => {
      const r = getAttr(x, kw.attribute);
      return isUndef(r) && kw.default !== undefined ? kw.default : r;
    });
  }
  const f = args[0];
  if (typeof f === 'string' && Object.hasOwn(FILTERS, f) && f !== 'map') return items.map((x) => FILTERS[f](x, ...args.slice(1)));
  throw unsupported(`map(${pyRepr(f)})`);
}

function runTest(name, v, args) {
  if (!Object.hasOwn(TESTS, name)) throw unsupported(`test "${name}"`);
  return TESTS[name](v, ...args);
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c]);
}

/** Python json.dumps style (", " and ": " separators; HF's tojson keeps non-ASCII as is). */
function toJson(v, indent, depth = 0) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return JSON.stringify(v);
  if (typeof v === 'string') return JSON.stringify(v);
  const nl = indent === null ? '' : '\n' + ' '.repeat(indent * (depth + 1));
  const end = indent === null ? '' : '\n' + ' '.repeat(indent * depth);
  const sep = indent === null ? ', ' : ',';
  if (Array.isArray(v)) {
    if (!v.length) return '[]';
    return '[' + v.map((x) => nl + toJson(x, indent, depth + 1)).join(sep) + end + ']';
  }
  const keys = Object.keys(v);
  if (!keys.length) return '{}';
  return '{' + keys.map((k) => nl + JSON.stringify(k) + ': ' + toJson(v[k], indent, depth + 1)).join(sep) + end + '}';
}

// ------------------------------------------------------------- evaluation

const GLOBALS = {
  raise_exception: (msg) => {
    throw new TemplateError('raise', pyStr(msg));
  },
  range: (a, b, c) => {
    const [start, stop, step] = b === undefined ? [0, num(a), 1] : [num(a), num(b), c === undefined ? 1 : num(c)];
    if (!step) throw new TemplateError('error', 'range() step cannot be zero');
    const out = [];
    for (let i = start; step > 0 ? i < stop : i > stop; i += step) {
      out.push(i);
      if (out.length > 100000) throw new TemplateError('error', 'range() too long');
    }
    return out;
  },
  namespace: (kw) => new Namespace(kw),
  dict: (kw) => ({ ...kw }),
  strftime_now: (fmt) => strftime(new Date(), pyStr(fmt)),
};
// functions whose keyword arguments arrive as one object
const KW_FUNCTIONS = new Set([GLOBALS.namespace, GLOBALS.dict]);

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
function strftime(d, fmt) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return fmt.replace(/%([a-zA-Z%])/g, (m, c) => ({
    d: p(d.getDate()), m: p(d.getMonth() + 1), Y: String(d.getFullYear()), y: p(d.getFullYear() % 100),
    b: MONTHS[d.getMonth()].slice(0, 3), B: MONTHS[d.getMonth()], a: DAYS[d.getDay()].slice(0, 3), A: DAYS[d.getDay()],
    H: p(d.getHours()), M: p(d.getMinutes()), S: p(d.getSeconds()), '%': '%',
  })[c] ?? m);
}

class Scope {
  constructor(parent, vars = {}) {
    this.parent = parent;
    this.vars = vars;
  }
  get(name) {
    for (let s = this; s; s = s.parent) if (Object.hasOwn(s.vars, name)) return s.vars[name];
    if (Object.hasOwn(GLOBALS, name)) return GLOBALS[name];
    return UNDEFINED;
  }
  set(name, v) {
    this.vars[name] = v;
  }
}

function evaluate(e, scope) {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'var':
      return scope.get(e.name);
    case 'list':
      return e.items.map((x) => evaluate(x, scope));
    case 'dict':
      return Object.fromEntries(e.entries.map(([k, v]) => [pyStr(evaluate(k, scope)), evaluate(v, scope)]));
    case 'get':
      return getAttr(evaluate(e.obj, scope), evaluate(e.key, scope));
    case 'slice': {
      const o = evaluate(e.obj, scope);
      if (typeof o !== 'string' && !Array.isArray(o)) return UNDEFINED;
      const v = (x) => (x === null ? null : evaluate(x, scope));
      return slice(o, v(e.a), v(e.b), v(e.c));
    }
    case 'call': {
      const f = evaluate(e.fn, scope);
      if (typeof f !== 'function') {
        const name = e.fn.k === 'var' ? e.fn.name : e.fn.k === 'get' ? pyStr(e.fn.key.v) : 'expression';
        throw unsupported(`function "${name}"`);
      }
      const args = e.args.map((x) => evaluate(x, scope));
      const kw = Object.fromEntries(e.kwargs.map(([k, x]) => [k, evaluate(x, scope)]));
      if (KW_FUNCTIONS.has(f)) return f(kw);
      if (e.kwargs.length) throw unsupported('keyword arguments to this function');
      return f(...args);
    }
    case 'filter': {
      const v = evaluate(e.a, scope);
      const args = e.args.map((x) => evaluate(x, scope));
      const kw = Object.fromEntries(e.kwargs.map(([k, x]) => [k, evaluate(x, scope)]));
      if (e.name === 'tojson' && kw.indent !== undefined) args[0] = kw.indent;
      if (e.name === 'default' || e.name === 'd') {
        if (kw.default_value !== undefined) args[0] = kw.default_value;
        if (kw.boolean !== undefined) args[1] = kw.boolean;
      }
      if (e.name === 'map') return mapFilter(v, args, kw);
      return FILTERS[e.name](v, ...args);
    }
    case 'test': {
      const r = runTest(e.name, evaluate(e.a, scope), e.args.map((x) => evaluate(x, scope)));
      return e.neg ? !r : r;
    }
    case 'cond':
      return truthy(evaluate(e.cond, scope)) ? evaluate(e.a, scope) : evaluate(e.b, scope);
    case 'or': {
      const a = evaluate(e.a, scope);
      return truthy(a) ? a : evaluate(e.b, scope);
    }
    case 'and': {
      const a = evaluate(e.a, scope);
      return truthy(a) ? evaluate(e.b, scope) : a;
    }
    case 'not':
      return !truthy(evaluate(e.a, scope));
    case 'neg':
      return -num(evaluate(e.a, scope));
    case 'bin':
      return binary(e.op, evaluate(e.a, scope), evaluate(e.b, scope));
    default:
      throw new TemplateError('error', `internal: node ${e.k}`);
  }
}

function binary(op, a, b) {
  switch (op) {
    case '~':
      return pyStr(a) + pyStr(b);
    case '+':
      if (isNum(a) && isNum(b)) return wrapNum(num(a) + num(b), a, b);
      if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
      if (typeof a === 'string' && typeof b === 'string') return a + b;
      if (isUndef(a) || isUndef(b)) return pyStr(a) + pyStr(b);
      throw new TemplateError('error', `cannot add ${pyRepr(a)} and ${pyRepr(b)}`);
    case '-':
      return wrapNum(num(a) - num(b), a, b);
    case '*':
      if (typeof a === 'string' && isNum(b)) return a.repeat(Math.max(0, num(b)));
      if (Array.isArray(a) && isNum(b)) return Array.from({ length: Math.max(0, num(b)) }, () => a).flat();
      return wrapNum(num(a) * num(b), a, b);
    case '/':
      return new PyFloat(num(a) / num(b));
    case '//':
      return Math.floor(num(a) / num(b));
    case '%': {
      if (typeof a === 'string') throw unsupported('string % formatting');
      const m = num(a) % num(b);
      return m !== 0 && Math.sign(m) !== Math.sign(num(b)) ? m + num(b) : m;
    }
    case '**':
      return num(a) ** num(b);
    case '==':
      return eq(a, b);
    case '!=':
      return !eq(a, b);
    case '<':
      return cmp(a, b) < 0;
    case '>':
      return cmp(a, b) > 0;
    case '<=':
      return cmp(a, b) <= 0;
    case '>=':
      return cmp(a, b) >= 0;
    case 'in':
      return contains(b, a);
    default:
      throw new TemplateError('error', `internal: operator ${op}`);
  }
}

const wrapNum = (r, a, b) => (a instanceof PyFloat || b instanceof PyFloat ? new PyFloat(r) : r);

function cmp(a, b) {
  if (isNum(a) && isNum(b)) return num(a) - num(b);
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError('error', `cannot compare ${pyRepr(a)} and ${pyRepr(b)}`);
}

function assign(scope, target, v) {
  if (typeof target === 'string') scope.set(target, v);
  else if (Array.isArray(target)) {
    const items = iterate(v);
    if (items.length !== target.length) throw new TemplateError('error', `cannot unpack ${items.length} values into ${target.length}`);
    target.forEach((t, i) => assign(scope, t, items[i]));
  } else {
    const ns = scope.get(target.ns);
    if (!(ns instanceof Namespace)) throw new TemplateError('error', `${target.ns} is not a namespace()`);
    ns[target.attr] = v;
  }
}

function run(nodes, scope, out) {
  for (const n of nodes) {
    switch (n.k) {
      case 'text':
        out.push(n.v);
        break;
      case 'out':
        out.push(pyStr(evaluate(n.e, scope)));
        break;
      case 'seq':
        run(n.body, scope, out);
        break;
      case 'set':
        assign(scope, n.target, evaluate(n.e, scope));
        break;
      case 'if':
        for (const b of n.branches) {
          if (b.cond === null || truthy(evaluate(b.cond, scope))) {
            run(b.body, scope, out);
            break;
          }
        }
        break;
      case 'for': {
        let items = iterate(evaluate(n.iter, scope));
        if (n.filter) {
          items = items.filter((it) => {
            const s = new Scope(scope);
            assign(s, n.target, it);
            return truthy(evaluate(n.filter, s));
          });
        }
        if (!items.length) {
          run(n.orelse, scope, out);
          break;
        }
        const loop = new LoopInfo(items);
        for (let i = 0; i < items.length; i++) {
          loop.i = i;
          // Jinja scoping: assignments in the body do not leak out of the loop.
          const s = new Scope(scope, { loop });
          assign(s, n.target, items[i]);
          try {
            run(n.body, s, out);
          } catch (sig) {
            if (sig instanceof BreakSignal) break;
            if (sig instanceof ContinueSignal) continue;
            throw sig;
          }
        }
        break;
      }
      case 'break':
        throw new BreakSignal();
      case 'continue':
        throw new ContinueSignal();
      default:
        throw new TemplateError('error', `internal: statement ${n.k}`);
    }
  }
}

/** Parse a template once; throws TemplateError('unsupported') for syntax outside the subset. */
export function compileTemplate(src) {
  if (typeof src !== 'string') throw new TemplateError('unsupported', 'the template is not a string');
  const nodes = parseTemplate(src);
  return {
    render(vars) {
      const out = [];
      run(nodes, new Scope(null, { ...vars }), out);
      return out.join('');
    },
  };
}

/** Render a template with variables (messages, add_generation_prompt, bos_token, eos_token, ...). */
export function renderTemplate(src, vars) {
  return compileTemplate(src).render(vars);
}

/** The plain fallback: "role: content" lines, then "assistant:" to prompt a reply. */
export function plainChat(messages, addGenerationPrompt = true) {
  let s = messages.map((m) => `${m.role}: ${m.content}`).join('\n');
  if (addGenerationPrompt) s += (s ? '\n' : '') + 'assistant:';
  return s;
}

// End-of-turn markers of common templates: when the template spells one, it
// stops generation (as a token if it is a single special token, else as text).
export const TURN_END_MARKERS = ['<|im_end|>', '<|eot_id|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '</s>', '<|end_of_text|>', '[/INST]', '<|user|>'];

/** Check messages: an array of {role: string, content: string}. Returns a copy. */
export function checkMessages(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new TypeError('messages must be a non-empty array of {role, content}');
  }
  return messages.map((m, i) => {
    if (!m || typeof m !== 'object' || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new TypeError(`messages[${i}] must be {role: string, content: string}`);
    }
    return { ...m };
  });
}

/**
 * The prompt for a conversation.
 * @param {string|null} template the pack's chat_template
 * @param {{role: string, content: string}[]} messages
 * @param {{bosToken?: string, eosToken?: string, addGenerationPrompt?: boolean, vars?: object}} [o]
 * @returns {{text: string, format: 'template'|'plain', note: string|null, stop: string[]}}
 */
export function formatChat(template, messages, { bosToken = '', eosToken = '', addGenerationPrompt = true, vars = {} } = {}) {
  const msgs = checkMessages(messages);
  if (typeof template === 'string' && template.length) {
    let compiled;
    try {
      compiled = compileTemplate(template);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      return fallback(msgs, addGenerationPrompt, `the chat template uses unsupported syntax (${e.message}); used a plain "role: content" prompt`);
    }
    let text;
    try {
      text = compiled.render({ ...vars, messages: msgs, add_generation_prompt: addGenerationPrompt, bos_token: bosToken, eos_token: eosToken });
    } catch (e) {
      if (e instanceof TemplateError && e.kind === 'raise') throw e;
      if (!(e instanceof TemplateError)) throw e;
      return fallback(msgs, addGenerationPrompt, `the chat template failed (${e.message}); used a plain "role: content" prompt`);
    }
    const stop = TURN_END_MARKERS.filter((m) => template.includes(m) && m !== bosToken);
    return { text, format: 'template', note: null, stop };
  }
  return fallback(msgs, addGenerationPrompt, 'the pack has no chat template; used a plain "role: content" prompt');
}

function fallback(msgs, addGenerationPrompt, note) {
  return { text: plainChat(msgs, addGenerationPrompt), format: 'plain', note, stop: ['\nuser:', '\nsystem:'] };
}
