/** The fine-tune line of each cycle: what it trained on, its note and the gate's decision. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fineTuneLine, formatFineTunes } from '../../src/core/fine-tunes';

test('each admission × passes + replayed, steps and loss, the note, the gate', () => {
  assert.equal(
    fineTuneLine({ cycle: 1, status: 'published', manifest: { own: 3, passes: 2, replayed: 1, pairs: 7, steps: 7, finalLoss: 0.4123, note: null } }),
    'after cycle 1: 3 admission(s) × 2 passes + 1 replayed = 7 pairs; 7 steps, final loss 0.412',
  );
  assert.equal(
    fineTuneLine({ cycle: 2, status: 'ready', manifest: { own: 0, passes: 2, replayed: 2, pairs: 2, steps: 2, finalLoss: 0.5, note: 'cycle 2 admitted no program that fits: 2 older pair(s) replayed only', gate: { decision: 'keep-serving', reason: 'worse than m' } } }),
    'after cycle 2: 0 admission(s) × 2 passes + 2 replayed = 2 pairs; 2 steps, final loss 0.500; cycle 2 admitted no program that fits: 2 older pair(s) replayed only; gate: kept out (worse than m)',
  );
  assert.equal(fineTuneLine({ cycle: 0, status: 'training', manifest: {} }), 'after cycle 0: seed fine-tune on ? pairs; training');
  assert.equal(formatFineTunes([]), '');
  assert.match(formatFineTunes([{ cycle: 0, status: 'ready', manifest: { pairs: 14, steps: 14, finalLoss: 0.2 } }]), /^Fine-tunes:\n {2}after cycle 0: seed fine-tune on 14 pairs; 14 steps/);
});
