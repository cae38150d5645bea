import { expect } from 'chai';
import { generateSigningKey, type GeneratedKey } from '../../lib/core/keys.js';
import { DEFAULT_KEY_RETENTION, selectKeys, type KeySetView, type SigningKeyRecord } from '../../lib/core/key-set.js';

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const RETAIN = 3600; // seconds

/** Every ordering of `items` (for small arrays only). */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

const kids = (records: readonly SigningKeyRecord[]): string[] => records.map((r) => r.kid);

describe('selectKeys()', () => {
  let generated: GeneratedKey[] = [];

  before(async () => {
    generated = await Promise.all(Array.from({ length: 4 }, () => generateSigningKey('ES256')));
  });

  function record(
    index: number, activatesAt: number, extra: { createdAt?: number; revokedAt?: number; retention?: number } = {},
  ): SigningKeyRecord {
    const key = generated[index] as GeneratedKey;
    return {
      kid: key.kid,
      alg: key.alg,
      publicJwk: key.publicJwk,
      privateKeyPem: key.privateKeyPem,
      createdAt: new Date(extra.createdAt ?? activatesAt),
      activatesAt: new Date(activatesAt),
      revokedAt: extra.revokedAt === undefined ? null : new Date(extra.revokedAt),
      retention: extra.retention ?? RETAIN,
    };
  }

  it('selects nothing from no keys', () => {
    expect(selectKeys([], T0, RETAIN)).to.deep.equal({ signing: undefined, published: [] });
  });

  it('signs with and publishes a single active key', () => {
    const a = record(0, T0);
    expect(selectKeys([a], T0 + MINUTE, RETAIN)).to.deep.equal({ signing: a, published: [a] });
  });

  it('signs with a key from the instant it activates', () => {
    const a = record(0, T0);
    expect(selectKeys([a], T0, RETAIN).signing).to.equal(a);
    expect(selectKeys([a], T0 - 1, RETAIN)).to.deep.equal({ signing: undefined, published: [a] });
  });

  it('publishes a pending key without signing with it', () => {
    const a = record(0, T0);
    const pending = record(1, T0 + 10 * MINUTE, { createdAt: T0 + MINUTE });
    const view = selectKeys([pending, a], T0 + 2 * MINUTE, RETAIN);
    expect(view.signing).to.equal(a);
    expect(kids(view.published)).to.deep.equal([a.kid, pending.kid]);
  });

  it('publishes a pending key when no key signs yet', () => {
    const pending = record(0, T0 + 10 * MINUTE, { createdAt: T0 });
    expect(selectKeys([pending], T0, RETAIN)).to.deep.equal({ signing: undefined, published: [pending] });
  });

  it('signs with the latest activated key', () => {
    const a = record(0, T0);
    const b = record(1, T0 + 10 * MINUTE);
    const c = record(2, T0 + 20 * MINUTE);
    const pending = record(3, T0 + 60 * MINUTE, { createdAt: T0 + 30 * MINUTE });
    const view = selectKeys([c, pending, a, b], T0 + 30 * MINUTE, RETAIN);
    expect(view.signing).to.equal(c);
    expect(kids(view.published)).to.deep.equal([a.kid, b.kid, c.kid, pending.kid]);
  });

  it('keeps a superseded key published until its successor activatesAt + its retention, then drops it', () => {
    const a = record(0, T0);
    const b = record(1, T0 + 10 * MINUTE);
    const until = b.activatesAt.getTime() + RETAIN * 1000;
    expect(kids(selectKeys([a, b], b.activatesAt.getTime(), RETAIN).published)).to.deep.equal([a.kid, b.kid]);
    expect(kids(selectKeys([a, b], until - 1, RETAIN).published)).to.deep.equal([a.kid, b.kid]);
    expect(selectKeys([a, b], until, RETAIN)).to.deep.equal({ signing: b, published: [b] });
    expect(selectKeys([a, b], until + 1, RETAIN)).to.deep.equal({ signing: b, published: [b] });
  });

  it('counts each superseded key\'s retention from its own successor', () => {
    const a = record(0, T0);
    const b = record(1, T0 + 10 * MINUTE);
    const c = record(2, T0 + 80 * MINUTE);
    // a was superseded by b at +10 min, b by c at +80 min; with 60 min retention a goes at +70 min.
    const view = selectKeys([a, b, c], T0 + 75 * MINUTE, RETAIN);
    expect(view.signing).to.equal(b);
    expect(kids(view.published)).to.deep.equal([b.kid, c.kid]);
    const later = selectKeys([a, b, c], T0 + 100 * MINUTE, RETAIN);
    expect(later.signing).to.equal(c);
    expect(kids(later.published)).to.deep.equal([b.kid, c.kid]);
    expect(kids(selectKeys([a, b, c], T0 + 140 * MINUTE, RETAIN).published)).to.deep.equal([c.kid]);
  });

  it('drops a superseded key at once when its retention is 0', () => {
    const a = record(0, T0, { retention: 0 });
    const b = record(1, T0 + 10 * MINUTE);
    expect(selectKeys([a, b], b.activatesAt.getTime())).to.deep.equal({ signing: b, published: [b] });
  });

  describe('retention', () => {
    it('keeps each superseded key published for its own retention', () => {
      const a = record(0, T0, { retention: 600 });
      const b = record(1, T0 + 10 * MINUTE, { retention: 7200 });
      const c = record(2, T0 + 20 * MINUTE);
      // a was superseded at +10 min and goes at +20 min; b, superseded at +20 min, stays until +140 min.
      expect(kids(selectKeys([a, b, c], T0 + 20 * MINUTE - 1).published)).to.deep.equal([a.kid, b.kid, c.kid]);
      expect(kids(selectKeys([a, b, c], T0 + 20 * MINUTE).published)).to.deep.equal([b.kid, c.kid]);
      expect(kids(selectKeys([a, b, c], T0 + 140 * MINUTE - 1).published)).to.deep.equal([b.kid, c.kid]);
      expect(kids(selectKeys([a, b, c], T0 + 140 * MINUTE).published)).to.deep.equal([c.kid]);
    });

    it('raises a shorter retention to minRetention, and never shortens a longer one', () => {
      const short = record(0, T0, { retention: 60 });
      const long = record(1, T0 + 10 * MINUTE, { retention: 7200 });
      const signing = record(2, T0 + 20 * MINUTE);
      // short was superseded at +10 min: gone at +11 min on its own, kept until +70 min with minRetention 3600.
      expect(kids(selectKeys([short, long, signing], T0 + 30 * MINUTE).published)).to.deep.equal([long.kid, signing.kid]);
      expect(kids(selectKeys([short, long, signing], T0 + 30 * MINUTE, 3600).published))
        .to.deep.equal([short.kid, long.kid, signing.kid]);
      expect(kids(selectKeys([short, long, signing], T0 + 70 * MINUTE, 3600).published)).to.deep.equal([long.kid, signing.kid]);
      // long was superseded at +20 min and keeps its 7200 s whatever the floor.
      expect(kids(selectKeys([long, signing], T0 + 139 * MINUTE, 60).published)).to.deep.equal([long.kid, signing.kid]);
    });

    it(`reads a record with no retention (from a store that predates it) as ${DEFAULT_KEY_RETENTION} s`, () => {
      const a = { ...record(0, T0), retention: undefined } as unknown as SigningKeyRecord;
      const b = record(1, T0 + 10 * MINUTE);
      const until = b.activatesAt.getTime() + DEFAULT_KEY_RETENTION * 1000;
      expect(kids(selectKeys([a, b], until - 1).published)).to.deep.equal([a.kid, b.kid]);
      expect(kids(selectKeys([a, b], until).published)).to.deep.equal([b.kid]);
    });
  });

  it('never publishes or signs with a revoked key', () => {
    const a = record(0, T0, { revokedAt: T0 + MINUTE });
    expect(selectKeys([a], T0 + 2 * MINUTE, RETAIN)).to.deep.equal({ signing: undefined, published: [] });
  });

  it('falls back to the previous key when the signing key is revoked', () => {
    const a = record(0, T0);
    const b = record(1, T0 + 10 * MINUTE, { revokedAt: T0 + 20 * MINUTE });
    expect(selectKeys([a, b], T0 + 30 * MINUTE, RETAIN)).to.deep.equal({ signing: a, published: [a] });
  });

  it('drops a revoked pending key', () => {
    const a = record(0, T0);
    const pending = record(1, T0 + 60 * MINUTE, { createdAt: T0 + MINUTE, revokedAt: T0 + 2 * MINUTE });
    expect(selectKeys([a, pending], T0 + 3 * MINUTE, RETAIN)).to.deep.equal({ signing: a, published: [a] });
  });

  it('gives the same answer whatever the order of the records', () => {
    const records = [
      record(0, T0),
      record(1, T0 + 10 * MINUTE),
      record(2, T0 + 20 * MINUTE, { revokedAt: T0 + 25 * MINUTE }),
      record(3, T0 + 90 * MINUTE, { createdAt: T0 + 30 * MINUTE }),
    ];
    const expected = selectKeys(records, T0 + 40 * MINUTE, RETAIN);
    expect(expected.signing).to.equal(records[1]);
    expect(kids(expected.published)).to.deep.equal(kids([records[0]!, records[1]!, records[3]!]));
    for (const order of permutations(records)) {
      expect(selectKeys(order, T0 + 40 * MINUTE, RETAIN)).to.deep.equal(expected);
    }
  });

  it('does not reorder the records it is given', () => {
    const records = [record(1, T0 + 10 * MINUTE), record(0, T0)];
    const before = kids(records);
    selectKeys(records, T0 + 20 * MINUTE, RETAIN);
    expect(kids(records)).to.deep.equal(before);
  });

  describe('with two keys activating at the same instant', () => {
    it('signs with the one created later, whatever the order of the records', () => {
      const early = record(0, T0 + 10 * MINUTE, { createdAt: T0 });
      const late = record(1, T0 + 10 * MINUTE, { createdAt: T0 + MINUTE });
      for (const order of permutations([early, late])) {
        const view = selectKeys(order, T0 + 20 * MINUTE, RETAIN);
        expect(view.signing).to.equal(late);
        expect(kids(view.published)).to.deep.equal([early.kid, late.kid]);
      }
    });

    it('picks the same key every time when they were also created at the same instant', () => {
      const a = record(0, T0);
      const b = record(1, T0);
      const c = record(2, T0);
      const results: (KeySetView)[] = permutations([a, b, c]).map((order) => selectKeys(order, T0 + MINUTE, RETAIN));
      const first = results[0] as KeySetView;
      expect([a.kid, b.kid, c.kid]).to.include(first.signing?.kid);
      expect(kids(first.published).sort()).to.deep.equal([a.kid, b.kid, c.kid].sort());
      for (const view of results) {
        expect(view.signing?.kid).to.equal(first.signing?.kid);
        expect(kids(view.published)).to.deep.equal(kids(first.published));
      }
    });
  });
});
