import { expect } from 'chai';

/**
 * The error `promise` rejects with, which must be an instance of `type`; fails the test when the
 * promise resolves or rejects with something else.
 */
export async function rejectionOf<T extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    return err as T;
  }
  throw new Error(`expected a rejection with ${type.name}`);
}
