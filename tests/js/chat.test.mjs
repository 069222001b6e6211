// The chat-template interpreter (web/src/chat.js) against Jinja2 itself:
// fixtures/chat_expected.json was rendered from fixtures/chat_templates.json by
// fixtures/render_chat.py with jinja2 3.1.6 and Hugging Face's settings (ImmutableSandboxedEnvironment,
// trim_blocks, lstrip_blocks, loopcontrols, raise_exception, tojson with
// ensure_ascii=False), bos_token "<s>", eos_token "</s>".
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { TemplateError, compileTemplate, formatChat, plainChat, renderTemplate } from '../../web/src/chat.js';

const TEMPLATES = JSON.parse(readFileSync(new URL('./fixtures/chat_templates.json', import.meta.url), 'utf8'));
const { conversations, expected } = JSON.parse(readFileSync(new URL('./fixtures/chat_expected.json', import.meta.url), 'utf8'));

test('every template x conversation renders exactly as Jinja2 does (or raises the same message)', () => {
  let n = 0;
  for (const [key, want] of Object.entries(expected)) {
    const [name, conv, agp] = key.split('/');
    const vars = { messages: structuredClone(conversations[conv]), add_generation_prompt: agp === '1', bos_token: '<s>', eos_token: '</s>' };
    if (want.error !== undefined) {
      assert.throws(() => renderTemplate(TEMPLATES[name], vars), (e) => e instanceof TemplateError && e.kind === 'raise' && e.message === want.error, key);
    } else {
      assert.equal(renderTemplate(TEMPLATES[name], vars), want.text, key);
    }
    n++;
  }
  assert.ok(n >= 60);
});

test('whitespace control: -, +, trim_blocks, lstrip_blocks', () => {
  const r = (t, v = {}) => renderTemplate(t, v);
  assert.equal(r('a  {%- if true %} b {% endif -%}  c'), 'a b c');
  assert.equal(r('x\n  {% if true %}\ny\n  {% endif %}\nz'), 'x\ny\nz');
  assert.equal(r('x\n  {%+ if true %}y{% endif %}'), 'x\n  y');
  assert.equal(r('{{ 1 }}  {% if true %}k{% endif %}'), '1  k', 'no lstrip after an expression on the same line');
  assert.equal(r('a {#- note -#} b'), 'ab');
  assert.equal(r('{{- "  a  " -}}'), '  a  ');
});

test('scoping: set in a loop does not leak; namespace attributes do', () => {
  assert.equal(renderTemplate('{% set x = 1 %}{% for i in [1,2] %}{% set x = i %}{% endfor %}{{ x }}', {}), '1');
  assert.equal(renderTemplate('{% set ns = namespace(x=1) %}{% for i in [1,2] %}{% set ns.x = i %}{% endfor %}{{ ns.x }}', {}), '2');
  assert.equal(renderTemplate('{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}', {}), '012');
});

test('unsupported syntax is reported as such, not mis-rendered', () => {
  for (const t of [
    '{% macro f(x) %}{{ x }}{% endmacro %}{{ f(1) }}',
    '{% include "x.j2" %}',
    '{{ x | unknown_filter }}',
    '{% if x %}never closed',
    '{{ "unterminated }}',
    '{% set x %}block set{% endset %}',
  ]) {
    assert.throws(() => compileTemplate(t).render({ x: 1 }), (e) => e instanceof TemplateError && e.kind === 'unsupported', t);
  }
  // an unknown function only fails when called
  assert.throws(() => renderTemplate('{{ nope(1) }}', {}), (e) => e.kind === 'unsupported' && /nope/.test(e.message));
});

test('formatChat: template, plain fallback with a note, raise_exception passes through', () => {
  const msgs = [{ role: 'user', content: 'Hi' }];
  const a = formatChat(TEMPLATES.chatml, msgs);
  assert.equal(a.format, 'template');
  assert.equal(a.text, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  assert.deepEqual(a.stop, ['<|im_end|>']);
  assert.equal(a.note, null);
  const b = formatChat(null, msgs);
  assert.equal(b.format, 'plain');
  assert.equal(b.text, 'user: Hi\nassistant:');
  assert.match(b.note, /no chat template/);
  const c = formatChat('{% macro m() %}{% endmacro %}', msgs);
  assert.equal(c.format, 'plain');
  assert.match(c.note, /unsupported syntax \(\{% macro %\}\)/);
  assert.throws(() => formatChat(TEMPLATES.gemma, [{ role: 'system', content: 'x' }, ...msgs]), /System role not supported/);
  assert.equal(plainChat([{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }], false), 'system: S\nuser: U');
  assert.throws(() => formatChat(TEMPLATES.chatml, [{ role: 'user' }]), /messages\[0\]/);
  const l3 = formatChat(TEMPLATES.llama3, msgs, { bosToken: '<|begin_of_text|>' });
  assert.ok(l3.text.startsWith('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>'));
  assert.deepEqual(l3.stop, ['<|eot_id|>']);
});
