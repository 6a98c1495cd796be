/** Pure parts of the embedded server and the client around it: stops, prefixes, fences, the chat template. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { opensCodeFence } from '../../../src/llm/client';
import { chatTemplate } from '../../../src/llm/embedded/chat';
import { commonPrefix, cutAtStop } from '../../../src/llm/embedded/engine';
import { isInside } from '../../../src/llm/embedded/adapters';

test('a reply is cut at the earliest stop string', () => {
  assert.deepEqual(cutAtStop('a\n```\nexplanation', ['\n```', '\nif __name__']), { text: 'a', stopped: true });
  assert.deepEqual(cutAtStop('x\nif __name__ == 1\n```', ['\n```', '\nif __name__']), { text: 'x', stopped: true });
  assert.deepEqual(cutAtStop('no stop here', ['\n```', '']), { text: 'no stop here', stopped: false });
});

test('the shared prompt prefix of two token lists', () => {
  assert.equal(commonPrefix([1, 2, 3] as never[], [1, 2, 4] as never[]), 2);
  assert.equal(commonPrefix([] as never[], [1] as never[]), 0);
});

test('a prefill that opens a code block', () => {
  assert.ok(opensCodeFence('```python\nimport torch\n'));
  assert.ok(!opensCodeFence('```python\nx = 1\n```\n'));
  assert.ok(!opensCodeFence('Here is the plan.'));
});

test('the chat template renders a prefilled reply as the start of the assistant turn', () => {
  const template = chatTemplate(undefined, { bos: '', eos: '' });
  const closed = template.render([{ role: 'user', content: 'hi' }], { continueFinal: false });
  assert.equal(closed, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  const open = template.render([{ role: 'user', content: 'hi' }, { role: 'assistant', content: '```python\n' }], { continueFinal: true });
  assert.equal(open, `${closed}\`\`\`python\n`);
});

test('adapters load only from inside the adapters root', () => {
  assert.ok(isInside('/a/artifacts/run/x', '/a/artifacts'));
  assert.ok(isInside('/a/artifacts', '/a/artifacts'));
  assert.ok(!isInside('/a/artifacts-evil/x', '/a/artifacts'));
  assert.ok(!isInside('/a', '/a/artifacts'));
});
